"""IDX reading and the Fashion-MNIST split, on small IDX files the tests write themselves."""

import gzip

import numpy as np
import pytest
import torch

from triptych.errors import UserError
from triptych.vision.config import DataConfig
from triptych.vision.data import build_splits
from triptych.vision.fashion import CLASSES, random_crop_flip, split_indices
from triptych.vision.idx import read_idx, write_idx


def make_fashion(root, n_train=120, n_test=40, gz=True, seed=0):
    """A Fashion-MNIST-shaped folder: class c's images are bright in row block c, so they can be learned."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    ext = ".gz" if gz else ""
    for part, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 10
        images = rng.integers(0, 60, size=(n, 28, 28)).astype(np.uint8)
        for i, c in enumerate(labels):
            images[i, 2 * c + 4:2 * c + 7, 4:24] = 250
        write_idx(root / f"{part}-images-idx3-ubyte{ext}", images)
        write_idx(root / f"{part}-labels-idx1-ubyte{ext}", labels)
    return root


def test_idx_round_trip_gzip_and_raw(tmp_path):
    a = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    for name in ("x.gz", "x"):
        write_idx(tmp_path / name, a)
        b = read_idx(tmp_path / name, ndim=3)
        assert b.shape == (2, 3, 4) and np.array_equal(a, b)
    raw = (tmp_path / "x").read_bytes()
    assert raw[:4] == b"\x00\x00\x08\x03" and raw[4:8] == (2).to_bytes(4, "big")


@pytest.mark.parametrize("damage,message", [
    (lambda raw: raw[:-5], "truncated IDX file"),
    (lambda raw: b"\x12\x34" + raw[2:], "not an IDX file"),
    (lambda raw: raw + b"\x00", "bytes after"),
    (lambda raw: raw[:6], "truncated IDX header"),
    (lambda raw: b"", "not an IDX file"),
])
def test_idx_damage_is_one_line_naming_the_file(tmp_path, damage, message):
    p = tmp_path / "bad-idx3-ubyte"
    write_idx(p, np.zeros((3, 5, 5), np.uint8))
    p.write_bytes(damage(p.read_bytes()))
    with pytest.raises(UserError, match=message) as e:
        read_idx(p, ndim=3)
    assert str(p) in str(e.value) and "\n" not in str(e.value)


def test_truncated_gzip_and_wrong_dimensions(tmp_path):
    p = write_idx(tmp_path / "a.gz", np.zeros((50, 28, 28), np.uint8))
    p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(UserError, match="gzip"):
        read_idx(p)
    q = write_idx(tmp_path / "labels", np.zeros(7, np.uint8))
    with pytest.raises(UserError, match="1 dimensions, expected 3"):
        read_idx(q, ndim=3)


def test_split_is_fixed_stratified_and_disjoint():
    labels = np.repeat(np.arange(10), 600)
    tr, va = split_indices(labels, 0.1)
    tr2, va2 = split_indices(labels, 0.1)
    assert np.array_equal(tr, tr2) and np.array_equal(va, va2)
    assert len(va) == 600 and len(tr) == 5400 and not set(tr) & set(va)
    assert np.bincount(labels[va]).tolist() == [60] * 10


def test_fashion_splits_from_a_root_anywhere(tmp_path):
    root = make_fashion(tmp_path / "fm", gz=False)
    cfg = DataConfig(name="fashion", root=str(root), image_size=32, valid_fraction=0.25)
    s = build_splits(cfg)
    assert s.classes == CLASSES and (len(s.train), len(s.valid), len(s.test)) == (90, 30, 40)
    x, y = s.train.batch([0, 1, 2], train=False)
    assert x.shape == (3, 1, 32, 32) and x[:, :, :2].abs().sum() == 0  # 28 centred in 32 by zero padding
    assert 0 <= x.min() and x.max() <= 1 and y.dtype == torch.long
    s3 = build_splits(DataConfig(name="fashion", root=str(root), image_size=16, channels=3))
    assert s3.test.batch([0], train=False)[0].shape == (1, 3, 16, 16)
    limited = build_splits(DataConfig(name="fashion", root=str(root), limit_train=10))
    assert len(limited.train) == 10


def test_fashion_missing_or_bad_files(tmp_path):
    with pytest.raises(UserError, match="no such directory"):
        build_splits(DataConfig(name="fashion", root=str(tmp_path / "nowhere")))
    root = make_fashion(tmp_path / "fm")
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(UserError, match="t10k-labels-idx1-ubyte"):
        build_splits(DataConfig(name="fashion", root=str(root)))
    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.arange(39) % 10)
    with pytest.raises(UserError, match="39 labels for the 40 images"):
        build_splits(DataConfig(name="fashion", root=str(root)))
    write_idx(root / "t10k-labels-idx1-ubyte.gz", np.full(40, 10))
    with pytest.raises(UserError, match="label 10 at record 0"):
        build_splits(DataConfig(name="fashion", root=str(root)))
    with open(root / "train-images-idx3-ubyte.gz", "wb") as f:
        f.write(gzip.compress(b"\x00\x00\x08\x03" + (60000).to_bytes(4, "big") + (28).to_bytes(4, "big") * 2 + b"\x00" * 100))
    with pytest.raises(UserError, match="train-images-idx3-ubyte.gz: truncated IDX file"):
        build_splits(DataConfig(name="fashion", root=str(root)))


def test_random_crop_flip_shifts_within_padding():
    torch.manual_seed(0)
    x = torch.zeros(64, 1, 8, 8)
    x[:, :, 3, 3] = 1.0
    y = random_crop_flip(x, padding=2, hflip=False)
    rows, cols = (y[:, 0] == 1).nonzero()[:, 1], (y[:, 0] == 1).nonzero()[:, 2]
    assert y.shape == x.shape and y.sum() <= 64
    assert rows.min() >= 1 and rows.max() <= 5 and cols.min() >= 1 and cols.max() <= 5
    assert len(set(rows.tolist())) > 1  # it does move things
    assert y.stride() == (64, 64, 8, 1)  # plain NCHW: the run's memory_format, not the gather, picks the layout
    f = random_crop_flip(x, padding=0, hflip=True)
    flipped = (f[:, 0, 3, 4] == 1).sum()
    assert 0 < flipped < 64 and torch.equal(f[:, 0, 3, 3] + f[:, 0, 3, 4], torch.ones(64))


def test_random_erasing_replaces_one_rectangle_of_the_chosen_images():
    from triptych.vision.transforms import random_erasing

    torch.manual_seed(0)
    x = torch.full((400, 1, 28, 28), -1.0)  # noise lies in [0, 1]: erased pixels are the ones >= 0
    y = random_erasing(x, p=0.5)
    assert y.shape == x.shape and torch.equal(random_erasing(x, p=0.0), x)
    erased = y[:, 0] >= 0  # (B, H, W)
    counts = erased.flatten(1).sum(1)
    hit = counts > 0
    assert 150 < int(hit.sum()) < 250  # about half the images
    for mask in erased[hit]:
        rows, cols = mask.any(1).nonzero()[:, 0], mask.any(0).nonzero()[:, 0]
        h, w = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert int(mask.sum()) == h * w  # one solid rectangle
        assert 0.01 * 784 <= h * w <= 0.45 * 784 and h < 28 and w < 28
    assert torch.all((y[hit][y[hit] >= 0] <= 1))
    sizes = counts[hit].float() / 784
    assert sizes.min() < 0.1 and sizes.max() > 0.3  # the whole range of areas is drawn


def test_flip_tta_averages_the_two_distributions():
    from triptych.vision.task import predict_set

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3), torch.nn.Flatten(), torch.nn.Linear(4 * 6 * 6, 3)).eval()
    images = torch.randn(10, 1, 8, 8)

    class Task:  # the one method predict_set asks of a task
        def prepare(self, _images, idx, train, device):
            return images[idx], torch.zeros(len(idx), dtype=torch.long)

    plain, _ = predict_set(Task(), model, images, batch_size=4)
    tta, _ = predict_set(Task(), model, images, batch_size=4, flip=True)
    with torch.no_grad():
        mirrored = model(images.flip(-1))
    want = torch.log((plain.softmax(1) + mirrored.softmax(1)) / 2)
    assert torch.allclose(tta, want, atol=1e-5) and torch.allclose(tta.exp().sum(1), torch.ones(10))
    symmetric = images + images.flip(-1)  # an image equal to its mirror: TTA changes nothing
    images = symmetric
    plain, _ = predict_set(Task(), model, images)
    tta, _ = predict_set(Task(), model, images, flip=True)
    assert torch.allclose(tta, plain.log_softmax(1), atol=1e-5)


def test_fashion_recipe_trains_and_evaluates_per_class(tmp_path, capsys):
    import json

    from triptych.cli import main

    root = make_fashion(tmp_path / "fm", n_train=200, n_test=50)
    run = tmp_path / "run"
    status = main(["vision", "train", "configs/vision/lenet5-fashion.yaml", "--out", str(run),
                   "--set", f"data.root={root}", "--set", "train.max_steps=30", "--set", "train.eval_every=15",
                   "--set", "train.save_every=15", "--set", "train.warmup_steps=2", "--set", "train.log_every=0",
                   "--set", "train.threads=1", "--json"])
    summary = json.loads(capsys.readouterr().out)
    assert status == 0 and summary["test_images"] == 50  # the official test files, read at the end
    status = main(["vision", "eval", "--checkpoint", str(run / "best"), "--data", "fashion:test",
                   "--plot", str(tmp_path / "cm.png"), "--json"])
    result = json.loads(capsys.readouterr().out)
    assert status == 0 and result["classes"] == CLASSES and result["images"] == 50
    cm = np.array(result["confusion"])
    assert np.allclose(result["per_class_accuracy"], cm.diagonal() / cm.sum(1))
    assert result["accuracy"] == pytest.approx(cm.trace() / 50)
    assert (tmp_path / "cm.png").read_bytes()[:4] == b"\x89PNG"
    status = main(["vision", "eval", "--checkpoint", str(run / "best"), "--data", "fashion:test", "--tta", "flip",
                   "--json"])
    flipped = json.loads(capsys.readouterr().out)
    assert status == 0 and flipped["tta"] == "flip" and flipped["images"] == 50 and result["tta"] == "none"
    assert 0 <= flipped["accuracy"] <= 1 and flipped["loss"] > 0
    status = main(["vision", "eval", "--checkpoint", str(run / "best"), "--data", "fashion:nope"])
    assert status == 2
