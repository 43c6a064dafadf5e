"""Image captioning with visual attention (Xu et al. 2015, Show, Attend and Tell).

A caption model IS a text model: it subclasses a text family (the attentive
RNN decoder of `triptych.text.models.rnn`, or the Transformer) and
overrides only `encode`, so that the "source" is an image batch (B, C, H, W)
instead of token ids. Training loss, `step`, `reorder` and greedy/beam
decoding are the text family's own code: decoding only needs `src.size(0)`.

`encode`: a registered vision CNN (any family) gives its last feature map
(B, C', h, w) — not the pooled vector — whose h*w positions become the
memory the decoder attends over, (B, h*w, D) after a linear projection plus
a learned embedding of each position (the decoder must know WHERE a region
is to say "to the left of"). The RNN's initial state comes from the mean of
the memory, as in the paper; the Transformer runs its encoder layers over
the h*w regions (self-attention between regions) before the decoder reads
them. Copy attention is meaningless over pixels and is refused.
"""

from __future__ import annotations

import dataclasses

import torch
from torch import nn

from triptych.caption.decoders import DECODERS
from triptych.errors import UserError
from triptych.text.models.rnn import RNNConfig, RNNSeq2Seq
from triptych.text.models.transformer import Transformer, TransformerConfig



class ImageMemory(nn.Module):
    """images (B, C, H, W) -> (B, h*w, D): the backbone's feature map as a set of regions."""

    def __init__(self, backbone: nn.Module, image_size: int, channels: int, dim: int):
        super().__init__()
        self.backbone = backbone
        with torch.no_grad():
            was = backbone.training
            backbone.eval()
            fmap = backbone.feature_map(torch.zeros(1, channels, image_size, image_size))  # (1, C', h, w)
            backbone.train(was)
        self.feature_channels, self.grid = int(fmap.size(1)), (int(fmap.size(2)), int(fmap.size(3)))
        self.project = nn.Linear(self.feature_channels, dim)
        self.position = nn.Parameter(torch.zeros(1, self.grid[0] * self.grid[1], dim))  # (1, h*w, D)
        nn.init.normal_(self.position, 0.0, 0.02)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        fmap = self.backbone.feature_map(images)  # (B, C', h, w)
        regions = fmap.flatten(2).transpose(1, 2)  # (B, h*w, C')
        return self.project(regions) + self.position  # (B, h*w, D)


def _placeholder_src(images: torch.Tensor) -> torch.Tensor:
    """(B, 1) ids standing for the image rows: decoding reads only its size(0)."""
    return torch.zeros(images.size(0), 1, dtype=torch.long, device=images.device)


class CaptionRNN(RNNSeq2Seq):
    """Show, Attend and Tell: the RNN decoder (with its attention) over image regions."""

    def __init__(self, cfg: RNNConfig, vocab_size: int, pad_id: int, memory: ImageMemory):
        super().__init__(cfg, vocab_size, pad_id)
        del self.enc_fwd, self.enc_bwd  # the text encoder: replaced by the CNN
        self.image = memory  # regions projected to K = 2 * encoder_hidden, what the attention reads

    def encode(self, src):
        """src: images (B, C, H, W) -> the dict the RNN decoder reads (see RNNSeq2Seq.encode)."""
        memory = self.image(src)  # (B, h*w, K)
        return {"memory": memory, "keys": self.attn.keys(memory), "pad": None,
                "src": _placeholder_src(src), "last": memory.mean(1)}  # h_0, c_0 from the mean region


class CaptionTransformer(Transformer):
    """The Transformer decoder over image regions, after its encoder's self-attention."""

    def __init__(self, cfg: TransformerConfig, vocab_size: int, pad_id: int, memory: ImageMemory):
        super().__init__(cfg, vocab_size, pad_id)
        self.image = memory  # regions projected to d_model

    def encode(self, src):
        """src: images (B, C, H, W) -> the dict the Transformer decoder reads."""
        x = self.image(src)  # (B, h*w, C)
        for layer in self.encoder:
            x = layer(x, None)
        memory = self.enc_norm(x)
        return {"memory": memory, "bias": None, "src": _placeholder_src(src),
                "cross": [layer.cross.keys_values(memory) for layer in self.decoder]}


