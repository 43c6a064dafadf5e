"""Bag of words, VLAD and improved Fisher vectors against slow per-frame
implementations of their definitions; k-means / GMM initialisation."""

import json

import numpy as np
import pytest

from triptych.video.classical import Codebook, init_centres
from triptych.video.synth import SynthSpec, synthesize
from triptych.video.io.yt8m import VideoSet, read_videos


@pytest.fixture(scope="module")
def small(tmp_path_factory):
    d = tmp_path_factory.mktemp("classical")
    synthesize(d, SynthSpec(videos=40, valid_videos=12, classes=10, min_frames=6, max_frames=12, seed=1))
    return d


def _book(kind, k=3, d=5, seed=0):
    rng = np.random.default_rng(seed)
    return Codebook(kind, rng.standard_normal((300, d)).astype(np.float32), k, seed), rng


def test_bow_and_vlad_follow_their_definitions():
    book, rng = _book("vlad")
    x = rng.standard_normal((9, 5)).astype(np.float32)
    near = [int(np.argmin([np.sum((f - c) ** 2) for c in book.means])) for f in x]
    v = np.zeros((3, 5))
    for f, k in zip(x, near):
        v[k] += f - book.means[k]
    v = np.array([b / max(np.linalg.norm(b), 1e-12) for b in v]).ravel()
    v = np.sign(v) * np.sqrt(np.abs(v))
    np.testing.assert_allclose(book.encode(x), v / np.linalg.norm(v), rtol=1e-4, atol=1e-6)
    book.kind = "bow"
    np.testing.assert_allclose(book.encode(x), np.bincount(near, minlength=3) / 9)


def test_fisher_vector_follows_its_definition():
    book, rng = _book("fv")
    x = rng.standard_normal((7, 5)).astype(np.float32)
    w, m, var = book.weights.astype(np.float64), book.means.astype(np.float64), book.vars.astype(np.float64)
    dens = np.array([[w[k] * np.prod(np.exp(-0.5 * (f - m[k]) ** 2 / var[k]) / np.sqrt(2 * np.pi * var[k]))
                      for k in range(3)] for f in x])
    g = dens / dens.sum(1, keepdims=True)
    u = np.zeros((3, 5))
    v = np.zeros((3, 5))
    for t, f in enumerate(x):
        z = (f - m) / np.sqrt(var)
        u += g[t][:, None] * z
        v += g[t][:, None] * (z * z - 1)
    u /= 7 * np.sqrt(w)[:, None]
    v /= 7 * np.sqrt(2 * w)[:, None]
    fv = np.concatenate([u.ravel(), v.ravel()])
    fv = np.sign(fv) * np.sqrt(np.abs(fv))
    np.testing.assert_allclose(book.encode(x), fv / np.linalg.norm(fv), rtol=1e-3, atol=1e-5)


def test_netvlad_and_netfv_start_from_the_codebooks(small):
    from triptych.video.models import get_model
    from triptych.video.pooling import NetFV

    videos = VideoSet(read_videos(small / "train0000.tfrecord", num_classes=10), 10)
    for name in ("netvlad", "netfv"):
        model = get_model(name, num_classes=10, clusters=4, hidden=8)
        before = model.pools[0].centres.detach().clone()
        done = init_centres(model, videos, frames=500, seed=0)
        assert done == ("gmm+gmm" if name == "netfv" else "kmeans+kmeans")
        rgb = model.pools[0].centres.detach()
        assert not np.allclose(rgb.numpy(), before.numpy()) and rgb.shape == (1024, 4)
        if isinstance(model.pools[0], NetFV):
            assert np.isfinite(model.pools[0].log_sigma.detach().numpy()).all()


def test_classical_command_and_centre_init_in_training(run_cli, small, tmp_path):
    status, out, err = run_cli("video", "classical", "--train", small / "train0000.tfrecord", "--valid",
                               small / "validate0000.tfrecord", "--classes", "10", "--encoding", "vlad",
                               "--clusters", "4", "--epochs", "3", "--fit-frames", "300", "--json")
    assert status == 0, err
    r = json.loads(out)
    assert 0 <= r["gap"] <= 1 and r["dims"] == 4 * 1024 + 2 * 128
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"""data:
  train: {small}/train*
  valid: {small}/validate*
  num_classes: 10
  frames: 4
  batch_size: 8
model:
  name: gated-netvlad
  clusters: 4
  hidden: 8
  centre_init: data
train:
  max_steps: 2
  eval_every: 2
  warmup_steps: 1
""")
    status, out, err = run_cli("video", "train", recipe, "--out", tmp_path / "run", "--json")
    assert status == 0, err
    status, out, err = run_cli("video", "train", recipe, "--out", tmp_path / "bad", "--set", "model.centre_init=oops")
    assert status == 2 and "model.centre_init" in err


@pytest.mark.parametrize("pool_name", ["NetVLAD", "NetFV"])
def test_a_zero_residual_keeps_gradients_bounded(pool_name):
    """Centres on the frames (k-means on silent audio puts every centre on its
    one value) give residuals of zero, here exactly (frames 0, centre 0 at 0).
    The normalisations' epsilon is the reference's (max(||v||, 1e-6)), so the
    gradient is ~1e6 x the incoming one; torch's default 1e-12 gave ~1e12,
    which overflowed the gradient norm of the digit-video training: every
    update skipped."""
    import torch

    from triptych.video import pooling

    torch.manual_seed(0)
    pool = getattr(pooling, pool_name)(6, 3)
    x = torch.zeros(2, 5, 6)  # [B, T, D]
    with torch.no_grad():
        pool.centres[:, 0] = 0.0
    out = pool(x, torch.ones(2, 5))
    out.sum().backward()
    norm = torch.nn.utils.clip_grad_norm_(pool.parameters(), float("inf"))
    assert torch.isfinite(out).all() and float(norm) < 1e8, float(norm)
