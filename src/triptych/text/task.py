"""Where summarization meets the engine: tokenizer, data, model, loss, metrics.

`TextTask` reads and tokenises the corpus once, plans token-budget batches
for the engine, sums the label-smoothed loss over target tokens, and
evaluates with the validation loss plus ROUGE of greedy summaries of a
fixed slice of the validation split (the metric that picks `best/`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch

from triptych.errors import UserError
from triptych.text.config import TextConfig
from triptych.text.data import Pair, drop_empty, pad, plan_token_batches, read_pairs  # noqa: F401  (pad: also used from here)
from triptych.text.tokenizer import FILENAME, KINDS, SOURCE_FILENAME, Tokenizer, check_pair, load_tokenizers, looks_cjk, train_tokenizer


class EncodedPairs:
    """Token ids of a corpus, truncated to the model's limits (counted).

    Sources are encoded with `source_tokenizer` (the same tokenizer unless
    the vocabularies are separate), targets with `tokenizer`."""

    def __init__(self, pairs: list[Pair], tokenizer: Tokenizer, max_source: int, max_target: int, name: str,
                 source_tokenizer: Tokenizer | None = None):
        source_tokenizer = source_tokenizer or tokenizer
        sources = source_tokenizer.encode_batch([p.source for p in pairs])
        targets = tokenizer.encode_batch([p.target for p in pairs])
        long_src = sum(len(s) > max_source for s in sources)
        long_tgt = sum(len(t) + 1 > max_target for t in targets)
        if long_src or long_tgt:
            print(
                f"triptych: {name}: truncated {long_src} document(s) to {max_source} tokens "
                f"and {long_tgt} summar(ies) to {max_target} tokens",
                file=sys.stderr,
            )
        self.sources = [s[:max_source] or [source_tokenizer.unk_id] for s in sources]
        self.targets = [t[: max_target - 1] for t in targets]
        self.texts = pairs

    def __len__(self) -> int:
        return len(self.sources)


def build_tokenizers(cfg: TextConfig, run_dir: Path | None, train_pairs: list[Pair]) -> tuple[Tokenizer, Tokenizer]:
    """The run's (target, source) tokenizers, one object twice when shared:
    the configured files, the run's own, the ones of the `init_from`
    checkpoint, or new ones of `tokenizer.kind` trained on the training pairs
    (both sides together, or each side on its own texts)."""
    t = cfg.tokenizer
    if t.kind not in KINDS:
        raise UserError(f"tokenizer.kind: {t.kind!r} is not one of {', '.join(KINDS)}")
    if t.path:
        target = Tokenizer.load(t.path)
        if t.shared:
            return target, target
        source = Tokenizer.load(t.source_path)
        check_pair(source, target, t.source_path)
        return target, source
    if run_dir is not None and (run_dir / FILENAME).is_file() and _reusable(cfg, run_dir):  # --resume, or the same recipe
        return load_tokenizers(run_dir, t.shared)
    if cfg.init_from:  # fine-tuning: the weights only mean something with the ids they were trained on
        from triptych.files import require_file

        require_file(Path(cfg.init_from) / FILENAME, "init_from tokenizer")
        pair = load_tokenizers(cfg.init_from, t.shared)
    else:
        train = lambda texts, size: train_tokenizer(  # noqa: E731
            texts, kind=t.kind, vocab_size=size, lowercase=t.lowercase, min_frequency=t.min_frequency)
        if t.shared:
            target = train((x for p in train_pairs for x in (p.source, p.target)), t.vocab_size)
            pair = (target, target)
        else:
            target = train((p.target for p in train_pairs), t.vocab_size)
            pair = (target, train((p.source for p in train_pairs), t.source_vocab_size or t.vocab_size))
    if run_dir is not None:
        save_tokenizers(run_dir, *pair)
        from triptych.files import atomic_write_text

        atomic_write_text(run_dir / RECIPE_STAMP, json.dumps(_tokenizer_recipe(cfg), sort_keys=True) + "\n")
    return pair


RECIPE_STAMP = "tokenizer.recipe.json"  # what the run's tokenizer.json was trained from


def _tokenizer_recipe(cfg: TextConfig) -> dict:
    from triptych.config import to_dict

    return {"tokenizer": to_dict(cfg.tokenizer), "train": cfg.data.train, "limit_train": cfg.data.limit_train,
            "init_from": cfg.init_from}


def _reusable(cfg: TextConfig, run_dir: Path) -> bool:
    """May this run use the tokenizer.json already in its directory?

    Yes when the run has a checkpoint (its weights mean those ids: --resume),
    or when the file was trained from this very tokenizer section and data (a
    run that failed after training it); a leftover of another config is
    replaced, never silently used. Says which on stderr."""
    from triptych.engine.checkpoint import latest_checkpoint

    if latest_checkpoint(run_dir) is not None:
        return True
    try:
        made_for = json.loads((run_dir / RECIPE_STAMP).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        made_for = None
    if made_for == json.loads(json.dumps(_tokenizer_recipe(cfg))):
        print(f"triptych: {run_dir / FILENAME}: reusing the tokenizer an earlier run trained for this same "
              "tokenizer section and data", file=sys.stderr)
        return True
    print(f"triptych: {run_dir / FILENAME}: left by a run of another config; training a new one", file=sys.stderr)
    return False


def save_tokenizers(directory: Path, target: Tokenizer, source: Tokenizer) -> None:
    target.save(Path(directory) / FILENAME)
    if source is not target:
        source.save(Path(directory) / SOURCE_FILENAME)


def build_seq2seq(cfg: TextConfig, tokenizer: Tokenizer, source_tokenizer: Tokenizer | None = None):
    """The configured family over the target vocabulary; with separate
    vocabularies (tokenizer.shared: false) a source embedding of
    `source_tokenizer`'s size."""
    from triptych.text.models import build_model as build

    source_vocab = None if cfg.tokenizer.shared else source_tokenizer.vocab_size
    return build(cfg.model.get("name", "transformer"), cfg.model, tokenizer.vocab_size, tokenizer.pad_id,
                 source_vocab_size=source_vocab)


