import numpy as np
import pytest

from . import slow_metrics as slow
from triptych.video import metrics


def _case(seed, n, c, tied, density=0.3):
    rng = np.random.default_rng(seed)
    if tied:
        pred = rng.choice([0.0, 0.25, 0.5, 1.0], size=(n, c))
    else:
        pred = rng.random((n, c))
    labels = (rng.random((n, c)) < density).astype(np.int64)
    return pred, labels


@pytest.mark.parametrize("seed", range(6))
def test_random_inputs_equal_definition(seed):
    pred, labels = _case(seed, 12, 9, tied=False)
    k = [1, 3, 20][seed % 3]
    got = metrics.evaluate(pred, labels, top_k=k)
    assert got["gap"] == pytest.approx(slow.gap(pred, labels, k), abs=1e-12)
    assert got["map"] == pytest.approx(slow.mean_ap(pred, labels, k), abs=1e-12)
    assert got["hit_at_one"] == pytest.approx(slow.hit_at_one(pred, labels), abs=1e-12)
    assert got["perr"] == pytest.approx(slow.perr(pred, labels), abs=1e-12)


@pytest.mark.parametrize("seed", range(6))
def test_tied_inputs_equal_definition(seed):
    pred, labels = _case(100 + seed, 4, 5, tied=True, density=0.4)
    k = [2, 3][seed % 2]
    got = metrics.evaluate(pred, labels, top_k=k)
    assert got["gap"] == pytest.approx(slow.gap(pred, labels, k), abs=1e-12)
    assert got["map"] == pytest.approx(slow.mean_ap(pred, labels, k), abs=1e-12)
    assert got["hit_at_one"] == pytest.approx(slow.hit_at_one(pred, labels), abs=1e-12)
    assert got["perr"] == pytest.approx(slow.perr(pred, labels), abs=1e-12)


def test_known_values():
    pred = np.array([[0.9, 0.1, 0.5], [0.2, 0.8, 0.7]])
    labels = np.array([[1, 0, 0], [0, 0, 1]])
    # pooled top-2: .9(+) .8(-) .7(+) .5(-): AP = (1/1 + 2/3) / 2
    assert metrics.gap(pred, labels, 2) == pytest.approx((1 + 2 / 3) / 2)
    # a positive outside every top-1 still counts in the denominator
    assert metrics.gap(pred, labels, 1) == pytest.approx(1 / 2)
    assert metrics.hit_at_one(pred, labels) == 0.5
    assert metrics.gap(pred, np.zeros_like(labels)) == 0.0


def test_boundary_ties_pick_lowest_class():
    pred = np.array([[0.5, 0.5, 0.5, 0.1]])
    idx, vals = metrics.topk_classes(pred, 2)
    assert idx.tolist() == [[0, 1]]


def test_large_chunks_equal_small():
    pred, labels = _case(7, 300, 50, tied=False)
    a = metrics.topk_classes(pred, 20, chunk_bytes=7 * 50 * 8)  # 7 rows
    b = metrics.topk_classes(pred, 20)
    assert np.array_equal(a[0], b[0])


@pytest.mark.parametrize("tied", [False, True])
def test_topk_fast_path_equals_full_sort(tied):
    rng = np.random.default_rng(3)
    pred = rng.integers(0, 30, (300, 500)).astype(np.float64) if tied else rng.random((300, 500))
    for k in (1, 5, 20, 100):
        idx, vals = metrics.topk_classes(pred, k, chunk_bytes=64 * 500 * 8)
        expected = np.lexsort((np.broadcast_to(np.arange(500), pred.shape), -pred), axis=1)[:, :k]
        assert np.array_equal(idx, expected)
        assert np.array_equal(vals, np.take_along_axis(pred, expected, 1))


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_topk_cut_at_the_real_width(dtype):
    """3862 classes, k=20, both float widths; rows 70+ hold 40 equal maxima (their
    top-20 is decided by class index), row 79 is all -inf but one value."""
    rng = np.random.default_rng(5)
    pred = (rng.random((80, 3862)) ** 4).astype(dtype)
    pred[70:, :40] = 1.0
    pred[79] = -np.inf
    pred[79, 3000] = 0.5
    cols = np.broadcast_to(np.arange(3862), pred.shape)
    for k in (1, 20):
        idx, vals = metrics.topk_classes(pred, k, chunk_bytes=32 * 3862 * pred.itemsize)
        expected = np.lexsort((cols, -pred.astype(np.float64)), axis=1)[:, :k]
        assert np.array_equal(idx, expected)
        assert vals.dtype == dtype and np.array_equal(vals, np.take_along_axis(pred, expected, 1))


@pytest.mark.parametrize("width", [7, 100, 3862])
def test_topk_nan_ranks_last(width):
    """NaN never takes a place from a number, -inf included; rows with fewer
    numbers than k fill with NaN in class order."""
    rng = np.random.default_rng(width)
    pred = rng.random((60, width))
    pred[rng.random(pred.shape) < 0.05] = -np.inf
    for row, share in enumerate(np.linspace(0, 1, 60)):
        pred[row, rng.random(width) < share] = np.nan
    key, nan = np.where(np.isnan(pred), -np.inf, pred), np.isnan(pred)
    cols = np.broadcast_to(np.arange(width), pred.shape)
    for k in (1, 5, 20):
        idx, vals = metrics.topk_classes(pred, k)
        expected = np.lexsort((cols, nan, -key), axis=1)[:, : min(k, width)]
        assert np.array_equal(idx, expected)
        assert np.array_equal(vals, np.take_along_axis(pred, expected, 1), equal_nan=True)


def test_topk_other_float_widths_keep_their_dtype():
    rng = np.random.default_rng(4)
    pred = rng.integers(0, 5, (30, 300)).astype(np.float16)
    idx, vals = metrics.topk_classes(pred, 20)
    expected = np.lexsort((np.broadcast_to(np.arange(300), pred.shape), -pred.astype(np.float64)), axis=1)[:, :20]
    assert vals.dtype == np.float16 and np.array_equal(idx, expected)
    assert np.array_equal(vals, np.take_along_axis(pred, expected, 1))
