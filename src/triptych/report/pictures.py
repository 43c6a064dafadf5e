"""Each domain's picture of a trained run, drawn from its best checkpoint on held-out data.

- vision: the confusion matrix on the run's test split (its valid split when it has no test);
- video: the per-class average precision of the best model on the run's valid files;
- text: the attention of one valid example while the model writes its own summary of it
  (decoded with the recipe's beam, as `triptych text summarize` does).

Each function returns (picture path, {figures of note}) and raises UserError
when the data it needs is not there; the report then leaves the picture out
and says why, rather than failing the whole page.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from triptych.errors import UserError


def vision_confusion(ckpt: Path, out: Path) -> tuple[Path, dict]:
    from triptych.plots import confusion_matrix
    from triptych.vision.predictor import Classifier

    clf = Classifier(ckpt)
    split = "test"
    try:
        images = clf.dataset(None)
    except UserError:  # no test split: the valid one
        if not clf.cfg.data.valid:
            raise
        images, split = clf.dataset(clf.cfg.data.valid), "valid"
    result = clf.evaluate(images)
    path = confusion_matrix(result["confusion"], clf.classes, out, title=f"{clf.name}, {split} split")
    return path, {"split": split, "images": result["images"], "accuracy": result["accuracy"]}


def per_class_ap(probs: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(classes with a positive, their AP over all videos), ties averaged as the official metric does.

    Each class is ranked over every video, the usual per-class AP. The
    run's `map` metric ranks only the (video, class) pairs within each
    video's top 20, which drops positives and negatives alike, so the two
    means differ slightly (0.99125 here against map 0.99129 for the
    gated-netvlad run of docs/results.md).
    """
    from triptych.video.metrics import mean_ap

    classes = np.flatnonzero((labels > 0).any(0))
    ap = np.array([mean_ap(probs[:, [c]], labels[:, [c]], top_k=1) for c in classes])
    return classes, ap


def video_class_ap(ckpt: Path, out: Path) -> tuple[Path, dict]:
    from triptych.plots import class_ap_bars
    from triptych.video.predictor import VideoPredictor
    from triptych.video.task import load_set

    model = VideoPredictor(ckpt)
    if not model.cfg.data.valid:
        raise UserError(f"{ckpt}/config.yaml: the run has no data.valid files to score")
    videos = load_set(model.cfg.data.valid, model.cfg)
    probs, _ = model.predict(videos)
    labels = videos.multi_hot(range(len(videos)))
    classes, ap = per_class_ap(probs, labels)
    if len(classes) == 0:
        raise UserError(f"{model.cfg.data.valid}: no labelled videos to score")
    positives = (labels[:, classes] > 0).sum(0).tolist()
    path = class_ap_bars(ap, [f"class {c}" for c in classes], out, positives=positives,
                         title=f"{model.model_cfg.name}, {len(videos)} valid videos")
    return path, {"videos": len(videos), "classes_scored": int(len(classes)), "mean_class_ap": float(ap.mean())}


def text_attention(ckpt: Path, out: Path) -> tuple[Path, dict]:
    import torch

    from triptych.plots import attention_heatmap
    from triptych.text.data import read_pairs
    from triptych.text.generation.generate import generate
    from triptych.text.predictor import Summarizer

    summ = Summarizer(ckpt)
    cfg, tok, model = summ.cfg, summ.tokenizer, summ.model
    if not cfg.data.valid:
        raise UserError(f"{ckpt}/config.yaml: the run has no data.valid file")
    pairs = read_pairs(cfg.data.valid, source_field=cfg.data.source_field, target_field=cfg.data.target_field,
                       split="data.valid")
    if not pairs:
        raise UserError(f"{cfg.data.valid}: no pairs")
    pair = pairs[0]
    src_ids = summ.encode_documents([pair.source], source=cfg.data.valid)[0][:60]  # a readable picture
    src = torch.tensor([src_ids])
    d = cfg.decode  # decoded as `triptych text summarize` would: the recipe's beam
    summary = generate(model, src, d, bos=tok.bos_id, eos=tok.eos_id)[0]
    # Row t of a map is the attention while writing output token t: the summary, then its eos
    # (a summary cut at max_len has none).
    outputs = [*summary, tok.eos_id] if len(summary) < d.max_len else summary
    tgt_in = torch.tensor([[tok.bos_id, *outputs[:-1]]])
    with torch.inference_mode():
        _, attn = model(src, tgt_in, return_attention=True)
    maps, titles = attention_maps(attn)
    path = attention_heatmap(maps, summ.source_tokenizer.pieces(src_ids), tok.pieces(outputs), out, titles=titles)
    return path, {"document": pair.source[:200], "summary": tok.decode(summary), "reference": pair.target}


def attention_maps(attn: dict) -> tuple[list[np.ndarray], list[str]]:
    """A model's attention dict (see `text.models`) -> ([K maps (T, S)], titles) of the first sentence.

    A list of per-layer weights shows its last layer; weights with a head
    axis (B, H, T, S) show the mean of the heads.
    """
    maps, titles = [], []
    for name, value in attn.items():
        title = f"{name} attention"
        if isinstance(value, (list, tuple)):
            value, title = value[-1], f"{title}, last of {len(value)} layers"
        if value is None:
            continue
        w = value[0].float()
        if w.dim() == 3:  # (H, T, S)
            if w.shape[0] > 1:
                title = f"{title}, mean of {w.shape[0]} heads"
            w = w.mean(0)
        maps.append(w.cpu().numpy())
        titles.append(title)
    if not maps:
        raise UserError("the model returned no attention weights")
    return maps, titles


DOMAIN_PICTURES = {
    "vision": ("confusion.png", "Confusion matrix", vision_confusion),
    "video": ("class_ap.png", "Average precision per class", video_class_ap),
    "text": ("attention.png", "Attention of one valid example", text_attention),
}