def check_model(cfg: TextConfig) -> None:
    """The `model:` section's keys and values, checked before the corpus is
    read, a tokenizer trained or anything written: a bad one stops the run
    with nothing half-made in its directory."""
    from triptych.text.models import model_config

    model_config(cfg.model.get("name", "transformer"), cfg.model, separate_vocab=not cfg.tokenizer.shared)


def check_init_from(cfg: TextConfig) -> None:
    """`init_from` must hold the family this config builds: an RNN's weights
    cannot start a Transformer, and the mismatch is named before any loading."""
    from triptych.engine.checkpoint import load_checkpoint_meta

    _, theirs = load_checkpoint_meta(cfg.init_from, expected_domain="text")
    have = ((theirs or {}).get("model") or {}).get("name", "transformer")
    want = cfg.model.get("name", "transformer")
    if have != want:
        raise UserError(
            f"init_from: {cfg.init_from} holds a {have!r} model but model.name is {want!r}; "
            "a checkpoint can only start a run of its own architecture"
        )
    shared = bool(((theirs or {}).get("tokenizer") or {}).get("shared", True))  # older checkpoints: shared
    if shared != cfg.tokenizer.shared:
        held = "one shared vocabulary" if shared else "separate source and target vocabularies"
        raise UserError(
            f"init_from: {cfg.init_from} holds {held} but tokenizer.shared is {str(cfg.tokenizer.shared).lower()}; "
            f"set tokenizer.shared={str(shared).lower()}"
        )


class TeacherForcing:
    """The engine's batch_units and loss, and the validation loss, for a task
    whose batches are {"src", "tgt_in", "tgt_out"} and whose model has
    `loss(src, tgt_in, tgt_out, label_smoothing)`: summaries, translations
    and captions alike. The task provides `tokenizer` and `cfg.label_smoothing`."""

    def batch_units(self, batch: dict) -> int:
        return int((batch["tgt_out"] != self.tokenizer.pad_id).sum())

    def loss(self, model, batch: dict):
        loss_sum, _ = model.loss(batch["src"], batch["tgt_in"], batch["tgt_out"], self.cfg.label_smoothing)
        return loss_sum, {}

    @staticmethod
    def mean_loss(model, batches) -> float:
        """Per-token loss over `batches`, without label smoothing."""
        total, tokens = 0.0, 0
        for batch in batches:
            loss_sum, n = model.loss(batch["src"], batch["tgt_in"], batch["tgt_out"], 0.0)
            total += float(loss_sum)
            tokens += int(n)
        return total / max(tokens, 1)


