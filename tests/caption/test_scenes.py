"""Digit scenes: deterministic, and every caption agrees with the written boxes."""

import json

import numpy as np
from PIL import Image

from triptych.caption.scenes import SIZES, write_digit_scenes
from triptych.cli import main


def _read(d):
    return {s: (d / f"{s}.jsonl").read_bytes() for s in ("train", "valid", "test")}, (d / "boxes.json").read_bytes()


def test_same_seed_same_files_other_seed_differs(tmp_path):
    write_digit_scenes(tmp_path / "a", 30, seed=5)
    write_digit_scenes(tmp_path / "b", 30, seed=5)
    write_digit_scenes(tmp_path / "c", 30, seed=6)
    assert _read(tmp_path / "a") == _read(tmp_path / "b")
    assert _read(tmp_path / "a") != _read(tmp_path / "c")
    for png in (tmp_path / "a" / "images").iterdir():
        assert png.read_bytes() == (tmp_path / "b" / "images" / png.name).read_bytes()


def test_captions_match_boxes_and_pixels(tmp_path):
    write_digit_scenes(tmp_path / "s", 60, seed=1)
    boxes = json.loads((tmp_path / "s" / "boxes.json").read_text())
    assert len(boxes) == 60
    for split in ("train", "valid", "test"):
        records = [json.loads(line) for line in (tmp_path / "s" / f"{split}.jsonl").read_text().splitlines()]
        for rec in records:
            a, b = boxes[rec["image"]]
            cap = rec["caption"].split()
            for obj in (a, b):
                x0, y0, x1, y1 = obj["box"]
                assert x1 - x0 == y1 - y0 == SIZES[obj["size"]]
            # "a SIZE D REL a SIZE D": the phrase order says where each digit is.
            first = (cap[1], int(cap[2]))
            second = (cap[-2], int(cap[-1]))
            rel = " ".join(cap[3:-3])
            named = {"to the left of": lambda p, q: p["box"][2] <= q["box"][0],
                     "to the right of": lambda p, q: p["box"][0] >= q["box"][2],
                     "above": lambda p, q: p["box"][3] <= q["box"][1],
                     "below": lambda p, q: p["box"][1] >= q["box"][3],
                     "and": lambda p, q: True}[rel]
            objs = [(o["size"], o["digit"]) for o in (a, b)]
            assert sorted([first, second]) == sorted(objs)
            if first == second:  # two identical "a large 9": either reading must hold
                assert named(a, b) or named(b, a), (rec, a, b)
            else:
                p, q = (a, b) if first == objs[0] else (b, a)
                assert named(p, q), (rec, a, b)
        for rec in records[::3]:  # ink inside the boxes, none outside
            img = np.asarray(Image.open(tmp_path / "s" / rec["image"]))
            assert img.shape == (32, 32)
            mask = np.zeros_like(img, dtype=bool)
            for obj in boxes[rec["image"]]:
                x0, y0, x1, y1 = obj["box"]
                mask[y0:y1, x0:x1] = True
                assert img[y0:y1, x0:x1].max() > 100
            assert img[~mask].max() == 0


def test_cli_refuses_existing_folder(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "keep.txt").write_text("mine")
    assert main(["vision", "digit-scenes", "--out", str(tmp_path / "x"), "--scenes", "5"]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "x") in err and err.count("\n") == 1
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["keep.txt"]
    assert main(["vision", "digit-scenes", "--out", str(tmp_path / "y"), "--scenes", "5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["scenes"] == {"train": 3, "valid": 1, "test": 1}
