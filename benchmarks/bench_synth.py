"""Time synthetic scene generation: render (in memory) and write (ScanNet layout).

``python benchmarks/bench_synth.py [--frames 30] [--width 320] [--height 240] [--repeat 3]``;
pin to one core with ``taskset -c 0`` to measure the single-core figure.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from lift3d.synth import render_scene, write_scene


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--height", type=int, default=240)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    render_scene(0, n_frames=1, width=16, height=16)  # imports and first-call set-up
    for seed in range(args.repeat):
        t0 = time.perf_counter()
        scene = render_scene(seed, args.frames, args.width, args.height)
        t1 = time.perf_counter()
        with tempfile.TemporaryDirectory() as tmp:
            write_scene(scene, Path(tmp) / "scene")
        t2 = time.perf_counter()
        print(f"seed {seed}: render {t1 - t0:.2f} s ({args.frames} frames, "
              f"{args.width}x{args.height}), write {t2 - t1:.2f} s")


if __name__ == "__main__":
    main()
