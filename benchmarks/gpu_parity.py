"""MASt3R parity on a GPU: the tiny golden model's outputs on CUDA against the official ones.

The CPU tests (tests/geometry/mast3r/test_model.py) prove parity in float32 on the CPU; this
script checks the same on whatever device is given (TF32 off, so float32 means float32).

    PYTHONPATH=. python benchmarks/gpu_parity.py --device cuda [--golden ../shared/golden/mast3r]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.geometry.mast3r.conftest import tiny_net

NAMES = {"pred1": ("pts3d", "conf", "desc", "desc_conf"),
         "pred2": ("pts3d_in_other_view", "conf", "desc", "desc_conf")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--device", default="cuda")
    ap.add_argument("--golden", type=Path, default=Path(__file__).resolve().parents[2] / "shared"
                    / "golden" / "mast3r")
    args = ap.parse_args()
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    io = load_file(str(args.golden / "tiny_io.safetensors"))
    cfg = json.loads((args.golden / "tiny_config.json").read_text())
    net = tiny_net().to(args.device)
    print(f"device {args.device} ({torch.cuda.get_device_name() if 'cuda' in args.device else ''})")
    worst = 0.0
    for case in cfg["cases"]:
        for impl in ("sdpa", "torch"):
            net.set_attention(impl)
            with torch.no_grad():
                p1, p2 = net(io[f"{case}.view1_img"].to(args.device),
                             io[f"{case}.view2_img"].to(args.device))
            for view, pred in (("pred1", p1), ("pred2", p2)):
                for name in NAMES[view]:
                    ref = io[f"{case}.{view}.{name}"]
                    got = pred[name].float().cpu()
                    rel = ((got - ref).abs().max() / ref.abs().max().clamp_min(1e-12)).item()
                    worst = max(worst, rel)
            print(f"{case:10s} {impl:5s} max relative error so far {worst:.2e}")
    print(f"worst relative error over every output: {worst:.2e} ({'OK' if worst < 1e-4 else 'FAIL'})")


if __name__ == "__main__":
    main()
