"""The vision part of `triptych demo`: a CNN on the real digits, beside logistic regression.

Trains LeNet-5 on the embedded digits for about a minute, scores it on the
fixed 359-image test split next to a logistic-regression baseline on the raw
64 pixels (scikit-learn), and draws the CNN's confusion matrix.
"""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path


def _say(text: str = "") -> None:
    print(text, file=sys.stderr, flush=True)


def demo_config(minutes: float):
    from triptych.config import TrainConfig
    from triptych.vision.config import DataConfig, VisionConfig

    return VisionConfig(
        seed=1,
        model={"name": "lenet5"},
        data=DataConfig(name="digits", image_size=32, batch_size=64),
        train=TrainConfig(
            lr=3e-3, warmup_steps=50, max_steps=600, max_minutes=minutes, eval_every=50, save_every=200,
            log_every=50, metric="valid_loss", metric_mode="min", weight_decay=0.05,
        ),
    )


def logistic_regression_baseline() -> dict:
    """Multinomial logistic regression on the 64 raw pixels, same split."""
    from sklearn.linear_model import LogisticRegression

    from triptych.vision.data import digits_arrays, digits_split_indices

    images, labels = digits_arrays()
    split = digits_split_indices()
    x = images.reshape(len(images), -1)
    t0 = time.monotonic()
    clf = LogisticRegression(max_iter=2000, C=1.0)
    clf.fit(x[split["train"]], labels[split["train"]])
    accuracy = float((clf.predict(x[split["test"]]) == labels[split["test"]]).mean())
    return {"model": "logistic regression (64 pixels)", "test_accuracy": accuracy,
            "seconds": round(time.monotonic() - t0, 2)}


def run(out_dir: Path, minutes: float = 1.0) -> dict:
    """Train, evaluate and plot into `out_dir` (replaced); returns the figures."""
    from triptych.plots import confusion_matrix
    from triptych.vision.predictor import Classifier
    from triptych.vision.train import run_training

    out_dir = Path(out_dir)
    shutil.rmtree(out_dir, ignore_errors=True)  # the demo's own folder: replaced on each run
    _say(f"== vision: training LeNet-5 on the digits (1,259 train / 179 valid / 359 test) for up to {minutes:g} min")
    t0 = time.monotonic()
    summary = run_training("", cfg=demo_config(minutes), out=str(out_dir))
    seconds = time.monotonic() - t0
    clf = Classifier(out_dir / "best")
    result = clf.evaluate(clf.dataset("digits:test"))
    plot = confusion_matrix(result["confusion"], clf.classes, out_dir / "confusion.png",
                            title="LeNet-5, digits test split")
    baseline = logistic_regression_baseline()
    cnn = {"model": "LeNet-5 (CNN)", "test_accuracy": result["accuracy"], "steps": summary["steps"],
           "seconds": round(seconds, 1)}
    _say("\nDigits test split (359 images):")
    _say(f"  {'model':<34} {'accuracy':>9}")
    for row in (baseline, cnn):
        _say(f"  {row['model']:<34} {100 * row['test_accuracy']:>8.2f}%")
    _say(f"  confusion matrix: {plot}")
    return {"run_dir": str(out_dir), "cnn": cnn, "baseline": baseline, "confusion_png": str(plot),
            "test_images": result["images"]}
