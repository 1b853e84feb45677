"""Benchmark of the ``rgbd`` geometry backend on real 7-Scenes frames (issue 2).

Figures: per-frame geometry time (validity + confidence + back-projection) at 640 x 480, the
time of one dense matching call between two frames, how many pixels match, the median
world-point disagreement of the matches (metres) and the share of matches with confidence
>= 0.3 (the tracker's default cut).

Times are wall clock and, in brackets, this process's CPU time (the figure to trust on a
shared, loaded machine; run with OMP_NUM_THREADS=1 for one core).

Run from the repository root:  PYTHONPATH=. python benchmarks/bench_rgbd.py [--frames 10]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np

from lift3d.geometry.rgbd import RGBDGeometry
from lift3d.io import load_scene

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "7scenes_redkitchen_rgbd"



def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA)
    ap.add_argument("--frames", type=int, default=10, help="consecutive frames (stride 5)")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()

    scene = load_scene(args.data, layout="7scenes", max_frames=args.frames)
    frames = scene.frames
    t0, c0 = time.perf_counter(), time.process_time()
    geo = RGBDGeometry()(scene)
    t_geo = (time.perf_counter() - t0) / len(frames)
    c_geo = (time.process_time() - c0) / len(frames)
    print(f"geometry: {1000 * t_geo:.1f} ms/frame ({1000 * c_geo:.1f} ms CPU) at "
          f"{frames[0].hw[1]}x{frames[0].hw[0]}, "
          f"valid {np.mean([v.mean() for v in geo.valid]):.3f}")

    times, cpu, counts, dists, strong = [], [], [], [], []
    for i in range(len(frames) - 1):
        for _ in range(args.repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            m = geo.matches(i, i + 1)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        p_i = geo.points[i][m.xy_i[:, 1], m.xy_i[:, 0]]
        p_j = geo.points[i + 1][m.xy_j[:, 1], m.xy_j[:, 0]]
        dists.append(np.median(np.linalg.norm(p_i - p_j, axis=1)))
        counts.append(len(m) / geo.valid[i].sum())
        strong.append((m.conf >= 0.3).mean())
    print(f"matches i->i+1: {1000 * np.median(times):.1f} ms median per call "
          f"({1000 * np.median(cpu):.1f} ms CPU; {len(times)} calls), "
          f"matched share of valid pixels {np.median(counts):.3f}, "
          f"median world distance {1000 * np.median(dists):.1f} mm, "
          f"conf >= 0.3: {np.median(strong):.3f}")


if __name__ == "__main__":
    main()
