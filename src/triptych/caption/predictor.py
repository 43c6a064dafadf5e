"""Captioning with a trained checkpoint: load it, caption images, score, look at the attention.

- `Captioner`: a caption checkpoint's config, word vocabulary and model.
- `attention_of`: the attention over the feature map's regions while each
  generated word was produced: the model re-reads its own caption with
  teacher forcing, ``forward(images, [bos] + caption, return_attention=True)``
  (the text families' contract), last decoder layer, heads averaged.
- `attention_on_digits`: with the digit scenes' boxes, the share of digit
  words whose attention peak lies inside the box of the digit it names,
  beside the share expected by chance (the named boxes' area fraction).
"""

from __future__ import annotations

from pathlib import Path

import torch

from triptych.caption.config import CaptionConfig
from triptych.errors import UserError
from triptych.text.tokenizer import Tokenizer


class Captioner:
    """A loaded caption checkpoint in eval mode."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu"):
        from triptych.caption.models import build_caption_model
        from triptych.engine.checkpoint import load_for_inference

        def build(cfg: CaptionConfig):
            cfg.model.backbone_checkpoint = None  # the caption checkpoint holds the trained backbone
            self.tokenizer = Tokenizer.load(Path(checkpoint) / "tokenizer.json")
            return build_caption_model(cfg, self.tokenizer.vocab_size, self.tokenizer.pad_id)

        loaded = load_for_inference(checkpoint, CaptionConfig, "caption", build, device=device)
        self.directory, self.cfg, self.model, self.device = loaded.directory, loaded.cfg, loaded.model, loaded.device

    @property
    def grid(self) -> tuple[int, int]:
        return self.model.image.grid

    def load_images(self, paths: list[str]) -> torch.Tensor:
        from triptych.caption.data import load_image

        d = self.cfg.data
        return torch.stack([load_image(Path(p), d.image_size, d.channels) for p in paths])  # (N, C, S, S)

    def caption(self, images: torch.Tensor, beam: int | None = None) -> list[str]:
        from triptych.caption.task import caption_images

        dec = self.cfg.decode
        return caption_images(self.model, self.tokenizer, images, beam=dec.beam if beam is None else beam,
                              max_len=dec.max_len, length_penalty=dec.length_penalty)

    @torch.inference_mode()
    def attention_of(self, images: torch.Tensor, captions: list[str]) -> list[tuple[list[str], torch.Tensor]]:
        """Per image: the caption's words and their attention (T, h, w) over the feature map."""
        tok, (h, w) = self.tokenizer, self.grid
        out = []
        for img, text in zip(images, captions):
            ids = tok.encode(text)
            tgt = torch.tensor([[tok.bos_id] + ids], device=self.device)
            _, attn = self.model(img[None].to(self.device), tgt, return_attention=True)
            weights = attn["cross"][-1][0].mean(0)  # (T + 1, h*w): heads averaged
            out.append((tok.pieces(ids), weights[: len(ids)].reshape(len(ids), h, w).float().cpu()))
        return out


def attention_on_digits(words_and_maps, boxes: list[list[dict]], canvas: int) -> dict:
    """Share of digit words whose attention peak (the centre of the top region) lies in the named digit's box.

    `boxes[i]` are the scene's objects ({"digit", "box": [x0, y0, x1, y1]} in
    canvas pixels). A word naming a digit the scene does not hold is counted
    apart (`wrong_digit_words`); when both objects show the named digit, either
    box counts, and chance is their union's area fraction.
    """
    hits = counted = wrong = 0
    chance = 0.0
    for (words, maps), objects in zip(words_and_maps, boxes):
        T, h, w = maps.shape
        for t, word in enumerate(words):
            if not word.isdigit():
                continue
            named = [o["box"] for o in objects if str(o["digit"]) == word]
            if not named:
                wrong += 1
                continue
            peak = int(maps[t].flatten().argmax())
            x = (peak % w + 0.5) * canvas / w  # the region's centre, in canvas pixels
            y = (peak // w + 0.5) * canvas / h
            hits += any(x0 <= x < x1 and y0 <= y < y1 for x0, y0, x1, y1 in named)
            mask = torch.zeros(canvas, canvas, dtype=torch.bool)
            for x0, y0, x1, y1 in named:
                mask[y0:y1, x0:x1] = True
            chance += float(mask.float().mean())
            counted += 1
    return {"digit_words": counted,  # None below: no generated digit word names a digit of its scene
            "peak_in_box": hits / counted if counted else None, "chance": chance / counted if counted else None,
            "wrong_digit_words": wrong}


def read_boxes(path: str | Path, image_paths: list[Path], root: Path) -> list[list[dict]]:
    """The digit scenes' boxes.json entries of these images (keys are paths relative to `root`)."""
    import json

    from triptych.files import require_file

    p = require_file(path, "boxes file")
    try:
        table = json.loads(p.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{p}: not valid JSON ({e})") from None
    out = []
    for img in image_paths:
        key = img.relative_to(root).as_posix() if img.is_relative_to(root) else str(img)
        if key not in table:
            raise UserError(f"{p}: no boxes for image {key!r}")
        out.append(table[key])
    return out
