"""Self-critical sequence training: reinforcement learning with a ROUGE reward.

The model is trained to maximise ROUGE of its own summaries, not only the
likelihood of the reference (Rennie et al. 2017, "Self-critical Sequence
Training"; Paulus et al. 2017, "A Deep Reinforced Model for Abstractive
Summarization"). For every document of a batch:

- sample a summary y^s from the model, and decode the greedy one y^g (no
  gradient): the greedy summary's reward is the baseline, so a sample only
  gains probability when it beats what the model would output anyway;
- L_rl = -(r(y^s) - r(y^g)) * sum_t log p(y^s_t | y^s_<t, x);
- L_ml = the label-smoothed negative log-likelihood of the reference;
- loss = gamma * L_rl + (1 - gamma) * L_ml, gamma 0.9984 as in Paulus:
  the ML term keeps the summaries readable (ROUGE alone rewards word salad).

Both terms are sums over a sentence's tokens, averaged over sentences: the
task counts sentences as its units ("sent"), and the engine divides the
summed loss by them.

How the log-probabilities are computed: the samples are drawn without
autograd (`decoding.sample`, with the key/value cache), then re-scored in
one teacher-forced forward pass that keeps the graph. Keeping the graph
through the incremental steps instead would store every step's activations
and back-propagate T small steps: on CPU the re-scoring pass is the faster
of the two (measured in docs/results.md) and works for every family alike.
The re-scoring runs without dropout, like the sampling: the gradient is then
exactly that of the policy that drew the samples (with dropout on, a tiny
model's RL barely learned on a toy task); the ML term keeps its dropout.

`RLTextTask` is a `TextTask`: the engine's loop, checkpoints, resume and
validation run unchanged. RL only makes sense from a trained model, so
`init_from` is required, and the checkpoint's own model section and
tokenizer replace the recipe's (`prepare_config`).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import torch

from triptych.errors import UserError
from triptych.text.config import TextConfig
from triptych.text.generation.search import greedy, sample
from triptych.text.metrics.reward import RougeReward, parse_reward
from triptych.text.task import TextTask, pad
from triptych.text.tokenizer import SOURCE_FILENAME


def prepare_config(cfg: TextConfig) -> TextConfig:
    """Check the RL options; take the model section and tokenizer from `init_from`."""
    if not cfg.init_from:
        raise UserError("init_from: RL fine-tuning starts from a trained checkpoint; "
                        "add --set init_from=RUN_DIR/best")
    from triptych.engine.checkpoint import load_checkpoint_meta

    parse_reward(cfg.rl.reward)
    if not 0.0 <= cfg.rl.gamma <= 1.0:
        raise UserError(f"rl.gamma: must be between 0 and 1, got {cfg.rl.gamma}")
    if cfg.rl.temperature <= 0:
        raise UserError(f"rl.temperature: must be > 0, got {cfg.rl.temperature}")
    directory = Path(cfg.init_from)
    _, checkpoint = load_checkpoint_meta(directory, expected_domain="text")
    model = checkpoint.get("model")
    if not isinstance(model, dict) or "name" not in model:
        raise UserError(f"{directory / 'config.yaml'}: no model section with a name")
    cfg.model = dict(model)
    tokenizer = directory / "tokenizer.json"
    if not tokenizer.is_file():
        raise UserError(f"{directory}: checkpoint has no tokenizer.json")
    cfg.tokenizer.path = str(tokenizer)
    # Separate source/target vocabularies travel as the model section does.
    cfg.tokenizer.shared = bool((checkpoint.get("tokenizer") or {}).get("shared", True))
    cfg.tokenizer.source_path = None if cfg.tokenizer.shared else str(directory / SOURCE_FILENAME)
    cfg.tokenizer.source_vocab_size = None
    return cfg


def sequence_log_probs(model, src: torch.Tensor, tgt_in: torch.Tensor, tgt_out: torch.Tensor,
                       pad_id: int, temperature: float = 1.0) -> torch.Tensor:
    """Teacher-forced sum of log p(tgt_out) per row: src (B,S), tgt (B,T) -> (B,).

    With `temperature` != 1 the log-probabilities are those of the softened
    distribution p^(1/T) / Z that `decoding.sample` draws from, so the
    policy gradient stays that of the policy that produced the samples."""
    log_p = model(src, tgt_in).float()  # (B, T, V)
    if temperature != 1.0:
        log_p = (log_p / temperature).log_softmax(-1)
    keep = tgt_out != pad_id  # (B, T)
    picked = log_p.gather(-1, tgt_out.masked_fill(~keep, 0).unsqueeze(-1)).squeeze(-1)  # (B, T)
    return (picked * keep).sum(1)


def policy_loss(seq_log_probs: torch.Tensor, reward: torch.Tensor, baseline: torch.Tensor) -> torch.Tensor:
    """Self-critical policy-gradient loss summed over rows: -sum (r - b) * log p(y^s)."""
    advantage = (reward - baseline).to(seq_log_probs.dtype).detach()  # (B,)
    return -(advantage * seq_log_probs).sum()


class RLTextTask(TextTask):
    """TextTask whose loss is the self-critical / maximum-likelihood mix (see the module doc)."""

    unit_name = "sent"

    def __init__(self, cfg: TextConfig, run_dir: Path | None = None, *, is_main: bool = True):
        prepare_config(cfg)
        super().__init__(cfg, run_dir, is_main=is_main)
        self.reward = RougeReward(self.tokenizer, parse_reward(cfg.rl.reward), stem=cfg.eval.stem,
                                  cjk=bool(getattr(cfg.eval, "cjk", False)))
        self._last: tuple[float, float] | None = None  # (start, reward seconds) of the previous loss call

    def collate(self, indices: list[int], device, data=None) -> dict:
        batch = super().collate(indices, device, data)
        batch["index"] = list(indices)
        return batch

    def batch_units(self, batch: dict) -> int:
        return int(batch["src"].size(0))

    def _decode_options(self) -> dict:
        d, rl = self.cfg.decode, self.cfg.rl
        no_repeat = d.no_repeat_ngram if rl.no_repeat_ngram is None else rl.no_repeat_ngram
        return dict(bos=self.tokenizer.bos_id, eos=self.tokenizer.eos_id, max_len=d.max_len, min_len=d.min_len,
                    no_repeat_ngram=no_repeat)

    def loss(self, model, batch: dict):
        rl, tok = self.cfg.rl, self.tokenizer
        start = time.perf_counter()
        src = batch["src"]  # (B, S)
        training = model.training
        gamma = rl.gamma
        total = torch.zeros((), device=src.device)
        logs: dict[str, float] = {}
        reward_s = 0.0
        if gamma > 0.0:
            options = self._decode_options()
            drawn, closed = sample(model, src, temperature=rl.temperature, **options)
            base = greedy(model, src, **options)
            t0 = time.perf_counter()
            refs = [self.reward.reference(i, self.train.texts[i].target) for i in batch["index"]]
            r_sample, r_greedy = self.reward(drawn, refs), self.reward(base, refs)  # (B,), (B,)
            reward_s = time.perf_counter() - t0
            tgt_in = pad([[tok.bos_id] + s for s in drawn], tok.pad_id).to(src.device)
            tgt_out = pad([s + [tok.eos_id] * c for s, c in zip(drawn, closed)], tok.pad_id).to(src.device)
            if tgt_out.size(1) < tgt_in.size(1):  # every sample ran to max_len without eos
                tgt_out = torch.nn.functional.pad(tgt_out, (0, tgt_in.size(1) - tgt_out.size(1)), value=tok.pad_id)
            model.eval()  # re-score with the policy that drew the samples: no dropout
            try:
                log_p = sequence_log_probs(model, src, tgt_in, tgt_out, tok.pad_id, rl.temperature)  # (B,)
            finally:
                model.train(training)
            as_tensor = lambda a: torch.as_tensor(a, dtype=torch.float32, device=src.device)  # noqa: E731
            total = total + gamma * policy_loss(log_p, as_tensor(r_sample), as_tensor(r_greedy))
            logs.update(reward=float(np.mean(r_sample)), baseline_reward=float(np.mean(r_greedy)),
                        sample_len=float(np.mean([len(s) for s in drawn])))
        if gamma < 1.0:
            ml, _ = model.loss(src, batch["tgt_in"], batch["tgt_out"], self.cfg.label_smoothing)
            total = total + (1.0 - gamma) * ml.float()
        # The share of a whole step (decoding, reward, forward, backward, update)
        # spent in the reward: the previous call's reward time over the time
        # between its start and this call's; the first call only has its own.
        if self._last is not None:
            logs["reward_share"] = self._last[1] / max(start - self._last[0], 1e-9)
        else:
            logs["reward_share"] = reward_s / max(time.perf_counter() - start, 1e-9)
        self._last = (start, reward_s)
        # The engine sums a step's micro-batch logs and averages over steps.
        accum = max(1, self.cfg.train.accum_steps)
        return total, {k: v / accum for k, v in logs.items()}

    def evaluate(self, model) -> dict[str, float]:
        metrics = super().evaluate(model)
        self._last = None  # the next interval would count the evaluation as step time
        return metrics
