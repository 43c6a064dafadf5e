"""Vision, video and captioning values are checked when the recipe is read (issue 18):
one line naming the key and what is allowed, exit 2, no run directory."""

import pytest

from tests.conftest import ROOT

VISION = ROOT / "configs/vision/lenet5-digits.yaml"
ALEXNET = ROOT / "configs/vision/alexnet-digits.yaml"
VIDEO = ROOT / "configs/video/gated-netvlad-synth.yaml"
CAPTION = ROOT / "configs/caption/digit-scenes.yaml"

BAD_SETTINGS = [
    # vision: data section
    ("vision", VISION, "data.image_size=2", "data.image_size: 2 is too small for model.name lenet5"),
    ("vision", VISION, "data.image_size=16", "data.image_size: 16 is too small for model.name lenet5"),
    ("vision", VISION, "data.image_size=0", "data.image_size: 0 is not allowed"),
    ("vision", VISION, "data.batch_size=0", "data.batch_size: 0 is not allowed"),
    ("vision", VISION, "data.valid_fraction=1", "data.valid_fraction: 1.0 is not allowed"),
    ("vision", VISION, "data.channels=2", "data.channels: 2 is not allowed (allowed: one of 1, 3)"),
    ("vision", VISION, "data.workers=-1", "data.workers: -1 is not allowed"),
    ("vision", VISION, "data.crop_padding=-2", "data.crop_padding: -2 is not allowed"),
    ("vision", VISION, "data.crop_scale=[0.9, 0.5]", "data.crop_scale: [0.9, 0.5] is not a range"),
    ("vision", VISION, "data.crop_scale=[0, 1]", "data.crop_scale: 0.0 is not allowed"),
    ("vision", VISION, "data.zoom=[1.2, 0.8]", "data.zoom: [1.2, 0.8] is not a range"),
    ("vision", VISION, "data.shift=1", "data.shift: 1.0 is not allowed"),
    ("vision", VISION, "data.rotate=-5", "data.rotate: -5.0 is not allowed"),
    ("vision", VISION, "data.std=[0]", "data.std: 0.0 is not allowed"),
    ("vision", VISION, "data.name=imagenet", "data.name: 'imagenet' is not allowed"),
    ("vision", VISION, "data.limit_train=0", "data.limit_train: 0 is not allowed"),
    ("vision", VISION, "label_smoothing=1", "label_smoothing: 1.0 is not allowed"),
    ("vision", VISION, "aux_weight=-1", "aux_weight: -1.0 is not allowed"),
    ("vision", VISION, "seed=-1", "seed: -1 is not allowed"),
    # vision: a builder's option values (model options are the builder's arguments, not fields)
    ("vision", VISION, "model.activation=sigmoid", "model: activation 'sigmoid' is not one of tanh, relu"),
    ("vision", ALEXNET, "model.hidden=-1", "model: Trying to create tensor with negative"),
    ("vision", ALEXNET, "model.dropout=2", "model: dropout probability has to be"),
    # video: data section, the model's options and train.metric
    ("video", VIDEO, "data.frames=0", "data.frames: 0 is not allowed"),
    ("video", VIDEO, "data.max_frames=0", "data.max_frames: 0 is not allowed"),
    ("video", VIDEO, "data.batch_size=0", "data.batch_size: 0 is not allowed"),
    ("video", VIDEO, "data.eval_batch_size=0", "data.eval_batch_size: 0 is not allowed"),
    ("video", VIDEO, "data.num_classes=0", "data.num_classes: 0 is not allowed"),
    ("video", VIDEO, "data.sampling=every", "data.sampling: 'every' is not allowed (allowed: one of all, random, wi"),
    ("video", VIDEO, "data.eval_sampling=some", "data.eval_sampling: 'some' is not allowed"),
    ("video", VIDEO, "data.level=clip", "data.level: 'clip' is not allowed"),
    ("video", VIDEO, "data.generation=2016", "data.generation: '2016' is not allowed"),
    ("video", VIDEO, "data.workers=-1", "data.workers: -1 is not allowed"),
    ("video", VIDEO, "data.stream_above_mb=-1", "data.stream_above_mb: -1 is not allowed"),
    ("video", VIDEO, "top_k=0", "top_k: 0 is not allowed"),
    ("video", VIDEO, "model.clusters=0", "model.clusters: 0 is not allowed"),
    ("video", VIDEO, "model.hidden=-1", "model.hidden: -1 is not allowed"),
    ("video", VIDEO, "model.num_mixtures=0", "model.num_mixtures: 0 is not allowed"),
    ("video", VIDEO, "model.rnn_size=0", "model.rnn_size: 0 is not allowed"),
    ("video", VIDEO, "model.dropout=1", "model.dropout: 1.0 is not allowed"),
    ("video", VIDEO, "model.dropout=.nan", "model.dropout: expected a finite number"),
    ("video", VIDEO, "model.dropout=banana", "model.dropout: expected a number"),
    ("video", VIDEO, "model.head=svm", "model.head: 'svm' is not allowed (allowed: one of moe, logistic)"),
    ("video", VIDEO, "model.fusion=middle", "model.fusion: 'middle' is not allowed"),
    ("video", VIDEO, "model.centre_init=zeros", "model.centre_init: 'zeros' is not allowed"),
    ("video", VIDEO, "model.pooling=blah", "model.pooling: unknown video pooling 'blah'"),
    ("video", VIDEO, "data.level=video", "model gated-netvlad reads frame-level data but data.level is video"),
    ("video", VIDEO, "train.metric=accuracy", "train.metric: 'accuracy' is not a validation metric"),
    ("video", VIDEO, "data.generation=2018;train.metric=segment_map",
     "segment_map is measured only with data.generation 2019-segments"),
    # captioning
    ("caption", CAPTION, "data.image_size=0", "data.image_size: 0 is not allowed"),
    ("caption", CAPTION, "model.backbone_options.small_input=false;data.image_size=16",
     "data.image_size: 16 is too small for model.backbone lenet5"),
    ("caption", CAPTION, "data.channels=2", "data.channels: 2 is not allowed"),
    ("caption", CAPTION, "data.batch_size=0", "data.batch_size: 0 is not allowed"),
    ("caption", CAPTION, "data.max_caption_len=1", "data.max_caption_len: 1 is not allowed"),
    ("caption", CAPTION, "data.vocab_size=0", "data.vocab_size: 0 is not allowed"),
    ("caption", CAPTION, "data.limit_train=0", "data.limit_train: 0 is not allowed"),
    ("caption", CAPTION, "model.decoder=lstm", "model.decoder: 'lstm' is not allowed (allowed: one of rnn, transfor"),
    ("caption", CAPTION, "valid_bleu_samples=-1", "valid_bleu_samples: -1 is not allowed"),
    ("caption", CAPTION, "label_smoothing=1", "label_smoothing: 1.0 is not allowed"),
]


