"""A handful of digit scenes captioned exactly after a short training (seconds)."""

import torch

from triptych.caption.config import CaptionConfig
from triptych.caption.scenes import write_digit_scenes
from triptych.caption.task import CaptionTask, caption_images


def test_tiny_overfit(tmp_path):
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: threads only contend for the shared cores
    try:
        _overfit(tmp_path)
    finally:
        torch.set_num_threads(threads)


def _overfit(tmp_path):
    write_digit_scenes(tmp_path / "s", 8, seed=3)  # 6 training scenes
    # One phrasing per scene, so the exact caption is learnable.
    lines = (tmp_path / "s" / "train.jsonl").read_text().splitlines()[::3]
    (tmp_path / "s" / "one.jsonl").write_text("\n".join(lines) + "\n")
    cfg = CaptionConfig()
    cfg.data.train = cfg.data.valid = str(tmp_path / "s" / "one.jsonl")
    cfg.data.batch_size = 6
    cfg.model.backbone = "lenet5"
    cfg.model.backbone_options = {"small_input": True, "activation": "relu"}
    cfg.model.decoder_options = {"embed_dim": 32, "hidden": 64, "encoder_hidden": 32, "dropout": 0.0}
    torch.manual_seed(0)
    task = CaptionTask(cfg)
    model = task.model
    opt = torch.optim.Adam(model.parameters(), lr=5e-3)
    batch = task.collate(list(range(len(task.train))), "cpu")
    # Train to a loss, not a step count: how fast Adam gets there differs with
    # each CPU's rounding, and only a converged model makes the exact captions
    # below a fact rather than a coin toss.
    for _ in range(400):
        opt.zero_grad()
        loss, n = model.loss(batch["src"], batch["tgt_in"], batch["tgt_out"])
        per_token = loss / n
        if per_token.item() < 2e-3:
            break
        per_token.backward()
        opt.step()
    assert per_token.item() < 2e-3, f"did not overfit: {per_token.item():.4f} a token after 400 steps"
    captions = [caps[0] for caps in task.train.captions]
    assert caption_images(model, task.tokenizer, task.train.images, beam=1, max_len=12) == captions
    # Beam search must find them too: it once stopped at its K-th closed
    # hypothesis and returned a worse one (tests/text/test_decoding.py).
    assert caption_images(model, task.tokenizer, task.train.images, beam=3, max_len=12) == captions
    assert task.evaluate(model)["bleu"] > 99.0
