"""One rank of tests/video/test_streaming_ddp.py, started by torchrun.

Reads two epochs of a shard glob as this rank's stream (2 DataLoader
workers) and gathers every rank's (shard, record) keys; rank 0 prints them
as one JSON line.
"""

import json
import sys

from triptych.engine import distributed as dist
from triptych.video.streaming import ShardStream, loader, scan, take
from triptych.video.io.tfrecord import RecordStats


def main(pattern: str) -> None:
    info = dist.setup("cpu")
    files, counts, _ = scan(pattern)
    epochs = []
    for epoch in (0, 1):
        ds = ShardStream(files, counts, epoch=epoch, seed=5, rank=info.rank, world=info.world_size, workers=2,
                         train=True, buffer=8, sampling="random", frames=3, max_frames=300, num_classes=12,
                         level="frame", verify=True, skip_bad=False)
        keys = [list(it["key"]) for it in take(loader(ds), 10**9, RecordStats())]
        epochs.append(dist.all_gather_object(keys))
    if info.rank == 0:
        print(json.dumps({"world": info.world_size, "counts": counts, "epochs": epochs}))
    dist.cleanup(info)


if __name__ == "__main__":
    main(sys.argv[1])