@pytest.mark.parametrize("domain,recipe,setting,message", BAD_SETTINGS,
                         ids=[f"{d} {s}" for d, _, s, _ in BAD_SETTINGS])
def test_bad_values_are_one_line_before_a_run_directory(run_cli, tmp_path, domain, recipe, setting, message):
    out = tmp_path / "run"
    sets = [a for s in setting.split(";") for a in ("--set", s)]
    status, stdout, err = run_cli(domain, "train", recipe, "--out", out, *sets)
    assert status == 2 and stdout == "", err
    assert message in err and err.count("\n") == 1, err
    assert not out.exists()


def _recipes():
    from triptych.caption.config import CaptionConfig
    from triptych.video.config import VideoConfig
    from triptych.vision.config import VisionConfig

    classes = {"vision": VisionConfig, "video": VideoConfig, "caption": CaptionConfig}
    return [(classes[d], p) for d in classes for p in sorted((ROOT / "configs" / d).glob("*.yaml"))]


def test_every_recipe_is_within_its_bounds():
    """The bounds admit every shipped recipe (and there are recipes to check)."""
    from triptych import config as configs

    recipes = _recipes()
    assert len(recipes) > 40
    for cls, path in recipes:
        cfg = configs.load(cls, path)
        assert cfg.task in ("vision", "video", "caption"), path


def test_no_shipped_recipe_insists_on_bf16():
    """A recipe that says `precision: bf16` is refused on a CPU without bf16 kernels (an
    AVX2-only AMD EPYC): `make demo` was, there. `auto` picks bf16 where it is native."""
    import yaml

    paths = sorted((ROOT / "configs").rglob("*.yaml"))
    assert len(paths) > 40
    for path in paths:
        train = (yaml.safe_load(path.read_text(encoding="utf-8")) or {}).get("train") or {}
        assert train.get("precision", "fp32") in ("fp32", "auto"), f"{path}: precision {train['precision']}"
