"""The one training loop: every domain trains through `train()`.

One optimiser step = `accum_steps` micro-batches of the task's plan, each
sharded over ranks. The loss is normalised by the units of the whole step
(all micro-batches, all ranks) before backward and gradients are summed over
ranks, so gradient accumulation and DDP give exactly the gradient of one
process on the global batch.

The loop owns everything a run needs besides the model and data: AdamW, the
lr schedule, clipping, budgets (steps, minutes, epochs), an optional moving
average of the weights (`averaging.py`), periodic validation
with keep-best and early stopping, periodic checkpoints that `resume=True`
continues from exactly (same batches, RNG, optimizer state), and a clean
stop on SIGINT/SIGTERM (finish the step, save, return).
"""

from __future__ import annotations

import math
import signal
import sys
import time
from contextlib import nullcontext
from pathlib import Path

import torch

from triptych.engine import checkpoint as ckpt
from triptych.engine import distributed as dist
from triptych.engine import memory
from triptych.engine import schedule
from triptych.engine.averaging import WeightAverage
from triptych.engine.batches import BatchStream
from triptych.engine.progress import MetricsLog, ProgressBar
from triptych.engine.signals import StopSignal
from triptych.engine.state import (build_optimizer, match_param_layouts, rng_state, saved_optimizer_name, seed_everything,
                                    set_rng_state)
from triptych.errors import UserError
from triptych.files import make_dirs
from triptych.hardware import conv_memory_format, training_precision
from triptych.schema import check_section


def _check(cfg) -> None:
    """The config's own bounds (for a TrainConfig made in code, not read from YAML) and the rules across fields."""
    check_section(cfg, "train.")
    schedule.check(cfg.schedule, cfg.min_lr_ratio, cfg.warmup_steps)
    if cfg.max_steps <= 0 and not cfg.max_minutes and not getattr(cfg, "max_epochs", None):
        raise UserError("train.max_steps: must be > 0 unless train.max_minutes or train.max_epochs bounds the run")


def train(task, train_cfg, run_dir, *, full_config=None, seed: int = 0, device: str = "cpu",
          resume: bool = False, init_from: Path | None = None, progress: bool | None = None) -> dict:
    """Train `task.model` under `train_cfg`, writing the run to `run_dir`; return a summary.

    The summary: steps, epoch, best_metric, best_step, metric, stopped_because
    ("max_steps" | "max_minutes" | "early_stopping" | "interrupted" | "end"),
    elapsed (seconds, over all sessions of a resumed run), cpu_s (CPU seconds
    of this process, all its threads, over all sessions: what a run costs on a
    shared machine, where wall-clock depends on the neighbours; DataLoader
    worker processes not included; None when resumed from a checkpoint that
    predates it), final_metrics (the
    last evaluation), run_dir and best_dir. `progress` forces the bar on/off.
    """
    _check(train_cfg)
    memory.cap_kernel_cache()
    if train_cfg.threads:
        torch.set_num_threads(train_cfg.threads)
    info = dist.setup(device)
    try:
        return _Run(task, train_cfg, Path(run_dir), full_config, seed, info, progress).run(resume, init_from)
    finally:
        dist.cleanup(info)


