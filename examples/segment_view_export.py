"""Example 1: segment a scene, look at it, export it for Gaussian Grouping.

Run it unchanged from anywhere, with lift3d installed (``pip install -e .``)::

    python examples/segment_view_export.py            # writes ./lift3d_example1/

Each step is the `lift3d` command a user types (printed before it runs):

1. ``lift3d make-scene``: a generated posed RGB-D room with ground truth (the ScanNet export
   layout; use your own scan instead: any folder lift3d reads).
2. ``lift3d segment``: IDs consistent across views (labels/, cloud.ply, report.json with
   H(I,M) and, since the scene has ground truth, its quality figures). The segmenter is the
   weight-free classical one, so no download is needed; with a SAM checkpoint pass
   ``--segmenter sam``.
3. ``lift3d view --render``: a headless picture of the labelled cloud (no display needed;
   without ``--render`` it opens an Open3D window).
4. ``lift3d export --to gaussian-grouping``: images/, sparse/0 (COLMAP) and object_mask/,
   what Gaussian Grouping trains from (``gaussian_grouping.json`` says how).

``--frames``, ``--size`` and ``--out`` make it smaller or put it elsewhere (the tests run it
at 6 frames of 128x96).
"""

from __future__ import annotations

import argparse
import json
import shlex
import subprocess
import sys
from pathlib import Path


def lift3d(*args: str) -> None:
    """Run one `lift3d` command, echoing it as a user would type it."""
    print("$ lift3d " + " ".join(shlex.quote(a) for a in args), flush=True)
    subprocess.run([sys.executable, "-m", "lift3d", *args], check=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("lift3d_example1"), help="working folder")
    ap.add_argument("--frames", type=int, default=20, help="frames of the generated scene")
    ap.add_argument("--size", type=int, nargs=2, default=(320, 240), metavar=("W", "H"))
    args = ap.parse_args()
    out = args.out
    scene, run = out / "scene", out / "run"
    if not (scene / "intrinsic").is_dir():
        lift3d("make-scene", str(scene), "--frames", str(args.frames),
               "--width", str(args.size[0]), "--height", str(args.size[1]))
    lift3d("segment", str(scene), "-o", str(run), "--segmenter", "classical", "--quiet")
    lift3d("view", str(run), "--render", str(out / "cloud.png"))
    lift3d("export", str(run), "--to", "gaussian-grouping", "-o", str(out / "gaussian_grouping"))

    report = json.loads((run / "report.json").read_text())
    gg = json.loads((out / "gaussian_grouping" / "gaussian_grouping.json").read_text())
    print(f"\n{report['n_frames']} frames, {report['n_ids']} objects, "
          f"H(I,M) = {report['consistency']['H']:.3f}; "
          f"sequence IoU against ground truth {report['quality']['sequence']['sequence_iou']:.3f}")
    print(f"look at: {out / 'cloud.png'} (the cloud), {run / 'overlays'}/ (IDs on the frames)")
    print(f"train Gaussian Grouping on {out / 'gaussian_grouping'} with num_classes = "
          f"{gg['num_classes']} (see gaussian_grouping.json)")


if __name__ == "__main__":
    main()
