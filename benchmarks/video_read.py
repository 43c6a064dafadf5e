"""Frame-level YouTube-8M reading: triptych vs tf.data, the `tfrecord` package and protobuf.

Every reader turns each record of the same file into what a model eats:
the id, the labels, and dequantised float32 rgb [T, 1024] and audio
[T, 128] (the official q * 4/255 + 4/512 - 2), written into one reused
batch row as triptych's loaders do (video/streaming.py, VideoSet). A fresh
1 MB float32 array per record would time the kernel's page faults, the
same for every reader, not the reading: on 2026-12-03 that allocation was
half of triptych's time on AMD and more on an Intel Xeon, and it is why
the ratio fell there (see docs/history/2026-12-03b-cpu-kinds.md). Same
process, same file (read once beforehand so all readers find it in the
page cache), same thread. Times are CPU seconds (time.process_time): a busy shared
machine disturbs them far less than wall time.

  triptych         triptych.video.io.yt8m.read_videos (CRCs verified, as by default)
  triptych-noverify  the same with verify=False (the peer checks no CRCs)
  tfrecord         tfrecord.reader.sequence_loader (the PyPI package)
  protobuf         TFRecord framing + protobuf's SequenceExample.FromString
  tf_data_single   tf.data.TFRecordDataset -> map(tf.io.parse_single_sequence_example,
                   decode_raw, dequantise in the graph) -> one video's numpy arrays a step
  tf_data_batched  batches of 16 through tf.io.parse_sequence_example, frames padded
                   to the batch's longest video (decode_raw's fixed_length), each
                   batch to numpy once and cut into the videos' arrays (views)

TensorFlow (tensorflow-cpu 2.21.0) lives in its own venv, benchmarks/.peers/tf,
created on first use (it would bring a second numpy and protobuf into the
project's venv); it reads the same file in a subprocess of this script, its
own CPU seconds (every TF thread included) measured inside it after
import and a warm-up pass. `tf_data` is the faster of its two ways. Both
TF ways dequantise in the graph (cast, multiply, add in float32: the
official reader's arithmetic), and keep intra/inter-op threads at 1 as
the other readers run on one thread.

Data: 2,000 synthetic frame-level videos in the official layout, 150-300
frames (the real set averages ~230), written once to runs/video/bench-read/.

    .venv/bin/python benchmarks/video_read.py [--videos 2000] [--no-tf]

Prints the figures last as one JSON line; "ratio" is triptych's records/s
over the tfrecord package's (> 1 means triptych is faster);
"ratio_vs_tf_data" is triptych's over tf.data's (the goal: >= 1).
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
PEER = ROOT / "benchmarks" / ".peers" / "tf"
PEER_PACKAGES = ["tensorflow-cpu==2.21.0"]
TF_BATCH = 16  # of 1, 16, 64 the fastest here (ragged frame lists were slower still)
MAX_FRAMES = 300
_ROW: list = []  # the reused batch row (rgb, audio), made on first use


def tensors(rgb_u8: np.ndarray, audio_u8: np.ndarray):
    """The same exact float32 dequantisation for every reader, into one
    reused batch row (the loaders' `dequantize_into`; TF's does it in its
    graph). Imported here: the tf.data side runs this file in TF's venv."""
    from triptych.video.io.yt8m import AUDIO_DIM, RGB_DIM, dequantize_into

    if not _ROW:
        _ROW.extend((np.empty((MAX_FRAMES, RGB_DIM), np.float32), np.empty((MAX_FRAMES, AUDIO_DIM), np.float32)))
    rgb, audio = _ROW[0][: len(rgb_u8)], _ROW[1][: len(audio_u8)]
    dequantize_into(rgb_u8, rgb)
    dequantize_into(audio_u8, audio)
    return rgb, audio


def read_triptych(path, verify=True):
    from triptych.video.io.yt8m import read_videos

    n = 0
    for v in read_videos(path, num_classes=3862, verify=verify):
        rgb, audio = tensors(v.rgb, v.audio)
        n += 1
    return n


