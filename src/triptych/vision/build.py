"""A vision model from a config's `model` section: below the task and the
config, so the config can build one (on the meta device) to check that it
fits the data when it is read."""

from __future__ import annotations

from triptych.errors import UserError


def build_classifier(cfg, num_classes: int, in_channels: int):
    """The registered model `cfg.model["name"]` with the options of `cfg` (a VisionConfig)."""
    from triptych.vision.models import get_model

    spec = dict(cfg.model)
    name = spec.pop("name", None)
    if not name:
        raise UserError("model.name: missing (see `triptych vision models`)")
    for key in ("num_classes", "in_channels"):
        if key in spec:
            raise UserError(f"model.{key}: set by the data, not the config")
    try:
        return get_model(str(name), num_classes=num_classes, in_channels=in_channels, **spec)
    except TypeError as e:
        raise UserError(f"model: an option that {name} does not take ({e})") from None
