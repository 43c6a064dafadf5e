"""Shard globs read as streams: the data never has to fit in memory.

Who reads what. The R = world_size x workers readers of an epoch share
its records without overlap. Shard order is shuffled per epoch by one
permutation (seed, epoch) that every process computes alike; the first
R * (shards // R) shards of that order are dealt whole, round-robin (nobody
opens another's shard); the records of the last shards % R are dealt one
by one, every reader framing those shards and taking its own records.

How many. A header scan counts each shard's records once (12 bytes read a
record, the payload skipped by a seek), so every process knows every
reader's count for every epoch without talking to the others. A rank's
DataLoader yields its workers' items strictly round-robin while all are
alive, so an epoch plans only as many batches as every rank can fill while
all its workers still have records: what is left over is the imbalance of
shard sizes plus less than a batch a rank (the official shards are of
nearly equal size).

Where we are. An item's place in the rank's stream is fixed by (seed,
epoch, rank, world, workers), so the engine's (epoch, micro-batch)
position in the checkpoint is the stream position: a resumed run rebuilds
the epoch's stream and each worker passes over the records it had already
given, through the same shuffle buffer, without decoding them.

Each worker: records -> a shuffle buffer of raw payloads -> decode ->
frame sampling seeded by (seed, epoch, shard, record) -> uint8 frames to
the main process, which pads, dequantises and batches. A damaged record is
an item too ({"bad": why}, its slot left empty, counted) under
`skip_bad_records`, else {"error": why}: the main process raises it as one
line naming the shard and record.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from triptych.errors import UserError
from triptych.video.io.tfrecord import _HEADER, RecordStats, _is_gzip, expand_paths, iter_records, masked_crc

_COUNTS: dict[tuple, tuple[int, str | None]] = {}


def scan_shard(path: Path, verify: bool = True) -> tuple[int, str | None]:
    """(records, generation of the first record) of one shard, by its headers.

    A raw shard is walked header to header (the payloads are seeked over);
    a gzip one has to be decompressed. Cached per (path, size, mtime).
    """
    from triptych.video.io import example as pb
    from triptych.video import generations as gens

    try:
        st = path.stat()
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror or e})") from None
    key = (str(path), st.st_size, st.st_mtime_ns)
    if key in _COUNTS:
        return _COUNTS[key]
    first = None
    if _is_gzip(path):
        n = 0
        for _, payload in iter_records(path, verify=verify):
            first = payload if first is None else first
            n += 1
    else:
        n = 0
        with open(path, "rb") as fh:
            while True:
                head = fh.read(12)
                if not head:
                    break
                length, crc = _HEADER.unpack(head) if len(head) == 12 else (0, None)
                if crc is None or (verify and masked_crc(head[:8]) != crc):
                    raise UserError(f"{path}: record {n}: " + ("truncated header" if crc is None else
                                    "length CRC mismatch (corrupt or not a TFRecord file)"))
                end = fh.tell() + length + 4
                if end > st.st_size:
                    raise UserError(f"{path}: record {n}: truncated record ({length} bytes announced, "
                                    f"{st.st_size - fh.tell()} left in the file)")
                if first is None:
                    first = fh.read(length)
                fh.seek(end)
                n += 1
    generation = None
    if first is not None:
        try:
            context, _ = pb.parse_sequence_example(first)
            generation = gens.identify(context, ValueError)
        except ValueError as e:
            raise UserError(f"{path}: record 0: {e}") from None
    _COUNTS[key] = (n, generation)
    return n, generation


def scan(paths, verify: bool = True) -> tuple[list[Path], list[int], str | None]:
    """(shards, their record counts, the generation); mixed generations are one error naming two shards."""
    from triptych.video.generations import GenerationGuard

    files = [Path(p) for p in expand_paths(paths)]
    guard = GenerationGuard()
    counts = []
    for f in files:
        n, generation = scan_shard(f, verify)
        counts.append(n)
        if generation is not None:
            guard.check(generation, f, 0)
    return files, counts, guard.generation


def epoch_order(num_files: int, seed: int, epoch: int, shuffle: bool) -> list[int]:
    if not shuffle:
        return list(range(num_files))
    return [int(i) for i in np.random.default_rng([seed, epoch, 17]).permutation(num_files)]


def reader_counts(counts: list[int], order: list[int], readers: int) -> list[int]:
    """Records each of `readers` readers gets in an epoch with this shard order.

    The first readers * (shards // readers) shards of the order are dealt
    whole (shard at position i to reader i % readers); the records of the
    remaining shards are dealt one by one (the j-th of them to reader
    j % readers), so the counts differ by the shards' sizes only.
    """
    whole = len(order) - len(order) % readers
    n = [0] * readers
    for pos in range(whole):
        n[pos % readers] += counts[order[pos]]
    rest = sum(counts[f] for f in order[whole:])
    return [n[q] + rest // readers + (q < rest % readers) for q in range(readers)]


def _stream_base():
    import torch.utils.data

    return torch.utils.data.IterableDataset


class ShardStream(_stream_base()):
    """One epoch of one rank's records, for a DataLoader (batch_size=None).

    `skip[w]`: items worker w passes over undecoded (a resumed epoch).
    `train=True`: shuffle buffer and sampled frames; else file order and
    every frame, with the video's id and rated segments.
    """

    def __init__(self, files, counts, *, epoch: int, seed: int, rank: int, world: int, workers: int,
                 train: bool, buffer: int, sampling: str, frames: int, max_frames: int, num_classes: int,
                 level: str, verify: bool, skip_bad: bool, consumed: int = 0):
        self.files, self.counts = [str(f) for f in files], list(counts)
        self.epoch, self.seed, self.rank, self.world = epoch, seed, rank, world
        self.num_workers, self.workers = workers, max(1, workers)  # DataLoader's, and readers a rank
        self.train, self.buffer, self.sampling, self.frames = train, buffer, sampling, frames
        self.max_frames, self.num_classes, self.level = max_frames, num_classes, level
        self.verify, self.skip_bad = verify, skip_bad
        self.consumed = consumed  # items of this epoch the rank has already used (a resumed run)

    def role(self, worker: int) -> tuple[int, int]:
        """(reader slot, items to pass over) of DataLoader worker `worker`.

        The rank's stream takes its readers round-robin; after `consumed`
        items the next comes from slot consumed % W, and a fresh DataLoader
        starts at worker 0, so worker w plays slot (w + consumed) % W.
        """
        W = self.workers
        slot = (worker + self.consumed) % W
        passed = self.consumed // W + (slot < self.consumed % W)
        return slot, passed

    def _payloads(self, q: int, readers: int, stats: RecordStats):
        """(shard index, record index, payload) of reader q, or ("bad"/"error", message)."""
        order = epoch_order(len(self.files), self.seed, self.epoch, self.train)
        whole = len(order) - len(order) % readers  # see reader_counts
        g = 0
        for pos, f in enumerate(order):
            if pos < whole and pos % readers != q:
                continue
            path = self.files[f]
            try:
                for ri, payload in iter_records(path, verify=self.verify, skip_bad=self.skip_bad, stats=stats):
                    if pos < whole or g % readers == q:
                        yield f, ri, payload
                    g += pos >= whole
            except UserError as e:  # a shard gone or cut short since the scan
                if not self.skip_bad:
                    yield "error", str(e), None
                    return
                stats.skip(str(e))

    def _shuffled(self, q: int, readers: int, stats: RecordStats):
        rng = np.random.default_rng([self.seed, self.epoch, q, 29])
        buf: list = []
        for item in self._payloads(q, readers, stats):
            if item[0] == "error":
                yield item
                return
            if not self.train:
                yield item
                continue
            buf.append(item)
            if len(buf) >= self.buffer:
                yield buf.pop(int(rng.integers(len(buf))))
        while buf:
            yield buf.pop(int(rng.integers(len(buf))))

    def __iter__(self):
        import torch.utils.data

        from triptych.video.io.yt8m import RecordError, decode

        info = torch.utils.data.get_worker_info()
        slot, passed = self.role(info.id if info is not None else 0)
        readers = self.world * self.workers
        stats = RecordStats()
        reported = 0
        for n, (f, ri, payload) in enumerate(self._shuffled(self.rank * self.workers + slot, readers, stats)):
            if f == "error":
                yield {"error": ri}
                return
            if n < passed:
                continue  # used before the checkpoint: through the buffer, not decoded
            try:
                v = decode(payload, self.num_classes, self.level, self.max_frames)
                if v.level != self.level:
                    raise RecordError(f"a {v.level}-level record, but data.level is {self.level}")
            except RecordError as e:
                item = {"bad": f"{self.files[f]}: record {ri}: {e}"}
                if not self.skip_bad:
                    yield {"error": item["bad"]}
                    return
            else:
                item = self._item(v, f, ri)
            if len(stats.skipped) > reported:
                item["skipped"] = stats.skipped[reported:]
                reported = len(stats.skipped)
            yield item
        if len(stats.skipped) > reported:
            yield {"bad": None, "skipped": stats.skipped[reported:], "tail": True}

    def _item(self, v, f: int, ri: int) -> dict:
        from triptych.video.io.yt8m import sample_frames

        item = {"labels": v.labels, "key": (f, ri)}  # shard, record: where it came from
        if v.level == "video":
            item.update(rgb=v.rgb, audio=v.audio)
        elif self.train:
            rgb, audio = v.rgb[: self.max_frames], v.audio[: self.max_frames]
            rng = np.random.default_rng([self.seed, self.epoch, f, ri])
            n = self.frames if self.sampling != "all" else 0
            pick = sample_frames(len(rgb), self.sampling, n, rng)
            item.update(rgb=np.ascontiguousarray(rgb[pick]), audio=np.ascontiguousarray(audio[pick]))
        else:
            item.update(rgb=np.ascontiguousarray(v.rgb), audio=np.ascontiguousarray(v.audio))
        if not self.train:
            item.update(id=v.id, segments=v.segments, generation=v.generation)
        return item


def _identity(x):
    return x


def loader(dataset: ShardStream):
    """An iterator over `dataset`'s items: in this process (0 workers) or a DataLoader's workers."""
    import torch.utils.data

    if dataset.num_workers <= 0:
        return iter(dataset)
    return iter(torch.utils.data.DataLoader(dataset, batch_size=None, num_workers=dataset.num_workers,
                                            collate_fn=_identity, prefetch_factor=4))


def collate_items(items: list[dict], num_classes: int, level: str, max_frames: int | None = None) -> dict:
    """Items -> a model batch as numpy (VideoSet.batch's layout); frames cut at max_frames."""
    from triptych.video.io.yt8m import AUDIO_DIM, RGB_DIM, dequantize_into

    B = len(items)
    labels = np.zeros((B, num_classes), np.float32)
    for row, it in enumerate(items):
        labels[row, it["labels"]] = 1.0
    if level == "video":
        return {"rgb": np.stack([it["rgb"] for it in items]), "audio": np.stack([it["audio"] for it in items]),
                "labels": labels}
    lengths = [min(len(it["rgb"]), max_frames or len(it["rgb"])) for it in items]
    width = max(1, max(lengths))
    rgb = np.zeros((B, width, RGB_DIM), np.float32)
    audio = np.zeros((B, width, AUDIO_DIM), np.float32)
    mask = np.zeros((B, width), np.float32)
    for row, (it, n) in enumerate(zip(items, lengths)):
        dequantize_into(it["rgb"][:n], rgb[row, :n])
        dequantize_into(it["audio"][:n], audio[row, :n])
        mask[row, :n] = 1.0
    return {"rgb": rgb, "audio": audio, "mask": mask, "num_frames": mask.sum(1).astype(np.int64), "labels": labels}


def take(it, n: int, stats: RecordStats) -> list[dict]:
    """The next n items of a stream: bad ones counted and left out; an error raised as one line."""
    out = []
    for _ in range(n):
        try:
            item = next(it)
        except StopIteration:
            break
        for message in item.get("skipped", ()):
            stats.skip(message)
        if "error" in item:
            raise UserError(item["error"])
        if "bad" in item:
            if item["bad"]:
                stats.skip(item["bad"])
            continue
        if "labels" in item:
            out.append(item)
    return out


def size_of(paths) -> int:
    """Bytes on disk of the files a glob names (the in-memory / stream choice)."""
    return sum(os.path.getsize(p) for p in expand_paths(paths))
