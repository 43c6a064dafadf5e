"""Where image classification meets the engine: data, model, loss, metrics.

`VisionTask` builds the splits and the model from a `VisionConfig`, plans
shuffled batches (a pure function of seed and epoch, as the engine's resume
needs), sums the cross-entropy over images, and validates with loss and
accuracy (the metric that picks `best/` by default).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from triptych.errors import UserError
from triptych.vision.build import build_classifier  # noqa: F401  (re-exported: the task's model)
from triptych.vision.config import VisionConfig
from triptych.vision.data import ImageSet, Splits, build_splits, measure_normalization
from triptych.vision.loader import Feeds

CLASSES_FILE = "classes.json"


def batches(n: int, size: int) -> list[list[int]]:
    return [list(range(i, min(i + size, n))) for i in range(0, n, size)]


class VisionTask:
    domain = "vision"
    unit_name = "img"
    loads_init_from = True  # init_from with a new head for new classes: vision/finetune.py

    def __init__(self, cfg: VisionConfig, splits: Splits | None = None):
        self.cfg = cfg
        self.splits = splits or build_splits(cfg.data)
        data = cfg.data
        if cfg.data.batch_size < 1:
            raise UserError(f"data.batch_size: must be >= 1, got {data.batch_size}")
        if data.mean is None or data.std is None:
            # Measured once and written into the run's config, so eval and
            # predict normalise exactly as training did.
            data.mean, data.std = measure_normalization(self.splits.train)
        self.channels = self.splits.train.channels
        if len(data.mean) != self.channels or len(data.std) != self.channels:
            raise UserError(f"data.mean/data.std: need {self.channels} values, one per channel")
        self.classes = self.splits.classes
        self.model = build_classifier(cfg, len(self.classes), self.channels)
        if cfg.init_from:  # here, not in the engine: a new head for new classes is the vision domain's rule
            from triptych.vision.finetune import load_initial_weights

            self.init_info = load_initial_weights(self.model, cfg.init_from, self.classes)
        if cfg.freeze_backbone:
            from triptych.vision.finetune import freeze_backbone

            freeze_backbone(self.model)
        self.has_aux = getattr(self.model, "aux1", None) is not None
        self.feeds = Feeds(self, data.workers)

    # --- the engine's contract ------------------------------------------------

    def batch_plan(self, epoch: int) -> list[list[int]]:
        plan = self.batch_plan_pure(epoch)
        self.feeds.planned(epoch, plan)  # so photo batches can be decoded ahead, in order
        return plan

    def batch_plan_pure(self, epoch: int) -> list[list[int]]:
        g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + epoch)
        order = torch.randperm(len(self.splits.train), generator=g).tolist()
        plan = [order[i:i + self.cfg.data.batch_size] for i in range(0, len(order), self.cfg.data.batch_size)]
        # A last batch of one image breaks batch norm; drop a runt below half a batch.
        if len(plan) > 1 and len(plan[-1]) < max(2, self.cfg.data.batch_size // 2):
            plan.pop()
        return plan

    def prepare(self, images: ImageSet, indices: list[int], train: bool, device) -> tuple[torch.Tensor, torch.Tensor]:
        x, y = self.feeds.batch(images, indices, train)  # normalised (in the workers, for photos)
        return x.to(device, non_blocking=True), y.to(device, non_blocking=True)

    def collate(self, indices: list[int], device):
        return self.prepare(self.splits.train, indices, True, device)

    def batch_units(self, batch) -> int:
        return int(batch[1].shape[0])

    def loss(self, model, batch):
        x, y = batch
        loss, logits = summed_loss(model, x, y, self.has_aux and model.training, self.cfg.aux_weight,
                                   self.cfg.label_smoothing)
        acc = (logits.argmax(1) == y).float().mean().item()
        return loss, {"train_acc": acc}

    def evaluate(self, model) -> dict[str, float]:
        result = evaluate_set(self, model, self.splits.valid)
        return {"valid_loss": result["loss"], "accuracy": result["accuracy"], "top5": result["top5"]}

    def save_artifacts(self, directory: Path) -> None:
        (Path(directory) / CLASSES_FILE).write_text(json.dumps(self.classes) + "\n", encoding="utf-8")


def summed_loss(model, x: torch.Tensor, y: torch.Tensor, with_aux: bool, aux_weight: float,
                label_smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The training loss summed over the batch (float32 even under autocast) and the main logits.

    `with_aux`: GoogLeNet's auxiliary heads add their losses, weighted,
    as extra gradient paths into the middle of the network."""
    if with_aux:
        logits, aux = model.forward_with_aux(x)
    else:
        logits, aux = model(x), []
    loss = F.cross_entropy(logits.float(), y, reduction="sum", label_smoothing=label_smoothing)
    for a in aux:
        loss = loss + aux_weight * F.cross_entropy(a.float(), y, reduction="sum", label_smoothing=label_smoothing)
    return loss, logits


@torch.no_grad()
def predict_set(task_like, model, images: ImageSet, batch_size: int = 256,
                flip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """(N, num_classes) logits and (N,) labels of a whole set, un-augmented.

    `flip` (test-time augmentation): each image is also shown mirrored, and
    the result is the log of the two softmax distributions' mean, so it is
    still a log-probability for the loss and the top-5. It suits models that
    were trained with flipped images, which have learnt to answer the same
    for both."""
    device = next(model.parameters()).device
    logits, labels = [], []
    for idx in batches(len(images), batch_size):
        x, y = task_like.prepare(images, idx, False, device)
        out = model(x).float()
        if flip:
            both = torch.stack([out.log_softmax(1), model(x.flip(-1)).float().log_softmax(1)])
            out = torch.logsumexp(both, 0) - math.log(2)
        logits.append(out.cpu())
        labels.append(y.cpu())
    return torch.cat(logits), torch.cat(labels)


def evaluate_set(task_like, model, images: ImageSet, flip: bool = False) -> dict:
    """Mean loss, accuracy and top-5 accuracy (fractions) and the confusion matrix of a set
    (`flip`: with the mirrored images too, see `predict_set`)."""
    was_training = model.training
    model.eval()
    try:
        logits, labels = predict_set(task_like, model, images, flip=flip)
    finally:
        model.train(was_training)
    return classification_metrics(logits, labels, len(task_like.classes))


def classification_metrics(logits: torch.Tensor, labels: torch.Tensor, num_classes: int) -> dict:
    """What `vision eval` reports, from (N, num_classes) logits (or log-probabilities) and (N,) labels."""
    k = min(5, logits.shape[1])
    pred = logits.argmax(1)
    n = num_classes
    cm = torch.bincount(labels * n + pred, minlength=n * n).reshape(n, n)
    return {
        "images": int(labels.numel()),
        "loss": float(F.cross_entropy(logits, labels)),
        "accuracy": float((pred == labels).float().mean()),
        "top5": float((logits.topk(k, 1).indices == labels[:, None]).any(1).float().mean()),
        "confusion": cm.tolist(),  # rows: true class, columns: predicted
        "per_class_accuracy": (cm.diag().float() / cm.sum(1).clamp_min(1)).tolist(),  # recall of each class
    }
