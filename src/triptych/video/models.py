"""Video classifiers as compositions of pooling, hidden layer, gating and head.

    frame level:  rgb [B, T, 1024] --pool(K)---\\
                                                concat -> hidden (FC, BN, act) -> [CG] -> head -> [CG]
                  audio [B, T, 128] --pool(K/2)-/
    video level:  concat(mean_rgb, mean_audio) [B, 1152] -> head

Separate pooling of rgb (K clusters) and audio (K/2) with late fusion, a
hidden layer, and Context Gating after it and after the MoE, each
switchable, is the architecture of Miech, Laptev and Sivic 2017. Recurrent
models read rgb and audio concatenated frame by frame, like youtube-8m's
LstmModel. Models are presets over one class, registered by name:
`get_model("gated-netvlad", num_classes=3862)`, `list_models("net*")`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable

import torch
from torch import nn

from triptych.registry import Registry
from triptych.schema import bounded
from triptych.video.heads import make_head
from triptych.video.pooling import ContextGating, make_pooling
from triptych.video.io.yt8m import AUDIO_DIM, RGB_DIM



@dataclass
class ModelConfig:
    """What a video model is; saved in every run and checkpoint."""

    name: str = "gated-netvlad"
    level: str = bounded("frame", choices=("frame", "video"))
    num_classes: int = bounded(3862, ge=1)
    pooling: str = "netvlad"  # a name in pooling.POOLINGS; "none" for video level
    clusters: int = bounded(64, ge=1)  # K for rgb; audio gets K/2
    fusion: str = bounded("late", choices=("late", "early"))  # late: pool rgb and audio apart; early: pool concat(rgb, audio)
    rnn_size: int = bounded(1024, ge=1)
    rnn_layers: int = bounded(2, ge=1)
    hidden: int = bounded(1024, ge=0)  # 0: no hidden layer
    hidden_act: str = bounded("none", choices=("none", "relu6"))
    hidden_gating: bool = True  # Context Gating after the hidden layer
    head: str = bounded("moe", choices=("moe", "logistic"))
    num_mixtures: int = bounded(2, ge=1)
    head_gating: bool = True  # Context Gating after the head (gated MoE)
    input_bn: bool = False
    dropout: float = bounded(0.0, ge=0, lt=1)
    centre_init: str = bounded("random", choices=("random", "data"))  # random | data: NetVLAD from k-means, NetFV from a GMM (video/classical.py)


class VideoModel(nn.Module):
    """forward(batch) -> {"probs": [B, C], "logits": [B, C] when the head has them}.

    `batch` holds `rgb`, `audio` ([B, T, D] and `mask` [B, T] at frame level;
    [B, D] at video level), as tensors.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        dims = (RGB_DIM, AUDIO_DIM)
        if cfg.level == "video":
            self.pools = None
            width = sum(dims)
        elif cfg.fusion == "early" or cfg.pooling in ("lstm", "gru", "bilstm-attention"):
            self.pools = nn.ModuleList([make_pooling(cfg.pooling, sum(dims), cfg.clusters, cfg.rnn_size, cfg.rnn_layers)])
            width = self.pools[0].out_dim
        else:
            ks = (cfg.clusters, max(1, cfg.clusters // 2))
            self.pools = nn.ModuleList(
                make_pooling(cfg.pooling, d, k, cfg.rnn_size, cfg.rnn_layers) for d, k in zip(dims, ks)
            )
            width = sum(p.out_dim for p in self.pools)
        self.input_bn = nn.BatchNorm1d(sum(dims)) if cfg.input_bn else None
        layers: list[nn.Module] = []
        if cfg.dropout:
            layers.append(nn.Dropout(cfg.dropout))
        if cfg.hidden:
            layers += [nn.Linear(width, cfg.hidden, bias=False), nn.BatchNorm1d(cfg.hidden)]
            if cfg.hidden_act == "relu6":
                layers.append(nn.ReLU6())
            if cfg.hidden_gating:
                layers.append(ContextGating(cfg.hidden))
            width = cfg.hidden
        self.hidden = nn.Sequential(*layers)
        self.head = make_head(cfg.head, width, cfg.num_classes, cfg.num_mixtures, gated=cfg.head_gating)

    def features(self, batch: dict) -> torch.Tensor:
        rgb, audio = batch["rgb"], batch["audio"]
        if self.pools is None:
            x = torch.cat([rgb, audio], -1)
            return self.input_bn(x) if self.input_bn is not None else x
        mask = batch["mask"]
        if self.input_bn is not None:
            from triptych.video.pooling import masked_frames

            both = masked_frames(self.input_bn, torch.cat([rgb, audio], -1), mask)
            rgb, audio = both[..., :RGB_DIM], both[..., RGB_DIM:]
        if len(self.pools) == 1:
            return self.pools[0](torch.cat([rgb, audio], -1), mask)
        return torch.cat([self.pools[0](rgb, mask), self.pools[1](audio, mask)], 1)

    def forward(self, batch: dict) -> dict:
        return self.head(self.hidden(self.features(batch)))


# ------------------------------------------------------------------ registry

MODELS: Registry[Callable[..., ModelConfig]] = Registry("video model", key="model.name")


def register_model(name: str, **preset):
    """Register the preset `name`: ModelConfig fields over the defaults."""
    MODELS.register(name, lambda **kw: ModelConfig(**{"name": name, **preset, **kw}))


def list_models(pattern: str = "*") -> list[str]:
    return sorted(MODELS.list(pattern))


def model_config(name: str, **overrides) -> ModelConfig:
    return MODELS.get(name)(**overrides)


def get_model(name: str, **overrides) -> VideoModel:
    return VideoModel(model_config(name, **overrides))


def build(cfg: ModelConfig) -> VideoModel:
    return VideoModel(cfg)


def parameter_count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


_PLAIN = dict(hidden=0, hidden_gating=False, head_gating=False)
# video level (mean_rgb, mean_audio)
register_model("logistic", level="video", pooling="none", head="logistic", **_PLAIN)
register_model("moe", level="video", pooling="none", head="moe", **_PLAIN)
# frame level, no learnable pooling
register_model("mean-logistic", pooling="mean", head="logistic", **_PLAIN)
register_model("mean-moe", pooling="mean", head="moe", **_PLAIN)
register_model("max-moe", pooling="max", head="moe", **_PLAIN)
# youtube-8m starter models
register_model("dbof", pooling="dbof", clusters=8192, hidden_act="relu6", hidden_gating=False, head_gating=False,
               fusion="early")
register_model("lstm", pooling="lstm", **_PLAIN)
register_model("gru", pooling="gru", **_PLAIN)
register_model("bilstm-attention", pooling="bilstm-attention", rnn_size=512, **_PLAIN)
# Miech et al. 2017: learnable pooling, with and without Context Gating
for _pool in ("netvlad", "netrvlad", "netfv"):
    register_model(_pool, pooling=_pool, hidden_gating=False, head_gating=False)
    register_model(f"gated-{_pool}", pooling=_pool)
register_model("soft-dbof", pooling="soft-dbof", hidden_gating=False, head_gating=False)
register_model("gated-soft-dbof", pooling="gated-soft-dbof")  # CG on the pooled vector, hidden and MoE


def config_fields() -> list[str]:
    return [f.name for f in dataclasses.fields(ModelConfig)]


def resolve_model(cfg) -> ModelConfig:
    """The model's full config: preset <- the config's keys <- the data's classes and level.
    Here, below the config and the task, because the config checks it when it is read."""
    from triptych import config as configs
    from triptych.errors import UserError
    from triptych.video.pooling import POOLINGS

    spec = dict(cfg.model)
    name = spec.pop("name", None)
    if not name:
        raise UserError("model.name: missing (see `triptych video models`)")
    for key in ("num_classes", "level"):
        spec.pop(key, None)
    try:
        mcfg = model_config(str(name), **spec, num_classes=cfg.data.num_classes)
    except ValueError as e:
        raise UserError(f"model.name: {e}") from None
    except TypeError as e:
        raise UserError(f"model: an option that video models do not take ({e})") from None
    if mcfg.level != cfg.data.level:
        raise UserError(f"model {name} reads {mcfg.level}-level data but data.level is {cfg.data.level}")
    # The options as a config section: types, finiteness and the bounds next to
    # ModelConfig's fields (num_classes comes from data, checked there; None until known).
    values = dataclasses.asdict(mcfg)
    classes = values.pop("num_classes")
    mcfg = dataclasses.replace(configs.from_dict(ModelConfig, values, None, prefix="model."), num_classes=classes)
    if mcfg.level == "frame":
        POOLINGS.get(mcfg.pooling)  # an unknown name is one line naming model.pooling
    return mcfg
