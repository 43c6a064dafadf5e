"""Learning-rate multiplier: linear warm-up, then constant / inverse-sqrt / cosine / linear / step.

The multiplier is a pure function of (step, elapsed seconds) rather than a
stateful torch LR scheduler, so resuming needs nothing but the step and the
elapsed time that the checkpoint already holds, and the same numbers come
back exactly.

With a time budget (`max_minutes`), cosine and linear decay are timed to end
with the budget: progress is the larger of the step fraction and the time
fraction. A short budget then still gets the low-lr tail that most of the
final quality comes from, instead of being cut off at a high rate.
"""

from __future__ import annotations

import math

from triptych.errors import UserError

from triptych.config import SCHEDULES  # one list, beside the field it bounds


def check(name: str, min_lr_ratio: float = 0.0, warmup_steps: int = 0) -> None:
    """Reject an unknown schedule name or nonsense ratios as a config error."""
    if name not in SCHEDULES:
        raise UserError(f"train.schedule: unknown schedule '{name}' (choose from {', '.join(SCHEDULES)})")
    if not 0.0 <= min_lr_ratio <= 1.0:
        raise UserError(f"train.min_lr_ratio: must lie in [0, 1], got {min_lr_ratio}")
    if warmup_steps < 0:
        raise UserError(f"train.warmup_steps: must be >= 0, got {warmup_steps}")


def progress(step: int, elapsed: float, *, warmup_steps: int, max_steps: int | None,
             max_minutes: float | None) -> float:
    """How far through the decay phase we are, in [0, 1].

    By steps, the decay phase runs from the end of warm-up to `max_steps`;
    by time, it is simply the fraction of the budget spent.
    """
    p = 0.0
    if max_steps:
        span = max(1, max_steps - warmup_steps)
        p = (step - warmup_steps) / span
    if max_minutes:
        p = max(p, elapsed / (max_minutes * 60.0))
    return min(1.0, max(0.0, p))


def lr_multiplier(step: int, elapsed: float = 0.0, *, schedule: str = "cosine", warmup_steps: int = 0,
                  max_steps: int | None = None, max_minutes: float | None = None,
                  min_lr_ratio: float = 0.0, decay_rate: float = 0.8, decay_steps: int = 50_000) -> float:
    """The factor applied to the base lr for the update numbered `step` (0-based).

    Warm-up ramps linearly from 1/warmup_steps to 1 over the first
    `warmup_steps` updates. After it:
      constant      1
      inverse_sqrt  sqrt(warmup / (step + 1))   (the Transformer paper's decay)
      cosine        min + (1 - min) * (1 + cos(pi * progress)) / 2
      linear        min + (1 - min) * (1 - progress)
      step          decay_rate ** floor(step / decay_steps)   (staircase, as the
                    youtube-8m starter code decays: x0.8 every 4M examples =
                    50,000 steps of 80)
    """
    warm = min(1.0, (step + 1) / warmup_steps) if warmup_steps > 0 else 1.0
    if schedule == "constant":
        return warm
    if schedule == "step":
        return warm * decay_rate ** (step // max(1, decay_steps))
    if schedule == "inverse_sqrt":
        if step < warmup_steps:
            return warm
        return math.sqrt(max(1, warmup_steps) / (step + 1))
    p = progress(step, elapsed, warmup_steps=warmup_steps, max_steps=max_steps, max_minutes=max_minutes)
    if schedule == "cosine":
        decay = min_lr_ratio + (1.0 - min_lr_ratio) * 0.5 * (1.0 + math.cos(math.pi * p))
    elif schedule == "linear":
        decay = min_lr_ratio + (1.0 - min_lr_ratio) * (1.0 - p)
    else:
        raise UserError(f"train.schedule: unknown schedule '{schedule}' (choose from {', '.join(SCHEDULES)})")
    return warm * decay


def from_config(cfg) -> "callable":
    """A `(step, elapsed) -> multiplier` closure over a TrainConfig."""
    check(cfg.schedule, cfg.min_lr_ratio, cfg.warmup_steps)
    if cfg.schedule == "step":
        if cfg.decay_steps < 1:
            raise UserError(f"train.decay_steps: must be >= 1, got {cfg.decay_steps}")
        if not 0.0 < cfg.decay_rate <= 1.0:
            raise UserError(f"train.decay_rate: must lie in (0, 1], got {cfg.decay_rate}")

    def multiplier(step: int, elapsed: float = 0.0) -> float:
        return lr_multiplier(step, elapsed, schedule=cfg.schedule, warmup_steps=cfg.warmup_steps,
                             max_steps=cfg.max_steps, max_minutes=cfg.max_minutes,
                             min_lr_ratio=cfg.min_lr_ratio, decay_rate=cfg.decay_rate,
                             decay_steps=cfg.decay_steps)

    return multiplier
