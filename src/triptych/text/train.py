"""`triptych text train`: the recipe runner with the text task (maximum likelihood, or RL when `rl.enabled`)."""

from __future__ import annotations


def run_training(config_path: str, overrides: list[str], *, out: str | None = None, resume: bool = False, seed: int | None = None, device: str = "cpu") -> dict:
    from triptych.engine.recipe import run_recipe
    from triptych.text.config import TextConfig
    from triptych.text.task import check_model

    task_cls = None

    def prepare(cfg):
        nonlocal task_cls
        task_cls = _task_class(cfg)
        check_model(cfg)  # after _task_class: RL takes its model section from init_from

    def make_task(cfg, run_dir):
        # Rank 0 trains the BPE (or loads the run's) and saves it; the others
        # then load that very file, so every rank tokenises identically.
        run_dir.mkdir(parents=True, exist_ok=True)
        return task_cls(cfg, run_dir)

    summary, _, _ = run_recipe(TextConfig, make_task, "text", config_path, overrides, out=out, resume=resume, seed=seed,
                               device=device, prepare=prepare)
    return summary


def _task_class(cfg):
    """Maximum likelihood (`TextTask`), or fine-tuning with a ROUGE reward when `rl.enabled`."""
    if not cfg.rl.enabled:
        from triptych.text.task import TextTask

        return TextTask
    from triptych.text.rl import RLTextTask, prepare_config

    prepare_config(cfg)  # before the run's config.yaml is written: it records the model it trains
    return RLTextTask
