"""`lift3d batch` (Ray, one task per scene) against the same scenes run one after another.

8 small generated scenes. In one process: one warm-up run (imports, numba's kernels loaded),
then the 8 scenes through ``run_segment`` one by one, then the 8 through :func:`run_batch` on a
local Ray using every core. Prints wall seconds (with and without starting Ray), CPU seconds,
peak memory, the ratio, and checks that both give the same outputs (label bytes, cloud bytes,
H). The load average is printed too: on a shared machine other work slows both runs.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_batch.py [--scenes 8 --frames 24 --size 192x144]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import tempfile
import time
from pathlib import Path

from lift3d.batch import BatchConfig, peak_rss_mb, reset_peak_rss, run_batch
from lift3d.pipeline import SegmentConfig, run_segment
from lift3d.synth import make_scene


def children_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_CHILDREN)
    return r.ru_utime + r.ru_stime


def same_output(a: Path, b: Path) -> bool:
    labels = sorted(p.name for p in (a / "labels").iterdir())
    same = all((a / "labels" / n).read_bytes() == (b / "labels" / n).read_bytes() for n in labels)
    same &= (a / "cloud.ply").read_bytes() == (b / "cloud.ply").read_bytes()
    ha, hb = (json.loads((d / "report.json").read_text())["consistency"]["H"] for d in (a, b))
    return same and ha == hb


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--scenes", type=int, default=8)
    ap.add_argument("--frames", type=int, default=24)
    ap.add_argument("--size", default="192x144", help="WIDTHxHEIGHT of the generated scenes")
    args = ap.parse_args()
    w, h = map(int, args.size.split("x"))
    cfg = SegmentConfig(segmenter="classical")
    tmp = Path(tempfile.mkdtemp(prefix="bench_batch_"))
    paths = [make_scene(tmp / "scenes" / f"s{i}", seed=i, n_frames=args.frames, width=w, height=h)
             for i in range(args.scenes)]
    warm = make_scene(tmp / "warm", seed=100, n_frames=args.frames, width=w, height=h)
    t0 = time.perf_counter()
    run_segment(warm, tmp / "warm_out", cfg, progress=False)  # what each Ray worker pays once too
    warm_s = time.perf_counter() - t0
    load0 = os.getloadavg()

    reset_peak_rss()
    t0, c0 = time.perf_counter(), time.process_time()
    for p in paths:
        run_segment(p, tmp / "seq" / p.name, cfg, progress=False)
    seq_s, seq_cpu, seq_peak = time.perf_counter() - t0, time.process_time() - c0, peak_rss_mb()

    import ray

    reset_peak_rss()
    t0, c0, k0 = time.perf_counter(), time.process_time(), children_cpu()
    ray.init(address="local", include_dashboard=False, log_to_driver=False, configure_logging=False)
    init_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    summary = run_batch([str(p) for p in paths], tmp / "batch", cfg, BatchConfig(progress=False))
    run_s = time.perf_counter() - t1
    cpus = ray.cluster_resources().get("CPU")
    ray.shutdown()
    batch_s = time.perf_counter() - t0
    recs = summary["scenes"].values()
    task_cpu = sum(r["cpu_seconds"] for r in recs)
    driver_cpu = time.process_time() - c0
    ray_cpu = children_cpu() - k0  # Ray's own processes (gcs, raylet, workers), reaped at shutdown
    task_peak = max(r["peak_rss_mb"] for r in recs)
    load1 = os.getloadavg()

    ok = summary["counts"]["done"] == len(paths)
    ok &= all(same_output(tmp / "seq" / p.name, tmp / "batch" / p.name) for p in paths)
    print(f"{args.scenes} scenes x {args.frames} frames at {w}x{h}, classical segmenter, tracked; "
          f"Ray on {cpus:g} CPUs, 1 CPU per scene")
    print(f"load average before {load0[0]:.1f}, after {load1[0]:.1f} (machine shared with other work)")
    print(f"{'run':<34}{'wall s':>8}{'CPU s':>8}{'peak MiB':>10}")
    print(f"{'sequential run_segment x' + str(args.scenes):<34}{seq_s:>8.1f}{seq_cpu:>8.1f}{seq_peak:>10.0f}")
    print(f"{'  + one first run (imports, warm-up)':<34}{seq_s + warm_s:>8.1f}")
    print(f"{'lift3d batch (incl. Ray start)':<34}{batch_s:>8.1f}{task_cpu + driver_cpu:>8.1f}"
          f"{task_peak:>10.0f}  (peak: largest task; CPU: tasks + driver)")
    print(f"{'  of which Ray start':<34}{init_s:>8.1f}")
    print(f"{'  Ray processes CPU (all)':<34}{'':>8}{ray_cpu:>8.1f}")
    print(f"ratio sequential / batch: {seq_s / batch_s:.2f}x incl. Ray start, "
          f"{seq_s / run_s:.2f}x excl.; same outputs: {ok}")
    print(f"driver peak {peak_rss_mb():.0f} MiB; scenes in {tmp}")


if __name__ == "__main__":
    main()
