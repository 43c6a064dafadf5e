"""Where captioning meets the engine: captions files, word vocabulary, model, loss, metrics.

`CaptionTask` reads the train/valid captions files once (images decoded into
memory), trains a word vocabulary on the training captions (saved as the
run's tokenizer.json, the text domain's format), plans shuffled batches of
(image, caption) pairs, sums the token NLL through the text family's own
`loss`, and validates with the valid loss plus BLEU-4 of greedy captions
(the metric that picks `best/`).
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

from triptych.caption.config import CaptionConfig
from triptych.caption.data import CaptionSet
from triptych.errors import UserError
from triptych.text.task import TeacherForcing, pad
from triptych.text.tokenizer import Tokenizer, train_tokenizer
from triptych.vision.task import batches


def encode_captions(tokenizer: Tokenizer, data: CaptionSet, max_len: int) -> list[list[int]]:
    """Word ids of each record's caption, truncated to max_len - 1 (eos takes one; counted)."""
    ids = tokenizer.encode_batch([c for _, c in data.pairs])
    long = sum(len(x) + 1 > max_len for x in ids)
    if long:
        print(f"triptych: {data.path}: truncated {long} caption(s) to {max_len} tokens (data.max_caption_len)", file=sys.stderr)
    return [x[: max_len - 1] for x in ids]


@torch.inference_mode()
def caption_images(model, tokenizer: Tokenizer, images: torch.Tensor, *, beam: int, max_len: int,
                   length_penalty: float = 0.0, batch_size: int = 64) -> list[str]:
    """(N, C, S, S) images -> N captions: the text decoders' greedy or beam search."""
    from triptych.text.config import DecodeConfig
    from triptych.text.generation.generate import generate

    device = next(model.parameters()).device
    decode = DecodeConfig(beam=beam, max_len=max_len, min_len=0, length_penalty=length_penalty, no_repeat_ngram=0, batch_size=batch_size)
    out: list[str] = []
    for idx in batches(len(images), batch_size):
        tokens = generate(model, images[idx].to(device), decode, bos=tokenizer.bos_id, eos=tokenizer.eos_id)
        out += tokenizer.decode_batch([list(t) for t in tokens])
    return out


class CaptionTask(TeacherForcing):
    domain = "caption"
    unit_name = "tok"

    def __init__(self, cfg: CaptionConfig, run_dir: Path | None = None):
        from triptych.caption.models import build_caption_model

        self.cfg = cfg
        d = cfg.data
        if d.batch_size < 1:
            raise UserError(f"data.batch_size: must be >= 1, got {d.batch_size}")
        if d.channels not in (1, 3):
            raise UserError(f"data.channels: must be 1 or 3, got {d.channels}")
        self.train = CaptionSet(d.train, d.image_size, d.channels, d.limit_train)
        self.valid = CaptionSet(d.valid, d.image_size, d.channels)
        if run_dir is not None and (Path(run_dir) / "tokenizer.json").is_file():  # --resume: the run's own words
            self.tokenizer = Tokenizer.load(Path(run_dir) / "tokenizer.json")
        else:
            self.tokenizer = train_tokenizer((c for _, c in self.train.pairs), kind="word", vocab_size=d.vocab_size,
                                             lowercase=d.lowercase, min_frequency=1)
        self.train_ids = encode_captions(self.tokenizer, self.train, d.max_caption_len)
        self.valid_ids = encode_captions(self.tokenizer, self.valid, d.max_caption_len)
        self.model = build_caption_model(cfg, self.tokenizer.vocab_size, self.tokenizer.pad_id)

    # --- the engine's Task protocol -------------------------------------
    def batch_plan(self, epoch: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.train), generator=g).tolist()
        return [order[i:i + self.cfg.data.batch_size] for i in range(0, len(order), self.cfg.data.batch_size)]

    def collate(self, indices: list[int], device, data: CaptionSet | None = None, ids=None) -> dict:
        data, ids = (data, ids) if data is not None else (self.train, self.train_ids)
        tok = self.tokenizer
        images = data.images[[data.pairs[i][0] for i in indices]]  # (B, C, S, S)
        tgt_in = pad([[tok.bos_id] + ids[i] for i in indices], tok.pad_id)
        tgt_out = pad([ids[i] + [tok.eos_id] for i in indices], tok.pad_id)
        return {"src": images.to(device), "tgt_in": tgt_in.to(device), "tgt_out": tgt_out.to(device)}

    @torch.no_grad()
    def evaluate(self, model) -> dict[str, float]:
        from triptych.caption.metrics import caption_scores

        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        valid = (self.collate(idx, device, self.valid, self.valid_ids) for idx in batches(len(self.valid), 128))
        metrics = {"valid_loss": self.mean_loss(model, valid)}
        n = min(self.cfg.valid_bleu_samples, len(self.valid.images))
        if n > 0:
            hyps = caption_images(model, self.tokenizer, self.valid.images[:n], beam=1, max_len=self.cfg.decode.max_len)
            scores = caption_scores(hyps, self.valid.captions[:n])
            metrics.update(bleu=scores["bleu"], rougeL=scores["rougeL"])
        model.train(was_training)
        return metrics

    def save_artifacts(self, directory: Path) -> None:
        self.tokenizer.save(Path(directory) / "tokenizer.json")
