"""Plots written to files with matplotlib's headless Agg backend.

Domain-free: functions take plain arrays and label lists, never models or
datasets, and write through `atomic_path`, so an interrupted command leaves
no half-written picture.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

import numpy as np

from triptych.errors import UserError

_FORMATS = (".png", ".pdf", ".svg", ".jpg", ".jpeg")


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path, dpi: int) -> None:
    """Write `fig` atomically, in the format its file name asks for."""
    from triptych.files import atomic_path

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=path.suffix.lstrip(".").lower().replace("jpg", "jpeg"), dpi=dpi)


def _check_path(path: str | os.PathLike) -> Path:
    p = Path(path)
    if p.suffix.lower() not in _FORMATS:
        raise UserError(f"{p}: unsupported picture format (use {', '.join(_FORMATS)})")
    if p.is_dir():
        raise UserError(f"{p}: is a directory, expected a picture file name")
    return p


def confusion_matrix(
    counts: Sequence[Sequence[int]] | np.ndarray,
    labels: Sequence[str],
    path: str | os.PathLike,
    *,
    title: str | None = None,
    normalize: bool = False,
) -> Path:
    """Draw a confusion matrix (rows: true class, columns: predicted) to `path`.

    Each cell shows its count (or row fraction with `normalize`); the
    colour is the row-normalised rate, so rare classes are as readable as
    common ones. The diagonal is what a perfect classifier fills.
    """
    p = _check_path(path)
    cm = np.asarray(counts, dtype=np.float64)
    n = len(labels)
    if cm.shape != (n, n):
        raise ValueError(f"confusion matrix of shape {cm.shape} for {n} labels")
    rates = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    plt = _pyplot()
    side = min(max(4.0, 0.5 * n + 2.0), 20.0)
    fig, ax = plt.subplots(figsize=(side + 1.0, side))
    try:
        im = ax.imshow(rates, cmap="Blues", vmin=0.0, vmax=1.0)
        fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04, label="fraction of the true class")
        ax.set_xticks(range(n), labels=list(labels), rotation=90 if n > 12 else 0)
        ax.set_yticks(range(n), labels=list(labels))
        ax.set_xlabel("predicted")
        ax.set_ylabel("true")
        if n <= 30:  # beyond that the numbers are unreadable; the colours still speak
            for i in range(n):
                for j in range(n):
                    value = rates[i, j] if normalize else cm[i, j]
                    if value == 0:
                        continue
                    text = f"{value:.2f}" if normalize else f"{int(value)}"
                    ax.text(j, i, text, ha="center", va="center", fontsize=8,
                            color="white" if rates[i, j] > 0.5 else "black")
        total = cm.sum()
        accuracy = np.trace(cm) / total if total else 0.0
        ax.set_title(f"{title + ' — ' if title else ''}accuracy {100 * accuracy:.2f}% of {int(total)}")
        fig.tight_layout()
        _save(fig, p, dpi=120)
    finally:
        plt.close(fig)
    return p


def class_ap_bars(
    ap: Sequence[float] | np.ndarray,
    labels: Sequence[str],
    path: str | os.PathLike,
    *,
    positives: Sequence[int] | None = None,
    title: str | None = None,
    limit: int = 40,
) -> Path:
    """Per-class average precision as horizontal bars, best at the top, to `path`.

    With more classes than `limit`, the best and the worst limit/2 are drawn
    (a dashed line marks the classes left out): with thousands of classes
    the ends of the ranking are what a reader can act on. `positives`
    annotates each bar with the class's number of positive examples, since a
    class with two positives has a very noisy AP.
    """
    p = _check_path(path)
    ap = np.asarray(ap, dtype=np.float64)
    if len(ap) != len(labels) or (positives is not None and len(positives) != len(ap)):
        raise ValueError(f"{len(ap)} APs for {len(labels)} labels")
    order = np.argsort(-ap, kind="stable")
    cut = None
    if len(order) > limit:
        cut = limit // 2
        order = np.concatenate([order[:cut], order[-(limit - cut):]])
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(7.5, max(2.5, 0.24 * len(order) + 1.2)))
    try:
        y = np.arange(len(order))
        ax.barh(y, ap[order], color="#4c72b0")
        names = [str(labels[i]) + (f"  ({positives[i]})" if positives is not None else "") for i in order]
        ax.set_yticks(y, labels=names, fontsize=8)
        ax.invert_yaxis()
        ax.set_xlim(0, 1)
        ax.set_xlabel("average precision" + ("  (positives in parentheses)" if positives is not None else ""))
        heading = f"{title + ' — ' if title else ''}mean AP {ap.mean():.3f} over {len(ap)} classes"
        if cut is not None:
            ax.axhline(cut - 0.5, color="grey", linestyle="--", linewidth=1)
            heading += f"\nthe best {cut} and worst {len(order) - cut}; {len(ap) - len(order)} at the dashed line not shown"
        ax.set_title(heading, fontsize=10)
        ax.grid(axis="x", alpha=0.3)
        fig.tight_layout()
        _save(fig, p, dpi=110)
    finally:
        plt.close(fig)
    return p


# --- attention heat-maps -------------------------------------------------------

# Fonts tried after DejaVu Sans for characters it lacks (CJK); any one installed is used.
_FALLBACK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Noto Sans SC", "Source Han Sans SC",
                   "WenQuanYi Zen Hei", "WenQuanYi Micro Hei", "Droid Sans Fallback", "AR PL UMing CN")
_FONTS: tuple[list[str], set[int]] | None = None


def _fonts() -> tuple[list[str], set[int]]:
    """(font families to draw labels with, the code points they cover), found once."""
    global _FONTS
    if _FONTS is None:
        from matplotlib import font_manager
        from matplotlib.ft2font import FT2Font

        installed = {f.name: f.fname for f in font_manager.fontManager.ttflist}
        families = ["DejaVu Sans"] + [name for name in _FALLBACK_FONTS if name in installed][:1]
        covered: set[int] = set()
        for name in families:
            path = installed.get(name) or font_manager.findfont(name, fallback_to_default=True)
            try:
                covered.update(FT2Font(path).get_charmap())
            except (OSError, RuntimeError):
                pass
        _FONTS = (families, covered)
    return _FONTS


def _label(token: str, covered: set[int]) -> str:
    """A token as a tick label: visible whitespace, no mathtext, no missing glyphs."""
    text = token.replace("\n", "⏎").replace("\t", "⇥").strip() or "␣"
    text = "".join(ch if ord(ch) in covered else f"U+{ord(ch):04X}" for ch in text)
    return text.replace("$", r"\$")


def attention_heatmap(
    weights,
    source_tokens: Sequence[str],
    target_tokens: Sequence[str],
    path: str | os.PathLike,
    titles: Sequence[str] | None = None,
) -> Path:
    """Draw attention alignments: source tokens along x, generated tokens along y.

    `weights` is one (T, S) array or a list of them (one panel each, stacked
    top to bottom, e.g. one per layer), T = len(target_tokens), S =
    len(source_tokens); row t is the attention paid while producing target
    token t. As in Bahdanau et al.'s figure, white is full attention and
    black none; each panel's scale runs from 0 to its own maximum, so a
    diffuse layer is as readable as a sharp one. Characters the installed
    fonts cannot draw (CJK without a CJK font) are shown as U+XXXX.
    """
    p = _check_path(path)
    panels = [np.asarray(w, dtype=np.float64) for w in (weights if isinstance(weights, (list, tuple)) else [weights])]
    T, S = len(target_tokens), len(source_tokens)
    if not panels:
        raise ValueError("no attention weights to draw")
    for w in panels:
        if w.shape != (T, S):
            raise ValueError(f"attention weights of shape {w.shape} for {T} target and {S} source tokens")
    if titles is not None and len(titles) != len(panels):
        raise ValueError(f"{len(titles)} titles for {len(panels)} panels")
    families, covered = _fonts()
    xlabels = [_label(t, covered) for t in source_tokens]
    ylabels = [_label(t, covered) for t in target_tokens]
    plt = _pyplot()
    cell = 0.22 if S <= 60 else 0.16  # inches per token
    fontsize = 8 if S <= 60 else 6
    width = min(max(4.0, 1.8 + cell * S), 40.0)
    heights = [min(max(1.6, 0.9 + cell * T), 16.0)] * len(panels)
    with plt.rc_context({"font.family": families}):
        fig, axes = plt.subplots(len(panels), 1, figsize=(width, sum(heights) + 0.3 * len(panels)), squeeze=False,
                                 gridspec_kw={"height_ratios": heights})
        try:
            for i, (ax, w) in enumerate(zip(axes[:, 0], panels)):
                im = ax.imshow(w, cmap="gray", vmin=0.0, vmax=max(float(w.max()), 1e-9), aspect="auto",
                               interpolation="nearest")
                fig.colorbar(im, ax=ax, fraction=0.02, pad=0.01)
                ax.set_xticks(range(S), labels=xlabels, rotation=90, fontsize=fontsize)
                ax.set_yticks(range(T), labels=ylabels, fontsize=fontsize)
                ax.tick_params(length=2, pad=1)
                if titles is not None:
                    ax.set_title(titles[i], fontsize=9, loc="left")
            axes[-1, 0].set_xlabel("source")
            for ax in axes[:, 0]:
                ax.set_ylabel("generated")
            fig.tight_layout()
            _save(fig, p, dpi=110)
        finally:
            plt.close(fig)
    return p


def image_attention_grid(
    images: Sequence,
    words: Sequence[Sequence[str]],
    weights: Sequence,
    path: str | os.PathLike,
) -> Path:
    """Captioning's attention: one row per image, the image then one panel per generated word.

    `images[i]` is an (H, W) or (H, W, 3) array in [0, 1]; `weights[i]` a
    (T_i, h, w) array, T_i = len(words[i]), the attention over the feature
    map's h x w regions while producing word t (Xu et al. 2015, fig. 3). Each
    panel shows the image with the weights upsampled (bilinear) to its size
    as a red overlay, scaled to the panel's own maximum; the red dot marks
    the peak region.
    """
    p = _check_path(path)
    if not (len(images) == len(words) == len(weights)) or not images:
        raise ValueError(f"{len(images)} images, {len(words)} captions and {len(weights)} attention maps")
    maps = [np.asarray(w, dtype=np.float64) for w in weights]
    for w, ws in zip(maps, words):
        if w.ndim != 3 or w.shape[0] != len(ws):
            raise ValueError(f"attention of shape {w.shape} for {len(ws)} words")
    plt = _pyplot()
    cols = 1 + max(len(ws) for ws in words)
    fig, axes = plt.subplots(len(images), cols, figsize=(1.3 * cols, 1.45 * len(images)), squeeze=False)
    try:
        for r, (img, ws, w) in enumerate(zip(images, words, maps)):
            img = np.asarray(img, dtype=np.float64)
            H, W = img.shape[:2]
            shown = img if img.ndim == 3 else np.stack([img] * 3, -1)
            for ax in axes[r]:
                ax.axis("off")
            axes[r, 0].imshow(shown, interpolation="nearest")
            axes[r, 0].set_title("image", fontsize=7)
            h, gw = w.shape[1:]
            for t, word in enumerate(ws):
                ax = axes[r, t + 1]
                ax.imshow(0.6 * shown, interpolation="nearest")
                ax.imshow(w[t] / max(float(w[t].max()), 1e-9), cmap="Reds", alpha=0.55, vmin=0, vmax=1,
                          extent=(-0.5, W - 0.5, H - 0.5, -0.5), interpolation="bilinear")
                peak = int(w[t].argmax())
                ax.plot([(peak % gw + 0.5) * W / gw - 0.5], [(peak // gw + 0.5) * H / h - 0.5], "o", color="red",
                        markersize=2.5)
                ax.set_title(word, fontsize=7)
        fig.tight_layout(pad=0.3)
        _save(fig, p, dpi=110)
    finally:
        plt.close(fig)
    return p
