"""Time the scene readers on the real data in ../shared (frames per second of load_scene).

Run from the repository root: ``PYTHONPATH=. python benchmarks/bench_io.py``.
"""

from __future__ import annotations

import time
from pathlib import Path

from lift3d.io import load_scene

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
CASES = [
    ("7-Scenes redkitchen (640x480 RGB-D)", SHARED / "7scenes_redkitchen_rgbd"),
    ("DAVIS blackswan (854x480 + masks)", SHARED / "davis2016_480p/JPEGImages/480p/blackswan"),
    ("Mip-NeRF 360 kitchen (779x520 images)",
     SHARED / "multiview_unposed/mipnerf360_kitchen_vggt/images"),
]


def main() -> None:
    for label, path in CASES:
        if not path.exists():
            print(f"{label}: skipped, {path} absent")
            continue
        t0 = time.perf_counter()
        scene = load_scene(path)
        dt = time.perf_counter() - t0
        mb = sum(f.image.nbytes + (0 if f.depth is None else f.depth.nbytes)
                 for f in scene.frames) / 2**20
        print(f"{label}: {len(scene)} frames ({scene.layout}) in {dt:.2f} s = "
              f"{len(scene) / dt:.0f} frames/s, {mb:.0f} MiB in memory")


if __name__ == "__main__":
    main()
