"""The classical encodings the talk puts before their learnable versions.

Each turns a video's frames [T, D] into one fixed vector from a codebook
fitted on a sample of training frames (rgb and audio apart, K and K/2
entries, as the learnable poolings split them):

* bag of words: k-means (scikit-learn MiniBatchKMeans), each frame counted
  at its nearest centre, the histogram divided by T                [K];
* VLAD (Jegou et al. 2010, with Arandjelovic & Zisserman 2013's fixes):
  per centre the sum of residuals x_t - c_k of its frames, each centre's
  block L2-normalised (intra-normalisation), signed square root, L2 [K*D];
* improved Fisher vector (Perronnin et al. 2010) from a diagonal GMM:
  posteriors g_tk, u_k = sum_t g_tk (x_t - m_k) / s_k / (T sqrt(w_k)),
  v_k = sum_t g_tk ((x_t - m_k)^2 / s_k^2 - 1) / (T sqrt(2 w_k)),
  signed square root, L2                                           [2*K*D].

Then the same logistic / MoE head as the learnable models, trained on the
fixed vectors. `init_centres` gives NetVLAD its k-means centres and NetFV
its GMM means and deviations, the initialisation those papers suggest.
"""

from __future__ import annotations

import numpy as np

from triptych.errors import UserError
from triptych.video.io.yt8m import AUDIO_DIM, RGB_DIM, VideoSet, dequantize

ENCODINGS = ("bow", "vlad", "fv")


