import pytest

from tests.conftest import video_recipe
from triptych.video.synth import SynthSpec, synthesize


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    """Video tests are small; on a shared 2-core machine a second intra-op
    thread only adds contention (measured 10-50x slower under load)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def rated(tmp_path_factory):
    """2019 segment-rated files (3 shards each) shared by the segment tests."""
    d = tmp_path_factory.mktemp("y2019s")
    synthesize(d, SynthSpec(videos=40, valid_videos=30, classes=12, min_frames=12, max_frames=32, seed=7,
                            generation="2019-segments", shards=3))
    return d


@pytest.fixture(scope="session")
def checkpoint(rated, tmp_path_factory):
    """A 3-step mean-MoE run on `rated`; its best/ checkpoint."""
    from triptych.cli import main

    d = tmp_path_factory.mktemp("y2019run")
    # workers 0: the stream reads the shards in file order, so it scores the very
    # batches the in-memory set does; stream_above_mb 0: `auto` streams these files
    recipe = video_recipe(d / "r.yaml", rated, 3, data={"eval_batch_size": 8, "stream": False, "stream_above_mb": 0,
                                                         "workers": 0})
    assert main(["video", "train", str(recipe), "--out", str(d / "run")]) == 0
    return d / "run" / "best"