def _decoder_config(cls, options: dict, decoder: str):
    fields = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(options) - fields)
    if unknown:
        raise UserError(f"model.decoder_options: unknown key {unknown[0]!r} for decoder {decoder!r}; "
                        f"allowed: {', '.join(sorted(fields))}")
    cfg = cls(**options)
    if cfg.copy:
        raise UserError("model.decoder_options.copy: copy attention copies source tokens; an image has none")
    return cfg


def build_backbone(model_cfg, channels: int) -> nn.Module:
    """The vision model named by model.backbone; with `backbone_checkpoint`, its trained weights."""
    from triptych.vision.models import get_model

    options = dict(model_cfg.backbone_options or {})
    try:
        backbone = get_model(model_cfg.backbone, num_classes=10, in_channels=channels, **options)
    except TypeError as e:
        raise UserError(f"model.backbone_options: an option that {model_cfg.backbone} does not take ({e})") from None
    if model_cfg.backbone_checkpoint:
        load_backbone(model_cfg.backbone_checkpoint, backbone, model_cfg.backbone, options)
    if model_cfg.freeze_backbone:
        backbone.requires_grad_(False)
    return backbone


def load_backbone(directory: str, backbone: nn.Module, name: str, options: dict) -> None:
    """Load a vision run's trunk (its classifier head is dropped: its classes are not words)."""
    from safetensors.torch import load_file

    from triptych.engine.checkpoint import load_checkpoint_meta, verify_weights

    _, config = load_checkpoint_meta(directory, expected_domain="vision")
    theirs = dict(config.get("model") or {})
    if theirs.get("name") != name:
        raise UserError(f"{directory}: holds a {theirs.get('name')!r} vision model whose feature map does not fit "
                        f"model.backbone {name!r}; set model.backbone: {theirs.get('name')}")
    # Options without weights (an activation, a stem) change the feature map silently: they must agree.
    theirs.pop("name")
    for key in sorted(set(theirs) | set(options)):
        if theirs.get(key) != options.get(key):
            raise UserError(f"{directory}: was trained with model.{key}: {theirs.get(key)!r} but "
                            f"model.backbone_options.{key} is {options.get(key)!r}; its feature map would not "
                            "be the one it learned: set them equal")
    state = {k: v for k, v in load_file(str(verify_weights(directory))).items() if not k.startswith("head.")}
    own = backbone.state_dict()
    for key, value in state.items():
        if key in own and own[key].shape != value.shape:
            raise UserError(f"{directory}: its {key} is {tuple(value.shape)} but this backbone's is "
                            f"{tuple(own[key].shape)}: its feature map does not fit the decoder "
                            "(check data.channels and model.backbone_options against the vision run)")
    missing = [k for k in own if k not in state and not k.startswith("head.")]
    if missing:
        raise UserError(f"{directory}: lacks {missing[0]} of the {name} backbone")
    backbone.load_state_dict({**own, **state})


def build_caption_model(cfg, vocab_size: int, pad_id: int):
    """A CaptionRNN or CaptionTransformer from a CaptionConfig."""
    m = cfg.model
    if m.decoder not in DECODERS:
        raise UserError(f"model.decoder: {m.decoder!r} is not allowed; allowed: {', '.join(DECODERS)}")
    backbone = build_backbone(m, cfg.data.channels)
    if m.decoder == "rnn":
        dcfg = _decoder_config(RNNConfig, m.decoder_options or {}, "rnn")
        memory = ImageMemory(backbone, cfg.data.image_size, cfg.data.channels, 2 * dcfg.encoder_hidden)
        return CaptionRNN(dcfg, vocab_size, pad_id, memory)
    dcfg = _decoder_config(TransformerConfig, m.decoder_options or {}, "transformer")
    memory = ImageMemory(backbone, cfg.data.image_size, cfg.data.channels, dcfg.d_model)
    return CaptionTransformer(dcfg, vocab_size, pad_id, memory)
