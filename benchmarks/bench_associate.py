"""What the association stage costs: `lift3d segment` with ``--associate off`` against
``--associate 3d`` (or another method), in one process, alternating, on one scene.

Prints per run the wall and CPU seconds, the peak resident memory while it ran (sampled
every 20 ms; the process is shared, so the later run's peak includes what the earlier left
allocated), the association's own seconds (report.json's ``associate`` timing: streaming
statistics, solving, rewriting labels and overlays) and the ratio on/off of the medians.
The issue's budget: association adds under 20 % to a run's time.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_associate.py /tmp/scene0 --repeat 2

A missing scene folder is generated first (`lift3d make-scene`, seed 0, 30 frames 320x240).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import threading
import time
from pathlib import Path


def rss_mb() -> float:
    with open(f"/proc/{os.getpid()}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def timed_run(scene: Path, out: Path, method: str, segmenter: str) -> dict:
    """One fresh run; its wall / CPU seconds, peak RSS (MB) and report."""
    from lift3d.associate import AssociateConfig
    from lift3d.pipeline import SegmentConfig, run_segment

    shutil.rmtree(out, ignore_errors=True)
    cfg = SegmentConfig(segmenter=segmenter, associate=AssociateConfig(method=method))
    peak = [rss_mb()]
    done = threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_mb())
            time.sleep(0.02)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    w0, c0 = time.perf_counter(), time.process_time()
    doc = run_segment(scene, out, cfg, progress=False, fresh=True)
    wall, cpu = time.perf_counter() - w0, time.process_time() - c0
    done.set()
    th.join()
    return {"wall": wall, "cpu": cpu, "peak_mb": peak[0], "report": doc}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("scene", type=Path)
    ap.add_argument("--method", default="3d", help="the association to compare with off")
    ap.add_argument("--segmenter", default="classical")
    ap.add_argument("--repeat", type=int, default=2, help="alternating off/on pairs")
    args = ap.parse_args()
    if not args.scene.is_dir():
        from lift3d.synth import make_scene

        make_scene(args.scene, seed=0)
    print(f"load: {os.getloadavg()}")
    work = Path(tempfile.mkdtemp(prefix="bench_associate_"))
    runs: dict[str, list[dict]] = {"off": [], args.method: []}
    try:
        for r in range(args.repeat):
            for method in runs:
                res = timed_run(args.scene, work / method, method, args.segmenter)
                runs[method].append(res)
                t = res["report"]["timings_s"]
                q = res["report"].get("quality", {}).get("sequence", {})
                print(f"{method:>10} #{r}: wall {res['wall']:.2f} s, cpu {res['cpu']:.2f} s, "
                      f"peak RSS {res['peak_mb']:.0f} MB, associate {t.get('associate', 0):.2f} s, "
                      f"IDs {res['report']['n_ids']}, sequence IoU {q.get('sequence_iou')}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    off, on = runs["off"], runs[args.method]
    for key in ("wall", "cpu"):
        a = statistics.median(x[key] for x in off)
        b = statistics.median(x[key] for x in on)
        print(f"median {key}: off {a:.2f} s, {args.method} {b:.2f} s, ratio {b / a:.3f}")
    print(f"peak RSS: off {max(x['peak_mb'] for x in off):.0f} MB, "
          f"{args.method} {max(x['peak_mb'] for x in on):.0f} MB")


if __name__ == "__main__":
    main()
