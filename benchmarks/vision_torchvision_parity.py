"""Logit parity with torchvision: its weights in our models, and ours in its models.

torchvision 0.29.1 needs torch 2.14.1 while triptych's venv has 2.13.0, so
torchvision runs in the peer venv (benchmarks/.peers/tv, created on first
use as in vision_train.py) and the two sides meet through files:

1. peer: for every family, torchvision's model with random weights (and
   random batch-norm statistics, so those are checked too) in eval mode;
   it saves the state dict (.pth) and its logits on a fixed 2x3x224x224 input;
2. here: `triptych vision import --from torchvision` of that file, our
   logits on the same input; then `export --to torchvision` of the
   imported checkpoint, which must give back the very same tensors;
3. peer: torchvision's model loads our export (strict) and gives its logits
   again (the reverse direction).

Prints one line a family and then one JSON line; "ratio" is the target
(1e-5) over the worst max |logit difference| (>= 1: every family within it).
    python benchmarks/vision_torchvision_parity.py [--families resnet18,googlenet]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
FAMILIES = ["alexnet", "vgg11", "vgg16_bn", "googlenet", "resnet18", "resnet34", "resnet50", "resnet101", "resnet152"]
TARGET = 1e-5


def peer_make(names: list[str], work: Path) -> None:
    """In the torchvision venv: random models, their state dicts and logits."""
    import torch
    import torchvision

    torch.set_num_threads(1)
    for i, name in enumerate(names):
        torch.manual_seed(100 + i)
        kw = {"aux_logits": True, "init_weights": True} if name == "googlenet" else {}
        model = getattr(torchvision.models, name)(weights=None, **kw)
        for m in model.modules():  # non-trivial BN statistics: the mapping of running_mean/var is tested too
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
        model.eval()
        x = torch.randn(2, 3, 224, 224)
        with torch.no_grad():
            logits = model(x)
        torch.save(model.state_dict(), work / f"{name}.pth")
        torch.save({"x": x, "logits": logits}, work / f"{name}.io.pt")
    print(json.dumps({"torch": torch.__version__, "torchvision": torchvision.__version__}))


def peer_check(names: list[str], work: Path) -> None:
    """In the torchvision venv: torchvision's model with our exported weights, logits on the same input."""
    import torch
    import torchvision

    torch.set_num_threads(1)
    for name in names:
        kw = {"aux_logits": True, "init_weights": False} if name == "googlenet" else {}
        model = getattr(torchvision.models, name)(weights=None, **kw)
        model.load_state_dict(torch.load(work / f"{name}.export.pth", weights_only=True), strict=True)
        io = torch.load(work / f"{name}.io.pt", weights_only=True)
        with torch.no_grad():
            torch.save(model.eval()(io["x"]), work / f"{name}.back.pt")


def ours(names: list[str], work: Path) -> list[dict]:
    import torch

    sys.path.insert(0, str(ROOT / "src"))
    from triptych.vision.predictor import Classifier
    from triptych.vision.torchvision_weights import export_torchvision, import_torchvision

    torch.set_num_threads(1)
    rows = []
    for name in names:
        import_torchvision(work / f"{name}.pth", name, work / f"{name}.ckpt")
        clf = Classifier(work / f"{name}.ckpt")
        io = torch.load(work / f"{name}.io.pt", weights_only=True)
        with torch.no_grad():
            mine = clf.model(io["x"])
        export_torchvision(work / f"{name}.ckpt", work / f"{name}.export.pth")
        original = torch.load(work / f"{name}.pth", weights_only=True)
        back = torch.load(work / f"{name}.export.pth", weights_only=True)
        same = original.keys() == back.keys() and all(torch.equal(original[k], back[k]) for k in original)
        rows.append({"model": name, "import_max_abs": float((mine - io["logits"]).abs().max()),
                     "logit_scale": float(io["logits"].abs().max()), "export_identical": same,
                     "params": sum(p.numel() for p in clf.model.parameters()), "_mine": mine})
    return rows


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--peer", choices=["make", "check"], help=argparse.SUPPRESS)
    p.add_argument("--work", help=argparse.SUPPRESS)
    p.add_argument("--families", default=",".join(FAMILIES))
    args = p.parse_args()
    names = [n for n in args.families.split(",") if n]
    if args.peer:
        (peer_make if args.peer == "make" else peer_check)(names, Path(args.work))
        return
    import torch

    sys.path.insert(0, str(ROOT / "benchmarks"))
    from vision_train import ensure_peer

    python = ensure_peer()
    if python is None:
        print(json.dumps({"skipped": "no torchvision peer venv (benchmarks/.peers/tv)"}))
        return
    with tempfile.TemporaryDirectory(prefix="tv-parity-") as tmp:
        work = Path(tmp)
        run = lambda mode: subprocess.run([str(python), __file__, "--peer", mode, "--work", str(work),  # noqa: E731
                                           "--families", ",".join(names)], check=True, capture_output=True, text=True)
        versions = json.loads(run("make").stdout.strip().splitlines()[-1])
        rows = ours(names, work)
        run("check")
        for r in rows:
            r["export_max_abs"] = float((torch.load(work / f"{r['model']}.back.pt") - r.pop("_mine")).abs().max())
            print(f"{r['model']:<10} {r['params']:>12,} params  |logit| <= {r['logit_scale']:8.3f}  "
                  f"import max|diff| {r['import_max_abs']:.2e}  export max|diff| {r['export_max_abs']:.2e}  "
                  f"export == original: {r['export_identical']}")
    worst = max(max(r["import_max_abs"], r["export_max_abs"]) for r in rows)
    from triptych.hardware import describe

    print(json.dumps({"machine": describe(), "benchmark": "vision_torchvision_parity", "ratio": TARGET / max(worst, 1e-12),
                      "worst_max_abs": worst, "target": TARGET, "ours_torch": torch.__version__, "peer": versions,
                      "all_exports_identical": all(r["export_identical"] for r in rows), "families": rows}))


if __name__ == "__main__":
    main()