def read_tfrecord_package(path):
    from tfrecord.reader import sequence_loader

    n = 0
    for context, feats in sequence_loader(str(path), None, ["id", "labels"], ["rgb", "audio"]):
        vid = context["id"].decode("utf-8")
        labels = context["labels"]
        rgb = np.frombuffer(b"".join(feats["rgb"]), np.uint8).reshape(-1, 1024)[:300]
        audio = np.frombuffer(b"".join(feats["audio"]), np.uint8).reshape(-1, 128)[:300]
        rgb, audio = tensors(rgb, audio)
        n += 1
    return n


def read_protobuf(path):
    from triptych.video.io.protos import messages
    from triptych.video.io.tfrecord import iter_records

    SequenceExample = messages()["SequenceExample"]
    n = 0
    for _, payload in iter_records(path, verify=False):
        s = SequenceExample.FromString(payload)
        vid = s.context.feature["id"].bytes_list.value[0].decode("utf-8")
        labels = np.array(s.context.feature["labels"].int64_list.value, np.int64)
        lists = s.feature_lists.feature_list
        rgb = np.frombuffer(b"".join(f.bytes_list.value[0] for f in lists["rgb"].feature), np.uint8).reshape(-1, 1024)
        audio = np.frombuffer(b"".join(f.bytes_list.value[0] for f in lists["audio"].feature), np.uint8).reshape(-1, 128)
        rgb, audio = tensors(rgb[:300], audio[:300])
        n += 1
    return n


def tf_datasets(path):
    """The two tf.data pipelines: (name, dataset, to_arrays) where to_arrays
    turns one dataset element into [(id, labels, rgb [T, 1024], audio [T, 128])]."""
    import tensorflow as tf

    scale, bias = 4.0 / 255.0, 4.0 / 512.0 - 2.0
    context = {"id": tf.io.FixedLenFeature([], tf.string), "labels": tf.io.VarLenFeature(tf.int64)}

    def dequantize(raw, dim):  # bytes [T] -> float32 [T, dim]
        return tf.cast(tf.reshape(tf.io.decode_raw(raw, tf.uint8), [-1, dim]), tf.float32) * scale + bias

    def single(record):
        ctx, seq = tf.io.parse_single_sequence_example(
            record, context_features=context,
            sequence_features={k: tf.io.FixedLenSequenceFeature([], tf.string) for k in ("rgb", "audio")})
        return ctx["id"], ctx["labels"].values, dequantize(seq["rgb"][:300], 1024), dequantize(seq["audio"][:300], 128)

    def batched(records):  # padded to the batch's longest video; decode_raw pads the padding with zeros
        ctx, seq, lengths = tf.io.parse_sequence_example(
            records, context_features=context,
            sequence_features={k: tf.io.FixedLenSequenceFeature([], tf.string, allow_missing=True)
                               for k in ("rgb", "audio")})
        rgb = tf.cast(tf.io.decode_raw(seq["rgb"][:, :300], tf.uint8, fixed_length=1024), tf.float32) * scale + bias
        audio = tf.cast(tf.io.decode_raw(seq["audio"][:, :300], tf.uint8, fixed_length=128), tf.float32) * scale + bias
        return ctx["id"], ctx["labels"], rgb, audio, tf.minimum(lengths["rgb"], 300)

    def single_arrays(el):
        vid, labels, rgb, audio = el
        return [(vid.numpy().decode("utf-8"), labels.numpy(), rgb.numpy(), audio.numpy())]

    def batched_arrays(el):
        vid, labels, rgb, audio, lengths = el
        ids, lab, n = vid.numpy(), tf.sparse.to_dense(labels).numpy(), lengths.numpy()
        r, a = rgb.numpy(), audio.numpy()  # [B, T, 1024], [B, T, 128]
        return [(ids[i].decode("utf-8"), lab[i], r[i, :n[i]], a[i, :n[i]]) for i in range(len(ids))]

    ds = tf.data.TFRecordDataset(str(path))
    return [("tf_data_single", ds.map(single), single_arrays),
            ("tf_data_batched", ds.batch(TF_BATCH).map(batched), batched_arrays)]


