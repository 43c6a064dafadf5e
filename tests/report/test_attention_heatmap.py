"""attention_heatmap: one panel per map, checked shapes, readable labels, atomic writes."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from triptych.errors import UserError
from triptych.plots import _fonts, _label, attention_heatmap


def _maps(t, s, n=1, seed=0):
    rng = np.random.default_rng(seed)
    maps = [rng.random((t, s)) for _ in range(n)]
    return [m / m.sum(1, keepdims=True) for m in maps]


def test_one_panel_per_map_and_the_picture_grows_with_the_tokens(tmp_path):
    import matplotlib.image as mpimg

    src, tgt = "a small library to parse files".split(), ["parse", "files", "</s>"]
    one = attention_heatmap(_maps(3, 6)[0], src, tgt, tmp_path / "one.png")
    three = attention_heatmap(_maps(3, 6, 3), src, tgt, tmp_path / "three.png", titles=["layer 1", "layer 2", "copy"])
    h1, w1 = mpimg.imread(one).shape[:2]
    h3, w3 = mpimg.imread(three).shape[:2]
    assert w3 == w1 and h3 > 2.5 * h1 * 0.8  # three panels stacked
    wide = attention_heatmap(_maps(3, 40)[0], [f"w{i}" for i in range(40)], tgt, tmp_path / "wide.png")
    assert mpimg.imread(wide).shape[1] > 2 * w1
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary left


def test_labels_never_break_the_drawing(tmp_path):
    _, covered = _fonts()
    assert _label(" foo\n", covered) == "foo⏎" and _label("\n", covered) == "⏎" and _label(" ", covered) == "␣"
    assert _label("$x$", covered) == r"\$x\$"  # no mathtext
    if ord("这") not in covered:  # no CJK font installed: code points instead of empty boxes
        assert _label("这个", covered) == "U+8FD9U+4E2A"
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "Glyph ... missing from font"
        attention_heatmap(_maps(2, 4)[0], ["这个", "软件", "$x", "\n"], ["工具", "</s>"], tmp_path / "zh.png")


def test_bad_shapes_titles_and_names(tmp_path):
    with pytest.raises(ValueError, match="shape"):
        attention_heatmap(np.zeros((2, 3)), ["a", "b"], ["c", "d"], tmp_path / "x.png")
    with pytest.raises(ValueError, match="titles"):
        attention_heatmap(_maps(2, 2, 2), ["a", "b"], ["c", "d"], tmp_path / "x.png", titles=["only one"])
    with pytest.raises(UserError, match="unsupported picture format"):
        attention_heatmap(_maps(2, 2)[0], ["a", "b"], ["c", "d"], tmp_path / "x.txt")
    assert list(tmp_path.iterdir()) == []