def frame_sample(videos: VideoSet, n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to n frames drawn uniformly from all frames: (rgb [n, 1024], audio [n, 128]) float32."""
    if videos.level != "frame":
        raise UserError("the classical encodings need frame-level records")
    total = len(videos.rgb)
    pick = np.sort(np.random.default_rng(seed).choice(total, min(n, total), replace=False))
    return dequantize(videos.rgb[pick]), dequantize(videos.audio[pick])


class Codebook:
    """k-means centres (bow, vlad) or a diagonal GMM (fv) of one feature's frames."""

    def __init__(self, kind: str, x: np.ndarray, k: int, seed: int):
        self.kind, self.k = kind, k
        if kind == "fv":
            from sklearn.mixture import GaussianMixture

            g = GaussianMixture(k, covariance_type="diag", max_iter=50, reg_covar=1e-3, random_state=seed).fit(x)
            self.weights = g.weights_.astype(np.float32)  # [K]
            self.means = g.means_.astype(np.float32)  # [K, D]
            self.vars = g.covariances_.astype(np.float32)  # [K, D]
        else:
            from sklearn.cluster import MiniBatchKMeans

            km = MiniBatchKMeans(k, batch_size=2048, n_init=3, random_state=seed).fit(x)
            self.means = km.cluster_centers_.astype(np.float32)  # [K, D]

    def nearest(self, x: np.ndarray) -> np.ndarray:
        d = (x * x).sum(1, keepdims=True) - 2 * x @ self.means.T + (self.means ** 2).sum(1)  # [T, K]
        return d.argmin(1)

    def posteriors(self, x: np.ndarray) -> np.ndarray:
        inv = 1.0 / self.vars  # [K, D]
        logp = -0.5 * ((x * x) @ inv.T - 2 * x @ (self.means * inv).T + (self.means ** 2 * inv).sum(1)
                       + np.log(self.vars).sum(1) + x.shape[1] * np.log(2 * np.pi)) + np.log(self.weights)
        logp -= logp.max(1, keepdims=True)
        p = np.exp(logp)
        return p / p.sum(1, keepdims=True)  # [T, K]

    def encode(self, x: np.ndarray) -> np.ndarray:
        """One video's frames [T, D] -> its vector."""
        T = max(1, len(x))
        if self.kind == "bow":
            return np.bincount(self.nearest(x), minlength=self.k).astype(np.float32) / T
        if self.kind == "vlad":
            a = np.zeros((len(x), self.k), np.float32)
            a[np.arange(len(x)), self.nearest(x)] = 1.0
            v = a.T @ x - a.sum(0)[:, None] * self.means  # [K, D]
            v /= np.maximum(np.linalg.norm(v, axis=1, keepdims=True), 1e-12)  # intra-normalisation
            return _power_l2(v.ravel())
        g = self.posteriors(x)  # [T, K]
        s = np.sqrt(self.vars)
        z = (x[:, None, :] - self.means[None]) / s[None]  # [T, K, D]
        u = np.einsum("tk,tkd->kd", g, z) / (T * np.sqrt(self.weights)[:, None])
        v = np.einsum("tk,tkd->kd", g, z * z - 1) / (T * np.sqrt(2 * self.weights)[:, None])
        return _power_l2(np.concatenate([u.ravel(), v.ravel()]))


def _power_l2(v: np.ndarray) -> np.ndarray:
    v = np.sign(v) * np.sqrt(np.abs(v))
    return (v / max(float(np.linalg.norm(v)), 1e-12)).astype(np.float32)


def fit(videos: VideoSet, kind: str, clusters: int, frames: int = 20_000, seed: int = 0) -> list[Codebook]:
    """Codebooks for rgb (K) and audio (K/2)."""
    if kind not in ENCODINGS:
        raise UserError(f"classical encoding must be one of {', '.join(ENCODINGS)}, not {kind!r}")
    if clusters < 2:
        raise UserError(f"classical clusters must be >= 2, got {clusters}")
    rgb, audio = frame_sample(videos, frames, seed)
    return [Codebook(kind, rgb, clusters, seed), Codebook(kind, audio, max(1, clusters // 2), seed)]


def encode(videos: VideoSet, books: list[Codebook]) -> np.ndarray:
    """Every video's vector [N, E] (rgb's then audio's)."""
    out = []
    for i in range(len(videos)):
        lo, hi = videos.offsets[i], videos.offsets[i + 1]
        out.append(np.concatenate([books[0].encode(dequantize(videos.rgb[lo:hi])),
                                   books[1].encode(dequantize(videos.audio[lo:hi]))]))
    return np.stack(out)


def init_centres(model, videos: VideoSet, frames: int = 20_000, seed: int = 0) -> str:
    """NetVLAD centres from k-means, NetFV's centres and deviations from a
    diagonal GMM, on a sample of training frames; the assignment layer
    starts at 2 c_k (the nearest centre wins, Arandjelovic et al. 2016).
    Returns what was done."""
    import torch

    from triptych.video.pooling import NetFV, NetVLAD

    pools = list(model.pools or [])
    if not pools or not all(isinstance(p, (NetVLAD, NetFV)) and getattr(p, "centres", None) is not None
                            for p in pools):
        raise UserError("model.centre_init: only NetVLAD and NetFV poolings have centres to initialise")
    rgb, audio = frame_sample(videos, frames, seed)
    samples = [rgb, audio] if len(pools) == 2 else [np.concatenate([rgb, audio], 1)]
    kinds = []
    with torch.no_grad():
        for pool, x in zip(pools, samples):
            kind = "fv" if isinstance(pool, NetFV) else "vlad"
            book = Codebook(kind, x, pool.clusters, seed)
            pool.centres.copy_(torch.from_numpy(book.means.T.copy()))  # (D, K)
            pool.assign[0].weight.copy_(torch.from_numpy(2 * book.means))  # (K, D)
            if kind == "fv":
                pool.log_sigma.copy_(torch.from_numpy(0.5 * np.log(book.vars.T)))
            kinds.append("gmm" if kind == "fv" else "kmeans")
    return "+".join(kinds)


def train_head(x_tr, y_tr, x_va, y_va, head: str = "moe", epochs: int = 20, lr: float = 1e-3, batch: int = 128,
               seed: int = 0, top_k: int = 20) -> dict:
    """The logistic / MoE head on fixed vectors; validation GAP and friends."""
    import torch

    from triptych.video.heads import make_head
    from triptych.video.metrics import evaluate
    from triptych.video.loss import bce_sum

    torch.manual_seed(seed)
    net = make_head(head, x_tr.shape[1], y_tr.shape[1])
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    xt, yt = torch.from_numpy(x_tr), torch.from_numpy(y_tr)
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(xt), generator=g).split(batch):
            loss = bce_sum(net(xt[idx]), yt[idx]) / len(idx)
            opt.zero_grad()
            loss.backward()
            opt.step()
    with torch.no_grad():
        probs = net(torch.from_numpy(x_va))["probs"].numpy()
    return evaluate(probs, y_va, top_k)


def run(train_paths, valid_paths, *, encoding: str = "vlad", clusters: int = 16, head: str = "moe",
        classes: int | None = None, fit_frames: int = 20_000, epochs: int = 20, lr: float = 1e-3,
        seed: int = 0) -> dict:
    """Fit the codebooks on the training frames, encode both sets, train the
    head, score the validation set: its metrics, the vector size and seconds."""
    import time

    from triptych.video.io.yt8m import read_videos

    if epochs < 1 or lr <= 0 or fit_frames < 2:
        raise UserError(f"classical: epochs must be >= 1 (got {epochs}), lr > 0 (got {lr}), "
                        f"fit_frames >= 2 (got {fit_frames})")
    t0 = time.perf_counter()
    train = VideoSet(read_videos(train_paths, num_classes=classes), classes)
    valid = VideoSet(read_videos(valid_paths, num_classes=train.num_classes), train.num_classes)
    books = fit(train, encoding, clusters, fit_frames, seed)
    x_tr, x_va = encode(train, books), encode(valid, books)
    t1 = time.perf_counter()
    y_tr, y_va = train.multi_hot(range(len(train))), valid.multi_hot(range(len(valid)))
    scores = train_head(x_tr, y_tr, x_va, y_va, head, epochs, lr, seed=seed)
    return {**scores, "encoding": encoding, "clusters": clusters, "head": head, "dims": int(x_tr.shape[1]),
            "videos": len(train), "encode_seconds": round(t1 - t0, 1), "seconds": round(time.perf_counter() - t0, 1)}
