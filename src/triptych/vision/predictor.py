"""A trained classifier loaded from its checkpoint: evaluate, predict, extract features.

    clf = Classifier("runs/vision/lenet5-digits/best")
    clf.predict_files(["three.png"])        # top-5 labels with probabilities
    clf.features(images)                    # (B, D) penultimate features (video frames)

Everything the model needs comes from the checkpoint directory: the
resolved config (architecture, options, image size, normalisation) and
classes.json (label names).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from triptych.errors import SettingError, UserError
from triptych.hardware import inference_autocast
from triptych.vision import transforms as T
from triptych.vision.config import VisionConfig
from triptych.vision.data import FolderImages, ImageSet, digits_set, open_image
from triptych.vision.task import CLASSES_FILE, build_classifier, evaluate_set, predict_set


def read_classes(checkpoint: str | Path) -> list[str]:
    """The label names a vision checkpoint keeps in classes.json."""
    from triptych.engine.checkpoint import resolve

    path = resolve(checkpoint) / CLASSES_FILE
    try:
        classes = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UserError(f"{checkpoint}: vision checkpoint has no {CLASSES_FILE}") from None
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise UserError(f"{path}: corrupt class list ({e})") from None
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) for c in classes):
        raise UserError(f"{path}: corrupt class list (expected a JSON list of names)")
    return classes


class Classifier:
    """A vision checkpoint ready for inference (eval mode, on `device`)."""

    def __init__(self, checkpoint: str | Path, device: str = "cpu", convert: bool | None = None):
        from triptych.engine.checkpoint import load_for_inference

        def build(cfg: VisionConfig):
            self.classes = read_classes(checkpoint)
            if cfg.data.mean is None or cfg.data.std is None:
                raise UserError(f"{checkpoint}/config.yaml: no data.mean/data.std (not written by `triptych vision train`)")
            if convert is not None:
                cfg.data.convert = convert
            self.channels = len(cfg.data.mean)
            return build_classifier(cfg, len(self.classes), self.channels)

        # a checkpoint of another architecture fails in load_for_inference, in one line
        loaded = load_for_inference(checkpoint, VisionConfig, "vision", build, device=device, name=lambda cfg: str(cfg.model.get("name")))
        self.checkpoint, self.cfg, self.model, self.device = Path(checkpoint), loaded.cfg, loaded.model, loaded.device

    @property
    def name(self) -> str:
        return str(self.cfg.model.get("name"))

    # `prepare` makes a Classifier usable wherever evaluate_set wants a task.
    def prepare(self, images: ImageSet, indices, train: bool, device):
        x, y = images.batch(indices, False)
        x = T.normalize(x, self.cfg.data.mean, self.cfg.data.std)
        return x.to(device), y.to(device)

    def dataset(self, spec: str | None) -> ImageSet:
        """`digits:test` (or :valid, :train), `fashion:test` (or :valid, :train), an ImageFolder directory, or None for the run's test split."""
        data = self.cfg.data
        if spec is None:
            if data.name in ("digits", "fashion"):
                spec = f"{data.name}:test"
            elif data.test:
                spec = data.test
            else:
                raise SettingError(f"{self.checkpoint}: its run had no test set (data.test); give {{data}} DIR")
        if spec.startswith("digits"):
            split = spec.partition(":")[2] or "test"
            if split not in ("train", "valid", "test"):
                raise SettingError(f"{{data}} {spec}: expected digits:train, digits:valid or digits:test")
            if self.classes != [str(d) for d in range(10)]:
                raise SettingError(f"{{data}} {spec}: {self.checkpoint} was not trained on the 10 digit classes")
            return digits_set(split, data)
        if spec.startswith("fashion:"):
            from triptych.vision.fashion import CLASSES, fashion_set

            if self.classes != CLASSES:
                raise UserError(f"--data {spec}: {self.checkpoint} was not trained on the Fashion-MNIST classes")
            return fashion_set(spec.partition(":")[2], data)
        return FolderImages(spec, data, classes=self.classes)

    def evaluate(self, images: ImageSet, flip: bool = False) -> dict:
        with inference_autocast(self.device):  # bf16 products where the CPU has native bf16 (hardware.py)
            return evaluate_set(self, self.model, images, flip=flip)

    def log_probabilities(self, images: ImageSet, flip: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, classes) log-probabilities of a whole set (float32, on the CPU) and its (N,) labels."""
        with inference_autocast(self.device):
            logits, labels = predict_set(self, self.model, images, flip=flip)
        return logits.log_softmax(1), labels

    def load_files(self, paths: list[str | Path]) -> torch.Tensor:
        """Image files -> (B, C, S, S) normalised, resized and centre-cropped as in evaluation."""
        data = self.cfg.data
        tensors = []
        for p in paths:
            img = open_image(p, self.channels, convert=data.convert, max_pixels=data.max_pixels)
            tensors.append(T.to_tensor(T.eval_transform(img, data.image_size)))
        return T.normalize(torch.stack(tensors), data.mean, data.std)

    def prepare_array(self, frames, source: str = "array") -> torch.Tensor:
        """Pixels in memory -> (N, C, S, S) normalised model input (for video frames).

        `frames`: (N, H, W), (N, H, W, C) or (N, C, H, W), numpy or torch,
        uint8 in 0-255 or floats in 0-1. Resized (bilinear) to the model's
        image size; a channel mismatch follows the same rule as files
        (an error naming `source`, unless the classifier was built with convert).
        """
        import torch.nn.functional as F

        x = torch.as_tensor(frames)
        if x.ndim == 3:
            x = x.unsqueeze(1)
        elif x.ndim == 4 and x.shape[-1] in (1, 3) and x.shape[1] not in (1, 3):
            x = x.permute(0, 3, 1, 2)
        if x.ndim != 4 or x.shape[1] not in (1, 3):
            raise UserError(f"{source}: expected frames of shape (N, H, W), (N, H, W, C) or (N, C, H, W), got {tuple(x.shape)}")
        x = x.float() / 255.0 if not x.is_floating_point() else x.float()
        if x.shape[1] != self.channels:
            if not self.cfg.data.convert:
                raise UserError(f"{source}: {x.shape[1]}-channel frames but the model takes {self.channels}; "
                                "use --convert to convert them")
            if self.channels == 3:
                x = x.expand(-1, 3, -1, -1)
            else:  # ITU-R 601 luminance, as PIL's convert("L")
                x = (x * torch.tensor([0.299, 0.587, 0.114]).view(1, 3, 1, 1)).sum(1, keepdim=True)
        size = self.cfg.data.image_size
        if tuple(x.shape[-2:]) != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
        return T.normalize(x.clamp(0, 1), self.cfg.data.mean, self.cfg.data.std)

    @torch.no_grad()
    def probabilities(self, x: torch.Tensor) -> torch.Tensor:
        with inference_autocast(self.device):
            logits = self.model(x.to(self.device))
        return torch.softmax(logits.float(), dim=1).cpu()

    @torch.no_grad()
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, S, S) normalised images -> (B, D) penultimate features."""
        from triptych.vision.models import penultimate_features

        with inference_autocast(self.device):
            return penultimate_features(self.model, x.to(self.device)).float().cpu()

    def predict_files(self, paths: list[str | Path], k: int = 5) -> list[dict]:
        """[{image, top: [{label, prob}, ...]}] for each file, best first."""
        probs = self.probabilities(self.load_files(paths))
        k = min(k, probs.shape[1])
        top = probs.topk(k, dim=1)
        return [
            {"image": str(p), "top": [{"label": self.classes[int(i)], "prob": round(float(v), 6)}
                                      for v, i in zip(top.values[r], top.indices[r])]}
            for r, p in enumerate(paths)
        ]