class _Run:
    def __init__(self, task, cfg, run_dir: Path, full_config, seed: int, info, progress):
        self.task, self.cfg, self.run_dir, self.seed, self.info = task, cfg, run_dir, seed, info
        self.full_config = full_config
        self.config_dict = _config_dict(full_config)
        self.main = info.rank == 0
        self.device = info.device
        self.precision = training_precision(cfg.precision, self.device)  # 'auto' decided here, once
        self.memory_format = conv_memory_format(cfg.memory_format, self.device)
        self.progress_force = progress
        self.multiplier = schedule.from_config(cfg)
        self.step = 0
        self.elapsed = 0.0  # seconds, synced from rank 0 once per step
        # CPU seconds of the earlier sessions of a resumed run (this rank's); None: unknown, a
        # checkpoint written before they were kept, so the total is never reported short.
        self.cpu0: float | None = 0.0
        self.best: float | None = None
        self.best_step: int | None = None
        self.bad_evals = 0
        self.last_eval_step = -1
        self.last_saved_step = -1
        self.last_metrics: dict = {}
        self.skipped_steps = 0
        self.window = _new_window()  # training figures summed since the last log line
        self.trimmer = memory.HeapTrimmer(cfg.trim_memory_mb) if cfg.trim_memory_mb > 0 else None
        self.average: WeightAverage | None = None  # train.ema_decay > 0: validation and best/ read it

    # --- set-up ---------------------------------------------------------------------------------

    def _restore(self, resume: bool, init_from) -> tuple[int, int, dict | None]:
        model = self.task.model
        if resume:
            latest = ckpt.latest_checkpoint(self.run_dir)
            if latest is None:
                raise UserError(f"{self.run_dir}: nothing to resume (no checkpoint under {self.run_dir / 'checkpoints'})")
            ckpt.load_checkpoint_meta(latest, self.task.domain)
            ckpt.load_weights(latest, model)
            state = ckpt.load_trainer_state(latest)
            return int(state.get("epoch", 0)), int(state.get("position", 0)), state
        if init_from is not None:
            ckpt.load_checkpoint_meta(init_from, self.task.domain)
            ckpt.load_weights(init_from, model)
        return 0, 0, None

    def _load_state(self, state: dict) -> None:
        saved = saved_optimizer_name(state.get("optimizer", {}))
        if saved is not None and saved != self.cfg.optimizer:
            raise UserError(f"{self.run_dir}: the checkpoint was trained with train.optimizer={saved}, "
                            f"not {self.cfg.optimizer}; resume with the optimizer it was saved with")
        try:
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, ValueError) as e:
            raise UserError(f"{self.run_dir}: the checkpoint's optimizer state does not fit this model ({e})") from None
        match_param_layouts(self.optimizer)
        if self.average is not None:
            if "weight_average" in state:
                self.average.load_state_dict(state["weight_average"], str(self.run_dir))
            elif self.main:  # a run that started without one: the average starts here
                print(f"{self.run_dir}: the checkpoint holds no weight average; train.ema_decay starts one "
                      f"at step {int(state['step'])}", file=sys.stderr, flush=True)
        self.step = int(state["step"])
        self.elapsed = float(state.get("elapsed", 0.0))
        cpu = state.get("cpu_s")
        self.cpu0 = None if cpu is None else float(cpu)
        best = state.get("best_metric")
        self.best = None if best is None else float(best)
        self.best_step = state.get("best_step")
        self.bad_evals = int(state.get("bad_evals", 0))
        self.last_eval_step = int(state.get("last_eval_step", -1))
        self.last_metrics = dict(state.get("last_metrics", {}))
        self.skipped_steps = int(state.get("skipped_steps", 0))
        window = state.get("log_window")
        if isinstance(window, dict):  # so the first log line after a resume covers the same steps
            self.window = _new_window()
            self.window.update({k: window[k] for k in ("loss", "units", "steps", "gnorm") if k in window})
            self.window["extra"] = dict(window.get("extra", {}))
        self.last_saved_step = self.step
        rngs = state.get("rng", [])
        if len(rngs) == self.info.world_size:
            set_rng_state(rngs[self.info.rank], self.device)
        else:  # another world size: a fresh but reproducible stream per rank
            seed_everything(self.seed + 1_000_003 * self.info.rank + self.step)

    def run(self, resume: bool, init_from) -> dict:
        task, cfg = self.task, self.cfg
        seed_everything(self.seed + self.info.rank)
        task.model.to(self.device)
        if self.memory_format == "channels_last":  # only 4-D tensors change; inputs follow the weights
            task.model.to(memory_format=torch.channels_last)
        epoch, position, state = self._restore(resume, init_from)
        dist.broadcast_module(task.model)
        self.params = [p for p in task.model.parameters() if p.requires_grad]
        self.optimizer = build_optimizer(task.model, cfg)
        if cfg.ema_decay > 0:
            self.average = WeightAverage(task.model, cfg.ema_decay)
        if state is not None:
            self._load_state(state)
        if self.main:
            make_dirs(self.run_dir, "run directory")
            if self.full_config is not None:
                from triptych.config import save

                save(self.full_config, self.run_dir / "config.yaml")
        self.log = MetricsLog(self.run_dir, enabled=self.main)
        if resume:
            self.log.truncate_after(self.step)
        self.bar = ProgressBar(cfg.max_steps if cfg.max_steps > 0 else None, self.step, enabled=self.main,
                               force=self.progress_force)
        self.stream = BatchStream(task, epoch=epoch, position=position, rank=self.info.rank,
                                  world_size=self.info.world_size, max_epochs=getattr(cfg, "max_epochs", None))
        self.stop = StopSignal(lambda s: self.bar.write(
            f"{signal.Signals(s).name}: finishing this step and saving a checkpoint (again to abort)"))
        self.stop.install()
        self.t0, self.elapsed0 = time.monotonic(), self.elapsed
        self.cpu_t0 = time.process_time()
        try:
            stopped = self._loop()
            if stopped != "interrupted" and cfg.eval_at_end and self.last_eval_step != self.step:
                self._evaluate()
            if self.last_saved_step != self.step:
                self._save_periodic()
        finally:
            self.stop.restore()
            self.bar.close()
            self.log.close()
        if self.main:
            self.bar.write(f"stopped ({stopped}) at step {self.step}; best {cfg.metric} {self.best} at step {self.best_step}")
        best_dir = self.run_dir / "best"
        return {
            "steps": self.step, "epoch": self.stream.epoch, "metric": cfg.metric, "best_metric": self.best,
            "best_step": self.best_step, "stopped_because": stopped, "elapsed": round(self._now(), 3),
            "cpu_s": _rounded(self._cpu_now()),
            "precision": self.precision, "memory_format": self.memory_format,
            "final_metrics": self.last_metrics, "skipped_steps": self.skipped_steps,
            "peak_rss_mb": round(memory.peak_rss_mb(), 1),
            "heap_trims": self.trimmer.trims if self.trimmer is not None else 0,
            "run_dir": str(self.run_dir), "best_dir": str(best_dir) if self.best_step is not None else None,
        }

    def _autocast(self):
        """bf16 autocast for the forward passes (training and validation) when the run trains in bf16."""
        return torch.autocast(self.device.type, dtype=torch.bfloat16) if self.precision == "bf16" else nullcontext()

    def _now(self) -> float:
        return self.elapsed0 + time.monotonic() - self.t0

    def _cpu_now(self) -> float | None:
        return None if self.cpu0 is None else self.cpu0 + time.process_time() - self.cpu_t0

    # --- the loop -------------------------------------------------------------------------------

    def _loop(self) -> str:
        cfg = self.cfg
        budget = cfg.max_minutes * 60.0 if cfg.max_minutes else None
        window = self.window
        window["t"] = time.monotonic()
        while True:
            if cfg.max_steps > 0 and self.step >= cfg.max_steps:
                return "max_steps"
            if budget is not None and self.elapsed >= budget:
                return "max_minutes"
            shards = self.stream.next_step(cfg.accum_steps)
            if shards is None:
                return "end"
            loss_sum, units, extra, gnorm = self._step(shards)
            self.step += 1
            # One collective per step keeps the ranks agreeing on time (for the
            # schedule and the budget), on a stop request, and on the loss.
            sync = torch.tensor([self._now() if self.main else 0.0, float(self.stop.requested), loss_sum],
                                dtype=torch.float64, device=self.device)
            dist.all_reduce_sum(sync)
            self.elapsed, interrupted, loss_sum = float(sync[0]), bool(sync[1] > 0), float(sync[2])
            window["loss"] += loss_sum
            window["units"] += units
            window["steps"] += 1
            window["gnorm"] += gnorm
            for k, v in extra.items():
                window["extra"][k] = window["extra"].get(k, 0.0) + v
            self.bar.update(1)
            if self.trimmer is not None:
                self.trimmer.maybe_trim()
            if cfg.log_every and self.step % cfg.log_every == 0:
                self._log_train(window)
                window = self.window = _new_window()
            early = False
            if cfg.eval_every and self.step % cfg.eval_every == 0:
                early = self._evaluate()
            if interrupted or (cfg.save_every and self.step % cfg.save_every == 0):
                self._save_periodic()
            if interrupted:
                return "interrupted"
            if early:
                return "early_stopping"

    def _step(self, shards: list[list[int]]) -> tuple[float, float, dict, float]:
        task, cfg = self.task, self.cfg
        batches = [task.collate(ix, self.device) if ix else None for ix in shards]
        local_units = sum(float(task.batch_units(b)) for b in batches if b is not None)
        total = dist.all_reduce_sum(torch.tensor([local_units], dtype=torch.float64, device=self.device))
        total_units = float(total[0])
        lr = cfg.lr * self.multiplier(self.step, self.elapsed)
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        task.model.train()
        loss_acc = torch.zeros((), dtype=torch.float64, device=self.device)
        extra: dict[str, float] = {}
        autocast = self._autocast()
        for batch in batches:
            if batch is None:
                continue  # this rank's shard of a tiny micro-batch was empty
            with autocast:
                loss, logs = task.loss(task.model, batch)
            (loss.float() / max(total_units, 1.0)).backward()
            loss_acc += loss.detach().double()
            for k, v in (logs or {}).items():
                extra[k] = extra.get(k, 0.0) + float(v)
        dist.all_reduce_grads(self.params)
        max_norm = cfg.clip_norm if cfg.clip_norm else math.inf
        gnorm = float(torch.nn.utils.clip_grad_norm_(self.params, max_norm))
        if math.isfinite(gnorm):
            self.optimizer.step()
            if self.average is not None:
                self.average.update(task.model)
        else:  # same verdict on every rank: the gradients were summed first
            self.skipped_steps += 1
            if self.main:
                self.bar.write(f"step {self.step + 1}: non-finite gradient norm, update skipped")
        self.optimizer.zero_grad(set_to_none=True)
        self._lr = lr
        return float(loss_acc), total_units, extra, gnorm

    def _log_train(self, window: dict) -> None:
        seconds = max(time.monotonic() - window["t"], 1e-9)
        values = {"loss": window["loss"] / max(window["units"], 1.0), "lr": self._lr,
                  f"{self.task.unit_name}/s": window["units"] / seconds,
                  "grad_norm": window["gnorm"] / max(window["steps"], 1)}
        for k, v in window["extra"].items():
            values[k] = v / max(window["steps"], 1)
        values["epoch"] = self.stream.epoch
        if self.cpu0 is not None:
            values["cpu_s"] = _rounded(self._cpu_now())
        rss = memory.current_rss_mb()
        if rss is not None:
            values["rss_mb"] = round(rss, 1)
        self.log.log("train", self.step, values, self.elapsed)
        self.bar.show(self.step, {k: values[k] for k in ("loss", "lr", f"{self.task.unit_name}/s")})

    # --- validation and checkpoints -------------------------------------------------------------

    def _evaluate(self) -> bool:
        """Validate (rank 0), keep best/, count patience; True when early stopping says stop."""
        cfg, model = self.cfg, self.task.model
        verdict = {"metrics": {}, "error": None}
        if self.main:
            if self.trimmer is not None:
                self.trimmer.trim_now()
            devices = [self.device] if self.device.type == "cuda" else []
            autocast = self._autocast()
            # Forked RNG: evaluating must not change the training stream, or a
            # run that evaluates at other steps (resumed, say) would diverge.
            with torch.random.fork_rng(devices=devices), self._averaged():
                model.eval()
                try:
                    with torch.no_grad(), autocast:
                        metrics = self.task.evaluate(model)
                finally:
                    model.train()
            metrics = {k: (v.item() if hasattr(v, "item") else v) for k, v in dict(metrics).items()}
            verdict["metrics"] = metrics
            if cfg.metric not in metrics:
                verdict["error"] = (f"train.metric: '{cfg.metric}' is not among the validation metrics "
                                    f"({', '.join(sorted(metrics)) or 'none'})")
        verdict = dist.broadcast_object(verdict)
        if verdict["error"]:
            raise UserError(verdict["error"])
        metrics = verdict["metrics"]
        self.last_metrics = metrics
        self.last_eval_step = self.step
        value = float(metrics[cfg.metric])
        better = math.isfinite(value) and (
            self.best is None or (value < self.best if cfg.metric_mode == "min" else value > self.best))
        if better:
            self.best, self.best_step, self.bad_evals = value, self.step, 0
            if self.main:
                with self._averaged():
                    ckpt.save_checkpoint(self.run_dir / "best", model, domain=self.task.domain,
                                         config=self.config_dict, trainer_state=None,
                                         save_artifacts=self.task.save_artifacts, metrics=metrics, step=self.step)
        else:
            self.bad_evals += 1
        if self.trimmer is not None:
            # Validation's batch shapes differ from training's: give its heap
            # back now, or the rest of the run keeps it (measured: +2.3 GB).
            self.trimmer.trim_now()
        self.log.log("valid", self.step, dict(metrics, best=self.best), self._now() if self.main else self.elapsed)
        if self.main:
            shown = " ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items())
            self.bar.write(f"step {self.step} valid: {shown}" + (" (best)" if better else ""))
        dist.barrier()
        return cfg.patience is not None and self.bad_evals >= cfg.patience

    def _averaged(self):
        """The model with the moving average of its weights inside, where the run keeps one."""
        return self.average.swapped_in(self.task.model) if self.average is not None else nullcontext()

    def _save_periodic(self) -> None:
        rngs = dist.all_gather_object(rng_state(self.device))
        if self.main:
            state = {
                "step": self.step, **self.stream.state(), "elapsed": self._now(), "cpu_s": self._cpu_now(),
                "optimizer": self.optimizer.state_dict(), "rng": rngs,
                "best_metric": self.best, "best_step": self.best_step, "bad_evals": self.bad_evals,
                "last_eval_step": self.last_eval_step, "last_metrics": _plain(self.last_metrics),
                "skipped_steps": self.skipped_steps, "world_size": self.info.world_size, "seed": self.seed,
                "lr_multiplier": self.multiplier(self.step, self.elapsed),
                "log_window": {k: v for k, v in self.window.items() if k != "t"},
            }
            if self.average is not None:
                state["weight_average"] = self.average.state_dict()
            directory = self.run_dir / "checkpoints" / ckpt.step_dir_name(self.step)
            ckpt.save_checkpoint(directory, self.task.model, domain=self.task.domain, config=self.config_dict,
                                 trainer_state=state, save_artifacts=self.task.save_artifacts,
                                 metrics=self.last_metrics, step=self.step)
            ckpt.write_latest(directory.parent, directory.name)
            ckpt.prune(directory.parent, self.cfg.keep_checkpoints)
        self.last_saved_step = self.step
        dist.barrier()


def _new_window() -> dict:
    return {"loss": 0.0, "units": 0.0, "steps": 0, "t": time.monotonic(), "extra": {}, "gnorm": 0.0}


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def _plain(metrics: dict) -> dict:
    return {str(k): v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}


def _config_dict(full_config) -> dict:
    if full_config is None:
        return {}
    if isinstance(full_config, dict):
        return full_config
    from triptych.config import to_dict

    return to_dict(full_config)
