"""The attention-on-digit measure: peaks inside/outside the named box, chance = the box's area fraction."""

import torch

from triptych.caption.predictor import attention_on_digits
from triptych.caption.metrics import caption_scores


def test_peak_in_named_box_and_chance():
    objects = [{"digit": 7, "box": [0, 0, 16, 16]}, {"digit": 2, "box": [16, 16, 24, 24]}]
    maps = torch.zeros(4, 4, 4)  # words: a 7 and 2 -> 4 words over a 4x4 grid of 8-px regions
    maps[1, 0, 1] = 1.0  # "7": region (row 0, col 1), centre (12, 4): inside the 7's box
    maps[3, 0, 0] = 1.0  # "2": region (0, 0), centre (4, 4): not in the 2's box
    res = attention_on_digits([(["a", "7", "and", "2"], maps)], [objects], canvas=32)
    assert res["digit_words"] == 2 and res["wrong_digit_words"] == 0
    assert res["peak_in_box"] == 0.5
    assert abs(res["chance"] - (256 / 1024 + 64 / 1024) / 2) < 1e-9
    res = attention_on_digits([(["a", "5"], maps[:2])], [objects], canvas=32)
    assert res == {"digit_words": 0, "peak_in_box": None, "chance": None, "wrong_digit_words": 1}


def test_caption_scores_use_all_references_and_best_rouge():
    refs = [["a large 7 to the left of a small 2", "a small 2 to the right of a large 7"]]
    exact_second = caption_scores(["a small 2 to the right of a large 7"], refs)
    assert exact_second["bleu"] > 99.9 and exact_second["rougeL"] > 99.9  # matches the 2nd reference exactly
    assert "nrefs:2" in exact_second["bleu_signature"]
    partial = caption_scores(["a large 7 and a small 2"], refs)
    assert 0 < partial["rougeL"] < 100 and partial["bleu"] < 100
