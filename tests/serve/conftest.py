"""Tiny text, vision and video checkpoints trained once, and real uvicorn servers on loopback ports."""

import threading
import time

import pytest

from tests.conftest import debian_pairs, video_recipe, write_jsonl

TEXT = [
    "--set", "model.d_model=32", "--set", "model.ffn=64", "--set", "model.heads=2",
    "--set", "model.encoder_layers=1", "--set", "model.decoder_layers=1",
    "--set", "tokenizer.vocab_size=300", "--set", "train.max_steps=4", "--set", "train.eval_every=4",
    "--set", "train.save_every=4", "--set", "train.warmup_steps=1", "--set", "train.max_minutes=null",
    "--set", "train.precision=fp32", "--set", "train.threads=1", "--set", "train.log_every=0",
    "--set", "eval.valid_rouge_samples=4", "--set", "data.batch_tokens=1500",
    "--set", "decode.max_len=8", "--set", "decode.min_len=3", "--set", "decode.beam=2",
]
VISION = [
    "--set", "model.small_input=true", "--set", "model.activation=relu", "--set", "data.limit_train=64",
    "--set", "train.max_steps=3", "--set", "train.eval_every=3", "--set", "train.save_every=3",
    "--set", "train.warmup_steps=1", "--set", "train.log_every=0", "--set", "data.image_size=8",
    "--set", "train.threads=1",
]
@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Tiny models on a shared 2-core machine: a second intra-op thread only adds contention."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def checkpoints(tmp_path_factory):
    """{"text", "vision", "video", "synth"}: best/ directories of a few steps each (about 10 s in all)."""
    from triptych.cli import main
    from triptych.video.synth import SynthSpec, synthesize

    root = tmp_path_factory.mktemp("serve-runs")
    write_jsonl(root / "train.jsonl", debian_pairs("train", 120))
    write_jsonl(root / "valid.jsonl", debian_pairs("valid", 8))
    assert main(["text", "train", "configs/text/demo.yaml", "--out", str(root / "text"), "--json",
                 "--set", f"data.train={root / 'train.jsonl'}", "--set", f"data.valid={root / 'valid.jsonl'}", *TEXT]) == 0
    assert main(["vision", "train", "configs/vision/lenet5-digits.yaml", "--out", str(root / "vision"), *VISION]) == 0
    synth = root / "synth"
    synthesize(synth, SynthSpec(videos=16, valid_videos=8, classes=12, min_frames=4, max_frames=8, seed=3))
    recipe = video_recipe(root / "video.yaml", synth, 2, data={"batch_size": 8})
    assert main(["video", "train", str(recipe), "--out", str(root / "video")]) == 0
    return {"text": root / "text" / "best", "vision": root / "vision" / "best", "video": root / "video" / "best",
            "synth": synth}


class LiveServer:
    """`triptych serve`'s app under a real uvicorn on 127.0.0.1:<free port>, in a thread."""

    def __init__(self, app):
        import uvicorn

        from triptych.serve.cli import bind

        self.app = app
        sock = bind("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        self.server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [sock]}, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the test server did not start")
            time.sleep(0.02)

    def stats(self) -> dict:
        import httpx

        return httpx.get(self.url + "/v1/models").json()["batching"]

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(15)


@pytest.fixture(scope="session")
def models(checkpoints):
    from triptych.serve.models import Models

    return Models.load(checkpoints["text"], checkpoints["vision"], checkpoints["video"])


@pytest.fixture(scope="session")
def start_server(models):
    """start_server(**limits) -> a LiveServer over the session's models; all stopped at the end."""
    from triptych.serve.app import create_app
    from triptych.serve.limits import Limits

    started = []

    def start(models_=None, **limits):
        server = LiveServer(create_app(models_ or models, Limits(**limits)))
        started.append(server)
        return server

    yield start
    for s in started:
        s.stop()


@pytest.fixture(scope="session")
def server(start_server):
    """The main test server: every domain, default limits but a 20 ms batching window."""
    return start_server(batch_wait_ms=20)
