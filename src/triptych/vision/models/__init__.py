"""The ImageNet CNNs, one file a family, behind one registry.

    from triptych.vision.models import get_model, list_models
    model = get_model("resnet18", num_classes=10, in_channels=1, small_input=True)
    list_models("vgg*")            # ['vgg11', 'vgg11_bn', ...]
    penultimate_features(model, x) # (B, 512): what video and captioning build on

Every builder takes `num_classes`, `in_channels` and `small_input` (a stem
for 8x8 to 32x32 images); family-specific options (VGG's `hidden`,
GoogLeNet's `aux_logits`) pass through `get_model(name, **kw)`.
"""

from .registry import (  # noqa: F401
    ImageClassifier,
    ModelSpec,
    count_params,
    get_model,
    list_models,
    model_spec,
    penultimate_features,
    register_model,
)

# Importing a family registers its models; registry order is this order.
from . import lenet, lenet_local, alexnet, zfnet, vgg, googlenet, resnet  # noqa: E402,F401  isort: skip
