"""Example 2: score a model's per-pixel outputs for multi-view consistency, `lift3d consistency`.

Run it unchanged from anywhere, with lift3d installed (``pip install -e .``)::

    python examples/score_outputs.py                  # writes ./lift3d_example2/

H(I,M) asks: where two views see the same 3D point (within eps), do the model's outputs
agree? Any per-pixel output can be scored: ID maps (masks) or feature maps. This script
scores four models on one generated posed RGB-D scene, all with the same geometry and radius:

1. the independent baseline: each frame segmented on its own (its IDs mean nothing across
   frames: ``lift3d segment --baseline independent``);
2. the tracked IDs of lift3d (``lift3d segment``), the method;
3. per-pixel colour histograms (64 bins over a 9x9 window): a feature map, .npy per frame;
4. a tiny random CNN's features at half resolution, float16 (`lift3d consistency` resizes
   them to the frame, bilinearly, and says so in ``--help``).

Each is one command, ``lift3d consistency RUN -m OUTPUTS_DIR``: RUN (a segment output
folder) gives the scene, its geometry and the radius; OUTPUTS_DIR holds one file per frame
named by the frame's stem. It prints H, the per-mask approximation beside it, and a
reminder that H of a constant map is 1 (H is agreement, not quality), and writes
``consistency.json`` and ``heatmaps/<frame>.png`` (per-pixel h: red where the views disagree).
The same from Python: ``lift3d.metrics.measure_outputs(RUN, OUTPUTS_DIR, OUT)``.

``--frames``, ``--size`` and ``--out`` make it smaller or put it elsewhere.
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np


def lift3d(*args: str) -> None:
    """Run one `lift3d` command, echoing it as a user would type it."""
    print("$ lift3d " + " ".join(shlex.quote(a) for a in args), flush=True)
    subprocess.run([sys.executable, "-m", "lift3d", *args], check=True)


def frames(run: Path) -> list[tuple[str, np.ndarray]]:
    """(stem, RGB image) of every frame of a segment run, from its cameras.json."""
    cams = json.loads((run / "cameras.json").read_text())["frames"]
    return [(c["name"], cv2.imread(c["image"])[..., ::-1]) for c in cams]


def colour_histograms(image: np.ndarray, levels: int = 4, window: int = 9) -> np.ndarray:
    """(H, W, levels^3) float32: the share of each RGB bin in the window around each pixel."""
    q = (image.astype(np.int64) * levels // 256)
    bins = (q[..., 0] * levels + q[..., 1]) * levels + q[..., 2]
    onehot = np.eye(levels**3, dtype=np.float32)[bins]
    return np.stack([cv2.blur(onehot[..., k], (window, window)) for k in range(levels**3)], -1)


def tiny_cnn(seed: int = 0):
    """A 3-layer CNN with random weights (fixed seed): 32 features at half resolution."""
    import torch

    torch.manual_seed(seed)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(32, 32, 3, padding=1), torch.nn.ReLU(),
    ).eval()


def cnn_features(net, image: np.ndarray) -> np.ndarray:
    import torch

    x = torch.from_numpy(image.astype(np.float32) / 255.0).permute(2, 0, 1)[None]
    with torch.no_grad():
        f = net(x)[0]
    return f.permute(1, 2, 0).numpy().astype(np.float16)  # (H/2, W/2, 32): channels last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("lift3d_example2"), help="working folder")
    ap.add_argument("--frames", type=int, default=20, help="frames of the generated scene")
    ap.add_argument("--size", type=int, nargs=2, default=(320, 240), metavar=("W", "H"))
    args = ap.parse_args()
    out = args.out
    scene, tracked, independent = out / "scene", out / "tracked", out / "independent"
    if not (scene / "intrinsic").is_dir():
        lift3d("make-scene", str(scene), "--frames", str(args.frames),
               "--width", str(args.size[0]), "--height", str(args.size[1]))
    lift3d("segment", str(scene), "-o", str(tracked), "--segmenter", "classical", "--quiet")
    lift3d("segment", str(scene), "-o", str(independent), "--segmenter", "classical",
           "--baseline", "independent", "--quiet")

    # two feature maps, one .npy per frame named by the frame's stem
    net = tiny_cnn()
    (out / "histograms").mkdir(parents=True, exist_ok=True)
    (out / "cnn").mkdir(exist_ok=True)
    for name, image in frames(tracked):
        np.save(out / "histograms" / f"{name}.npy", colour_histograms(image))
        np.save(out / "cnn" / f"{name}.npy", cnn_features(net, image))

    models = {  # name: (outputs folder, where its scores go)
        "independent baseline (IDs)": (independent / "labels", "independent"),
        "lift3d tracked (IDs)": (tracked / "labels", "tracked"),
        "colour histograms (64-dim)": (out / "histograms", "histograms"),
        "random CNN (32-dim, half res.)": (out / "cnn", "cnn"),
    }
    rows = []
    for model, (outputs, slug) in models.items():
        dest = out / "scores" / slug
        lift3d("consistency", str(tracked), "-m", str(outputs), "-o", str(dest))
        rows.append((model, json.loads((dest / "consistency.json").read_text()), dest))

    print("\n| model | H(I,M) | per-mask | heat maps |\n|---|---|---|---|")
    for model, doc, dest in rows:
        pm = "-" if doc["H_per_mask"] is None else f"{doc['H_per_mask']:.3f}"
        print(f"| {model} | {doc['H']:.3f} | {pm} | {dest / 'heatmaps'} |")
    print("\nH is agreement across views, not quality: a constant map scores 1. Read it beside a "
          "quality figure (report.json of each run has the ground-truth IoU).")


if __name__ == "__main__":
    main()