class TextTask(TeacherForcing):
    domain = "text"
    unit_name = "tok"

    def __init__(self, cfg: TextConfig, run_dir: Path | None = None, *, is_main: bool = True):
        self.cfg = cfg
        if cfg.init_from:  # before the corpus is read and a tokenizer trained
            check_init_from(cfg)
        data = cfg.data
        fields = dict(source_field=data.source_field, target_field=data.target_field)
        train_pairs = drop_empty(read_pairs(data.train, split="train", **fields), data.train)
        if data.limit_train:
            train_pairs = train_pairs[: data.limit_train]
        valid_pairs = drop_empty(read_pairs(data.valid, split="valid", **fields), data.valid)
        # The target's tokenizer, and the source's (the same object unless tokenizer.shared is false).
        self.tokenizer, self.source_tokenizer = build_tokenizers(cfg, run_dir if is_main else None, train_pairs)
        encode = lambda pairs, name: EncodedPairs(pairs, self.tokenizer, data.max_source_len, data.max_target_len, name, self.source_tokenizer)  # noqa: E731
        self.train = encode(train_pairs, data.train)
        self.valid = encode(valid_pairs, data.valid)
        self.model = build_seq2seq(cfg, self.tokenizer, self.source_tokenizer)

    # --- the engine's Task protocol -------------------------------------
    def batch_plan(self, epoch: int) -> list[list[int]]:
        return self._token_batches(self.train, seed=self.cfg.seed, epoch=epoch)

    def _token_batches(self, data: EncodedPairs, **plan) -> list[list[int]]:
        """`data`'s indices in batches of at most `data.batch_tokens` padded
        tokens (source + target with its eos)."""
        return plan_token_batches([len(s) for s in data.sources], [len(t) + 1 for t in data.targets],
                                  max_tokens=self.cfg.data.batch_tokens, **plan)

    def collate(self, indices: list[int], device, data: EncodedPairs | None = None) -> dict:
        data = data or self.train
        tok = self.tokenizer
        src = pad([data.sources[i] for i in indices], tok.pad_id)
        tgt_in = pad([[tok.bos_id] + data.targets[i] for i in indices], tok.pad_id)
        tgt_out = pad([data.targets[i] + [tok.eos_id] for i in indices], tok.pad_id)
        return {"src": src.to(device), "tgt_in": tgt_in.to(device), "tgt_out": tgt_out.to(device)}

    @torch.no_grad()
    def evaluate(self, model) -> dict[str, float]:
        from triptych.text.generation.generate import decode_documents
        from triptych.text.metrics.corpus import rouge_f1_x100

        was_training = model.training
        model.eval()
        device = next(model.parameters()).device
        # The training batches' token budget, not a fixed count of documents:
        # 128 of the longest documents held 1.35 GB at once (measured on the
        # Debian recipe), which on top of the training heap broke the 3 GB budget.
        plan = self._token_batches(self.valid, seed=0, epoch=0, bucket_noise=0.0)
        metrics = {"valid_loss": self.mean_loss(model, (self.collate(b, device, self.valid) for b in plan))}
        n = min(self.cfg.eval.valid_rouge_samples, len(self.valid))
        if n > 0:
            hyps = decode_documents(model, self.tokenizer, self.valid.sources[:n], self.cfg.decode.greedy(), device=device)
            refs = [p.target for p in self.valid.texts[:n]]
            metrics.update(rouge_f1_x100(hyps, refs, stem=self.cfg.eval.stem, cjk=looks_cjk(refs)))  # Chinese: by characters
        model.train(was_training)
        return metrics

    def save_artifacts(self, directory: Path) -> None:
        save_tokenizers(directory, self.tokenizer, self.source_tokenizer)
