"""Time to get a several-million-point labelled cloud ready to look at.

    PYTHONPATH=. python benchmarks/view_prepare.py [--points 5000000] [--labels 300]

Writes a synthetic output folder (random points in labelled blobs) to a temp dir, then times:
reading cloud.ply, colouring by label / confidence, the legend, everything the interactive
window needs (``viewers.open3d_viewer.prepare``: read + colour + Open3D cloud + frustums), and
headless renders with each backend.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np

from lift3d.io.outputs import read_ply, write_cameras, write_ply
from lift3d.types import LabelledCloud


def synthetic(n: int, n_labels: int, seed: int = 0) -> LabelledCloud:
    rng = np.random.default_rng(seed)
    centres = rng.uniform(-5, 5, (n_labels + 1, 3))
    lab = rng.integers(0, n_labels + 1, n)
    pts = centres[lab] + rng.normal(0, 0.3, (n, 3))
    return LabelledCloud(pts.astype(np.float32), rng.integers(0, 256, (n, 3), dtype=np.uint8),
                         np.zeros((n, 3), np.float32), lab.astype(np.int32),
                         rng.uniform(0, 1, n).astype(np.float32), np.ones(n, np.int32))


def timed(label: str, fn):
    t = time.perf_counter()
    out = fn()
    print(f"{label:<44s} {time.perf_counter() - t:7.2f} s", flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--points", type=int, default=5_000_000)
    ap.add_argument("--labels", type=int, default=300)
    ap.add_argument("--skip-open3d-render", action="store_true")
    args = ap.parse_args()

    from viewers.open3d_viewer import prepare
    from viewers.render import RenderConfig, render_scene
    from viewers.scene import format_legend, legend, load_view_scene, point_colors

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "out"
        cloud = synthetic(args.points, args.labels)
        write_ply(out / "cloud.ply", cloud)
        K = np.array([[500.0, 0, 479.5], [0, 500.0, 359.5], [0, 0, 1]])
        pose = np.eye(4)
        pose[2, 3] = -20
        write_cameras(out / "cameras.json", ["f0"], [None], [(720, 960)], [K], [pose])
        print(f"cloud: {args.points:,} points, {args.labels} labels")
        c = timed("read cloud.ply", lambda: read_ply(out / "cloud.ply"))
        timed("colour by label", lambda: point_colors(c, "label"))
        timed("colour by confidence", lambda: point_colors(c, "confidence"))
        timed("legend (np.unique counts) + format", lambda: format_legend(legend(c.labels)))
        timed("prepare() for the window (read+colour+o3d)", lambda: prepare(out))
        scene = load_view_scene(out)
        timed("render numpy 960x720 overview", lambda: render_scene(
            scene, None, RenderConfig(backend="numpy")))
        if not args.skip_open3d_render:
            timed("render open3d 960x720 overview", lambda: render_scene(
                scene, None, RenderConfig(backend="open3d")))


if __name__ == "__main__":
    main()
