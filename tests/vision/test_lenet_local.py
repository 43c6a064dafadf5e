"""lenet5_local is LeNet-5 with weight sharing removed, and nothing else changed."""

import pytest
import torch

from triptych.errors import UserError
from triptych.vision.models import count_params, get_model, model_spec
from triptych.vision.layers import LocallyConnected2d


def test_same_network_as_lenet5_when_every_position_holds_the_shared_filter():
    torch.manual_seed(0)
    conv = get_model("lenet5", activation="relu").eval()
    local = get_model("lenet5_local", activation="relu").eval()
    state = {k: v for k, v in conv.state_dict().items() if not k.startswith("trunk.")}
    local.load_state_dict(state, strict=False)
    for i in (0, 3, 6):
        c, lc = conv.trunk[i], local.trunk[i]
        assert isinstance(lc, LocallyConnected2d)
        with torch.no_grad():  # conv weight (O, C, k, k) -> every position's (C*k*k, O) filter
            lc.weight.copy_(c.weight.reshape(c.out_channels, -1).t().expand_as(lc.weight))
            lc.bias.copy_(c.bias.view(-1, 1, 1).expand_as(lc.bias))
    x = torch.randn(3, 1, 32, 32)
    assert torch.allclose(local(x), conv(x), atol=1e-5)


def test_parameter_counts_side_by_side():
    assert count_params(get_model("lenet5")) == 61_706
    assert count_params(get_model("lenet5_local")) == model_spec("lenet5_local").params == 423_038
    assert get_model("lenet5_local", input_size=36)(torch.randn(1, 1, 36, 36)).shape == (1, 10)


def test_unsupported_options_are_user_errors():
    from triptych.vision.config import VisionConfig
    from triptych.vision.task import build_classifier

    with pytest.raises(UserError, match="does not take"):  # named when the config is read (issue 18)
        build_classifier(VisionConfig(model={"name": "lenet5_local", "width": 3}), 10, 1)
