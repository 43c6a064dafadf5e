"""Caption models: shapes over several backbones, incremental decoding equals the full forward, beam 1 is greedy."""

import pytest
import torch

from triptych.caption.config import CaptionConfig
from triptych.caption.models import CaptionRNN, CaptionTransformer, build_caption_model
from triptych.errors import UserError
from triptych.text.generation.search import beam_search, greedy

V, PAD, BOS, EOS = 20, 0, 2, 3
SMALL = {"rnn": {"embed_dim": 16, "hidden": 24, "encoder_hidden": 12, "dropout": 0.0},
         "transformer": {"d_model": 16, "heads": 2, "ffn": 32, "encoder_layers": 1, "decoder_layers": 2, "dropout": 0.0}}


def make(decoder="rnn", backbone="lenet5", channels=1, size=32, **options):
    cfg = CaptionConfig()
    cfg.data.channels, cfg.data.image_size = channels, size
    cfg.model.backbone, cfg.model.decoder = backbone, decoder
    cfg.model.decoder_options = {**SMALL[decoder], **options}
    torch.manual_seed(0)
    return build_caption_model(cfg, V, PAD).eval()


@pytest.mark.parametrize("decoder,backbone,grid", [("rnn", "lenet5", 64), ("rnn", "resnet18", 16),
                                                   ("transformer", "lenet5", 64), ("rnn", "alexnet", 16)])
def test_shapes(decoder, backbone, grid):
    model = make(decoder, backbone)
    x, tgt = torch.rand(3, 1, 32, 32), torch.randint(4, V, (3, 5))
    assert isinstance(model, CaptionRNN if decoder == "rnn" else CaptionTransformer)
    log_p, attn = model(x, tgt, return_attention=True)
    assert log_p.shape == (3, 5, V)
    assert torch.allclose(log_p.exp().sum(-1), torch.ones(3, 5), atol=1e-5)
    w = attn["cross"][-1]  # (B, heads, T, h*w): one weight per image region
    assert w.shape[0] == 3 and w.shape[-2:] == (5, grid)
    assert torch.allclose(w.sum(-1), torch.ones_like(w.sum(-1)), atol=1e-5)
    assert not hasattr(model, "enc_fwd")  # the text encoder is gone; the CNN replaces it


def test_rgb_images():
    model = make("rnn", "resnet18", channels=3)
    assert model(torch.rand(2, 3, 32, 32), torch.randint(4, V, (2, 4))).shape == (2, 4, V)


@pytest.mark.parametrize("decoder", ["rnn", "transformer"])
def test_incremental_steps_equal_full_forward(decoder):
    model = make(decoder)
    x, tgt = torch.rand(2, 1, 32, 32), torch.randint(4, V, (2, 6))
    with torch.no_grad():
        full = model(x, tgt)  # (B, T, V)
        enc = model.encode(x)
        state = model.init_state(enc)
        steps = []
        for t in range(tgt.size(1)):
            lp, state = model.step(tgt[:, t], enc, state)
            steps.append(lp)
    assert torch.allclose(torch.stack(steps, 1), full, atol=1e-5)


@pytest.mark.parametrize("decoder", ["rnn", "transformer"])
def test_beam_one_is_greedy(decoder):
    model = make(decoder)
    x = torch.rand(4, 1, 32, 32)
    g = greedy(model, x, bos=BOS, eos=EOS, max_len=8)
    b = [h[0].tokens for h in beam_search(model, x, beam=1, bos=BOS, eos=EOS, max_len=8, length_penalty=0.0)]
    assert g == b
    assert len(beam_search(model, x, beam=3, bos=BOS, eos=EOS, max_len=8)) == 4


def test_frozen_backbone_gets_no_gradient():
    cfg = CaptionConfig()
    cfg.model.backbone, cfg.model.freeze_backbone = "lenet5", True
    cfg.model.decoder_options = SMALL["rnn"]
    model = build_caption_model(cfg, V, PAD)
    x, tgt = torch.rand(2, 1, 32, 32), torch.randint(4, V, (2, 4))
    model.loss(x, tgt, tgt)[0].backward()
    assert all(p.grad is None for p in model.image.backbone.parameters())
    assert model.image.project.weight.grad is not None


def test_bad_options():
    with pytest.raises(UserError, match="decoder_options.copy"):
        make("rnn", copy=True)
    with pytest.raises(UserError, match="unknown key 'heads'"):
        make("rnn", heads=2)
    cfg = CaptionConfig()
    cfg.model.decoder = "cnn"
    with pytest.raises(UserError, match="model.decoder"):
        build_caption_model(cfg, V, PAD)
