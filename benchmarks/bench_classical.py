"""Benchmark of the classical segmenter on real DAVIS frames (issue 2).

Figures per resolution (320x240, 640x480, and DAVIS's native 854x480, which is segmented at
640x360): the time of the per-image pass (``auto_masks`` on a new image), the number of masks,
and the time of one batched ``prompt`` call (20 prompt sets of 5 points) on the cached image.
Times are wall clock and, in brackets, this process's CPU time (the figure to trust on a
shared, loaded machine; run with OMP_NUM_THREADS=1 for one core).

Run from the repository root:  PYTHONPATH=. python benchmarks/bench_classical.py
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import cv2
import numpy as np

from lift3d.segment.classical import ClassicalSegmenter

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "davis2016_480p"
SEQS = ["blackswan", "breakdance", "car-roundabout", "dog", "motocross-jump"]


def timed(fn):
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn()
    return out, time.perf_counter() - t0, time.process_time() - c0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DATA)
    args = ap.parse_args()
    images = [
        cv2.cvtColor(cv2.imread(str(args.data / "JPEGImages" / "480p" / s / "00000.jpg")),
                     cv2.COLOR_BGR2RGB)
        for s in SEQS
    ]
    rng = np.random.default_rng(0)
    for size in [(320, 240), (640, 480), None]:
        walls, cpus, counts, p_walls, p_cpus = [], [], [], [], []
        for img in images:
            img = img if size is None else cv2.resize(img, size, interpolation=cv2.INTER_AREA)
            seg = ClassicalSegmenter()
            masks, wall, cpu = timed(lambda img=img, seg=seg: seg.auto_masks(img))
            walls.append(wall)
            cpus.append(cpu)
            counts.append(len(masks))
            h, w = img.shape[:2]
            pts = rng.uniform(0, [w, h], (20, 5, 2)).astype(np.float32)
            labels = np.ones((20, 5), np.int32)
            _, wall, cpu = timed(lambda img=img, seg=seg, p=pts, q=labels: seg.prompt(img, p, q))
            p_walls.append(wall)
            p_cpus.append(cpu)
            assert seg.n_image_passes == 1
        h, w = img.shape[:2]
        print(f"{w}x{h}: image pass {1000 * np.median(walls):.0f} ms "
              f"({1000 * np.median(cpus):.0f} ms CPU), masks {min(counts)}-{max(counts)}; "
              f"prompt 20x5 points {1000 * np.median(p_walls):.1f} ms "
              f"({1000 * np.median(p_cpus):.1f} ms CPU)")


if __name__ == "__main__":
    main()
