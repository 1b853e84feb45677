"""Peak RSS and CPU seconds of the quality figures (measure_quality) against the number of frames.

``python benchmarks/bench_quality_memory.py [--frames 100 1000 5000] [--width 160] [--height 120]
[--ids 1500] [--objects 10]``. Synthetic ID maps (blocky regions, IDs drifting through ``--ids``
over the sequence, as a tracker's do) against moving ground-truth boxes, made one frame at a time
(lazy sequences, nothing held); each frame count runs in its own process so that its peak RSS is
its own.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import numpy as np


def _maps(n: int, h: int, w: int, n_ids: int, n_gt: int):
    from lift3d.types import Lazy

    def pred(f: int) -> np.ndarray:
        rng = np.random.default_rng(f)
        base = (f * n_ids) // n
        cells = rng.integers(base, base + 60, size=(6, 8)) % n_ids + 1
        m = np.kron(cells, np.ones((-(-h // 6), -(-w // 8)), np.int64))[:h, :w]
        m[rng.random((h, w)) < 0.02] = 0
        return m.astype(np.int32)

    def gt(f: int) -> np.ndarray:
        yy, xx = np.mgrid[:h, :w]
        g = np.zeros((h, w), np.int32)
        for k in range(n_gt):
            cx, cy = (13 * k + f) % w, (29 * k + 7) % h
            g[(np.abs(xx - cx) < w // 13) & (np.abs(yy - cy) < h // 12)] = k + 1
        return g

    return Lazy(n, pred, keep=0), Lazy(n, gt, keep=0)


def _one(args) -> None:
    from lift3d.metrics.quality import measure_quality

    pred, gt = _maps(args.one, args.height, args.width, args.ids, args.objects)
    t = time.process_time()
    measure_quality(pred, gt)
    cpu = time.process_time() - t
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"frames": args.one, "peak_rss_mb": round(peak, 1), "cpu_s": round(cpu, 2)}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[100, 1000, 5000])
    parser.add_argument("--width", type=int, default=160)
    parser.add_argument("--height", type=int, default=120)
    parser.add_argument("--ids", type=int, default=1500)
    parser.add_argument("--objects", type=int, default=10)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.one:
        return _one(args)
    print(f"{'frames':>8} {'peak RSS MB':>12} {'CPU s':>8}")
    for n in args.frames:
        cmd = [sys.executable, __file__, "--one", str(n), "--width", str(args.width), "--height",
               str(args.height), "--ids", str(args.ids), "--objects", str(args.objects)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True).stdout)
        print(f"{n:>8} {r['peak_rss_mb']:>12.1f} {r['cpu_s']:>8.2f}")


if __name__ == "__main__":
    main()
