"""JPEG decoding images/s: Pillow against pillow-simd, simplejpeg, OpenCV and PyTurboJPEG, one core.

The same generated photos as benchmarks/vision_data.py (2,000 JPEGs, sides
300-800 pixels), read into memory first so that only decoding is timed,
each decoded to an RGB uint8 array on one thread, two ways:
- "full": every pixel, as torchvision's ImageFolder loader decodes;
- "scaled": the power-of-two DCT scaling our loader asks for (Pillow's
  `draft`), here the evaluation path's: the largest scale 1/s (s in 1, 2,
  4, 8) that keeps the short side >= 256 (the resize before the centre
  crop of 224); each decoder is given the same s (or the same minimum
  size), and the decoded pixel counts are printed to show equal work.
Time is the decoding thread's CPU time (every decoder here runs on one
thread), so other processes on a shared machine do not enter the figure.

pillow-simd replaces Pillow, so each decoder set lives in its own venv
under benchmarks/.peers/ (`--setup` creates them: pillow-simd builds from
its sdist and needs a C compiler and the libjpeg/zlib headers, e.g.
`apt-get install -y libjpeg-dev zlib1g-dev`; PyTurboJPEG needs the system
libturbojpeg: 1.x for libjpeg-turbo 2.x, 2.x for 3.x). Rounds alternate
between the interpreters; each figure is the median round.

    .venv/bin/python benchmarks/vision_decoders.py --setup      # once: the two venvs
    .venv/bin/python benchmarks/vision_decoders.py [--images 2000] [--rounds 3] [--dir TREE]

The last line is one JSON object: images/s per decoder and mode, and each
one's ratio to Pillow's (> 1: faster than Pillow).
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PEERS = ROOT / "benchmarks" / ".peers"
VENVS = {  # name: packages (pip specifiers)
    "decoders": ["pillow==13.0.0", "numpy", "simplejpeg==1.9.0", "opencv-python-headless", "pyturbojpeg<2"],
    "pillow-simd": ["numpy", "pillow-simd==12.1.1.post0"],
}


def scale_for(width: int, height: int, short: int = 256) -> int:
    """The power-of-two reduction (1, 2, 4, 8) that keeps the short side >= `short`."""
    s = 1
    while s < 8 and min(width, height) // (2 * s) >= short:
        s *= 2
    return s


def decoders() -> dict:
    """name -> decode(data, s) -> HxWx3 uint8 array, for every decoder importable here."""
    import numpy as np

    found = {}
    try:
        from PIL import Image

        def pillow(data: bytes, s: int):
            img = Image.open(io.BytesIO(data))
            if s > 1:
                img.draft("RGB", (img.width // s, img.height // s))  # Pillow's scale: w // asked
            return np.asarray(img.convert("RGB"))

        found["pillow-simd" if "post" in Image.__version__ else "pillow"] = pillow
    except ImportError:
        pass
    try:
        import simplejpeg

        def sj(data: bytes, s: int):
            if s == 1:
                return simplejpeg.decode_jpeg(data, colorspace="RGB")
            w, h = simplejpeg.decode_jpeg_header(data)[1::-1]
            return simplejpeg.decode_jpeg(data, colorspace="RGB", min_height=-(-h // s), min_width=-(-w // s))

        found["simplejpeg"] = sj
    except ImportError:
        pass
    try:
        import cv2

        cv2.setNumThreads(1)
        flags = {1: cv2.IMREAD_COLOR, 2: cv2.IMREAD_REDUCED_COLOR_2, 4: cv2.IMREAD_REDUCED_COLOR_4,
                 8: cv2.IMREAD_REDUCED_COLOR_8}

        def opencv(data: bytes, s: int):
            bgr = cv2.imdecode(np.frombuffer(data, np.uint8), flags[s])
            return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)

        found["opencv"] = opencv
    except ImportError:
        pass
    try:
        from turbojpeg import TJPF_RGB, TurboJPEG

        tj = TurboJPEG()

        def turbo(data: bytes, s: int):
            return tj.decode(data, pixel_format=TJPF_RGB, scaling_factor=None if s == 1 else (1, s))

        found["pyturbojpeg"] = turbo
    except (ImportError, OSError, RuntimeError):  # no libturbojpeg, or one of the wrong major version
        pass
    return found


def versions() -> dict:
    out = {}
    for mod in ("PIL", "simplejpeg", "cv2", "turbojpeg"):
        try:
            out[mod] = getattr(__import__(mod), "__version__", "?")
        except ImportError:
            pass
    return out


def measure(tree: str) -> dict:
    """In one interpreter: {decoder: {mode: images/s, mode + "_pixels": decoded pixels}}."""
    from PIL import Image

    files = sorted(Path(tree).rglob("*.jpg"))
    blobs = [f.read_bytes() for f in files]
    scales = []
    for data in blobs:
        w, h = Image.open(io.BytesIO(data)).size
        scales.append(scale_for(w, h))
    out = {}
    for name, decode in decoders().items():
        row = {}
        for mode in ("full", "scaled"):
            decode(blobs[0], 1)  # warm-up
            pixels, t0 = 0, time.thread_time()
            for data, s in zip(blobs, scales):
                arr = decode(data, s if mode == "scaled" else 1)
                pixels += arr.shape[0] * arr.shape[1]
            row[mode] = len(blobs) / (time.thread_time() - t0)
            row[mode + "_pixels"] = pixels
        out[name] = row
    return {"decoders": out, "versions": versions()}


def setup() -> None:
    for name, packages in VENVS.items():
        venv = PEERS / name
        if (venv / "bin" / "python").exists():
            continue
        print(f"creating {venv}: {' '.join(packages)}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", *packages], check=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--measure", help=argparse.SUPPRESS)
    p.add_argument("--setup", action="store_true", help="create the decoder venvs under benchmarks/.peers/")
    p.add_argument("--images", type=int, default=2000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--dir", help="an existing tree of JPEGs (default: generate --images into a temporary folder)")
    args = p.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return
    if args.setup:
        setup()
        return
    pythons = [sys.executable] + [str(PEERS / n / "bin" / "python") for n in VENVS
                                  if (PEERS / n / "bin" / "python").exists()]
    with tempfile.TemporaryDirectory(prefix="vision-decoders-") as tmp:
        tree = args.dir
        if tree is None:
            sys.path.insert(0, str(ROOT / "benchmarks"))
            from vision_data import make_tree

            make_tree(Path(tmp), args.images)
            tree = tmp
        rounds: dict[str, list[dict]] = {}
        info: dict[str, str] = {}  # decoder -> the interpreter that times it
        versions_of: dict[str, dict] = {}
        for r in range(args.rounds):
            for python in (pythons if r % 2 == 0 else pythons[::-1]):
                done = subprocess.run([python, __file__, "--measure", tree], capture_output=True, text=True, check=True)
                got = json.loads(done.stdout.strip().splitlines()[-1])
                mine = {n: row for n, row in got["decoders"].items() if info.setdefault(n, python) == python}
                for name, row in mine.items():  # Pillow is in two venvs: timed in the first only
                    rounds.setdefault(name, []).append(row)
                    versions_of[name] = got["versions"]
                print(f"round {r + 1}: " + ", ".join(f"{n} {row['full']:.0f}/{row['scaled']:.0f}"
                                                     for n, row in mine.items())
                      + " img/s (full/scaled)", file=sys.stderr)
    table = {}
    for name, rows in rounds.items():
        table[name] = {mode: round(statistics.median(r[mode] for r in rows), 1) for mode in ("full", "scaled")}
        table[name].update({k: rows[0][k] for k in ("full_pixels", "scaled_pixels")})
    base = table.get("pillow")
    print(f"{'decoder':12s} {'full img/s':>10s} {'scaled img/s':>12s}  x Pillow (full, scaled)   Mpixels (full, scaled)",
          file=sys.stderr)
    for name, row in table.items():
        if base:
            row["ratio_full"] = round(row["full"] / base["full"], 3)
            row["ratio_scaled"] = round(row["scaled"] / base["scaled"], 3)
        print(f"{name:12s} {row['full']:10.1f} {row['scaled']:12.1f}  {row.get('ratio_full', 0):6.2f} "
              f"{row.get('ratio_scaled', 0):6.2f}            {row['full_pixels'] / 1e6:7.1f} {row['scaled_pixels'] / 1e6:7.1f}",
              file=sys.stderr)
    sys.path.insert(0, str(ROOT / "src"))
    from triptych.hardware import describe

    print(json.dumps({"benchmark": "vision_decoders", "rounds": args.rounds, "decoders": table,
                      "python": info, "versions": versions_of, "machine": describe()}))


if __name__ == "__main__":
    main()