def peer_main(args) -> None:
    """Runs inside the TensorFlow venv: records/s of each tf.data pipeline, as one JSON line."""
    import tensorflow as tf

    tf.config.threading.set_intra_op_parallelism_threads(1)
    tf.config.threading.set_inter_op_parallelism_threads(1)
    out = {"tensorflow": tf.__version__}
    for name, ds, to_arrays in tf_datasets(args.file):
        best = float("inf")
        for r in range(args.repeats + 1):  # the first pass warms up (graph tracing), untimed
            t, n = time.process_time(), 0
            for el in ds:
                n += len(to_arrays(el))
            if r:
                best = min(best, time.process_time() - t)
        out[name] = {"records": n, "records_per_s": n / best}
    print(json.dumps(out))


def ensure_peer() -> Path | None:
    sys.path.insert(0, str(ROOT / "benchmarks"))
    from peer_venv import ensure_venv

    return ensure_venv(PEER, PEER_PACKAGES)


def run_tf(path, repeats: int) -> dict:
    """tf.data's figures from the peer venv, or {"skipped_tf": why}."""
    python = ensure_peer()
    if python is None:
        return {"skipped_tf": "no TensorFlow peer venv (see the message above)"}
    done = subprocess.run([str(python), __file__, "--peer", "--file", str(path), "--repeats", str(repeats)],
                          capture_output=True, text=True, env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"})
    if done.returncode != 0:
        return {"skipped_tf": (done.stderr.strip().splitlines() or ["the TensorFlow peer failed"])[-1]}
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=2000)
    ap.add_argument("--dir", default="runs/video/bench-read")
    ap.add_argument("--repeats", type=int, default=2, help="best of N passes per reader")
    ap.add_argument("--no-tf", action="store_true", help="leave tf.data out (no TensorFlow venv)")
    ap.add_argument("--peer", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--file", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer:
        peer_main(args)
        return
    import torch

    from triptych.hardware import describe

    torch.set_num_threads(1)
    from triptych.video.synth import SynthSpec, synthesize

    d = Path(args.dir)
    path = d / "train0000.tfrecord"
    marker = d / f".videos-{args.videos}"
    if not marker.exists():
        synthesize(d, SynthSpec(videos=args.videos, valid_videos=0, classes=3862, min_frames=150, max_frames=300))
        marker.write_text("")
    path.read_bytes()  # into the page cache for every reader alike
    readers = {
        "triptych": lambda: read_triptych(path),
        "triptych_noverify": lambda: read_triptych(path, verify=False),
        "tfrecord": lambda: read_tfrecord_package(path),
        "protobuf": lambda: read_protobuf(path),
    }
    rates = {}
    for name, fn in readers.items():
        best = float("inf")
        for _ in range(args.repeats):
            t = time.process_time()
            n = fn()
            best = min(best, time.process_time() - t)
        assert n == args.videos, (name, n)
        rates[name] = n / best
        print(f"{name:<18} {rates[name]:9.1f} records/s")
    tf_info = {} if args.no_tf else run_tf(path, args.repeats)
    for name in ("tf_data_single", "tf_data_batched"):
        if name in tf_info:
            assert tf_info[name]["records"] == args.videos, (name, tf_info[name])
            rates[name] = tf_info[name]["records_per_s"]
            print(f"{name:<18} {rates[name]:9.1f} records/s")
    if "skipped_tf" in tf_info:
        print(f"tf.data left out: {tf_info['skipped_tf']}", file=sys.stderr)
    out = {"benchmark": "video_read", "videos": args.videos, "file_mb": round(path.stat().st_size / 2**20, 1),
           **{f"records_per_s_{k}": round(v, 1) for k, v in rates.items()},
           "ratio_vs_protobuf": round(rates["triptych"] / rates["protobuf"], 2),
           "ratio": round(rates["triptych"] / rates["tfrecord"], 2)}
    if "tf_data_single" in rates:
        best = max(("tf_data_single", "tf_data_batched"), key=rates.get)
        out.update(tf_data_way=best, tensorflow=tf_info["tensorflow"], tf_batch=TF_BATCH,
                   records_per_s_tf_data=round(rates[best], 1),
                   ratio_vs_tf_data=round(rates["triptych"] / rates[best], 2))
        print(f"triptych / tf.data ({best}): {out['ratio_vs_tf_data']:.2f}x")
    else:
        out["skipped_tf"] = tf_info.get("skipped_tf", "--no-tf")
    print(json.dumps({**out, "machine": describe()}))


if __name__ == "__main__":
    main()
