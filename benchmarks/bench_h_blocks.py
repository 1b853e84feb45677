"""Peak memory of the exact H(I,M) over a long sequence, against the block size.

Measures H of a `lift3d segment` output folder (its ``labels/``) on its scene's RGB-D
pointmaps, once per ``--block-points`` value, each in a fresh child process whose peak RSS
(``ru_maxrss``) and CPU seconds are read when it exits. Every value gives the same H to the
last bit (printed in full): the blocks bound the memory, not the result.

    .venv/bin/python benchmarks/bench_h_blocks.py SCENE OUT --block-points 1000000 4000000 0

``0`` means one block holding every point (what H cost before blocks: memory grows with the
number of frames).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time


def child(scene: str, out: str, block_points: int) -> None:
    from pathlib import Path

    from lift3d.geometry.rgbd import RGBDGeometry
    from lift3d.io import load_scene
    from lift3d.io.outputs import read_label_png
    from lift3d.metrics.config import MetricConfig
    from lift3d.metrics.quality import exact_h
    from lift3d.types import Lazy

    sc = load_scene(scene, lazy=True)
    geometry = RGBDGeometry()(sc)
    names = sc.names
    labels = Lazy(len(names), lambda t: read_label_png(Path(out) / "labels" / f"{names[t]}.png"))
    eps, _ = MetricConfig().radius(geometry)

    def load(t):
        pm = geometry[t]
        return pm.points, pm.valid, labels[t]

    t0 = time.perf_counter()
    res = exact_h(load, len(names), eps, block_points or 2**62)
    print(json.dumps({"H": repr(res.H), "eps": eps, "frames": len(names),
                      "pixels": res.n_with_neighbours, "blocks": res.stats.get("blocks"),
                      "seconds": time.perf_counter() - t0}))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scene")
    ap.add_argument("out")
    ap.add_argument("--block-points", type=int, nargs="+", default=[4_000_000, 0])
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.child is not None:
        return child(a.scene, a.out, a.child)
    rows = []
    for bp in a.block_points:
        proc = subprocess.Popen([sys.executable, __file__, a.scene, a.out, "--child", str(bp)],
                                stdout=subprocess.PIPE, text=True)
        text = proc.stdout.read()
        _, status, ru = os.wait4(proc.pid, 0)
        if status:
            sys.exit(f"bench_h_blocks: the child for {bp} failed")
        r = json.loads(text.strip().splitlines()[-1])
        rows.append((bp, r, ru.ru_maxrss / 1024, ru.ru_utime + ru.ru_stime))
        print(f"  block_points {bp}: {r}", file=sys.stderr, flush=True)
    r0 = rows[0][1]
    print(f"\nexact H over {r0['frames']} frames ({r0['pixels']} pixels with a neighbour, "
          f"eps {r0['eps']:.4g}), load {os.getloadavg()[0]:.1f}\n")
    print("| block points | blocks | H | peak RSS (MB) | CPU s | wall s of H |")
    print("|---|---|---|---|---|---|")
    for bp, r, peak, cpu in rows:
        print(f"| {bp or 'all (one block)'} | {r['blocks']} | {r['H']} | {peak:.0f} | {cpu:.0f} | "
              f"{r['seconds']:.0f} |")


if __name__ == "__main__":
    main()
