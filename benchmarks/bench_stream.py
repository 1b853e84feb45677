"""Peak memory and seconds per frame of `lift3d segment` against the number of frames.

Generates synthetic posed RGB-D scenes (`lift3d make-scene`, ScanNet layout) of N frames,
runs `lift3d segment` on each in a child process and samples the child's resident memory
every 50 ms, so the figures are the whole process's (Python, numpy, torch, Open3D). Prints,
per N: seconds per frame of tracking (report.json's timings), total seconds, peak RSS while
tracking and fusing (before the metric starts), and the peak over the whole run.

    .venv/bin/python benchmarks/bench_stream.py --frames 100 400 1000 --width 640 --height 480

Scenes are cached under --work (generation takes ~0.25 s per 640x480 frame).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def run(cmd: list[str], out: Path) -> tuple[float, list[tuple[float, float]]]:
    """Run ``cmd``; return (seconds, [(t, rss MB)]) sampled every 50 ms."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, float]] = []

    def sample() -> None:
        while proc.poll() is None:
            samples.append((time.perf_counter() - t0, rss_mb(proc.pid)))
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, err = proc.communicate()
    th.join()
    if proc.returncode:
        sys.exit(f"bench_stream: {' '.join(cmd)} failed:\n{err[-2000:]}")
    return time.perf_counter() - t0, samples


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, nargs="+", default=[100, 400, 1000])
    ap.add_argument("--width", type=int, default=640)
    ap.add_argument("--height", type=int, default=480)
    ap.add_argument("--work", type=Path, default=Path("/tmp/lift3d_bench_stream"))
    ap.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                    help="more options for `lift3d segment`")
    a = ap.parse_args()
    exe = [sys.executable, "-m", "lift3d"]
    env_note = f"OMP/numba threads: {os.environ.get('NUMBA_NUM_THREADS', 'default')}"
    rows = []
    for n in a.frames:
        scene = a.work / f"scene_{n}_{a.width}x{a.height}"
        if not (scene / "done").is_file():
            subprocess.run(exe + ["make-scene", str(scene), "--seed", "0", "--frames", str(n),
                                  "--width", str(a.width), "--height", str(a.height)],
                           check=True, stdout=subprocess.DEVNULL)
            (scene / "done").write_text("")
        out = a.work / f"out_{n}"
        secs, samples = run(exe + ["segment", str(scene), "-o", str(out), "--fresh", "-q"]
                            + a.extra, out)
        rep = json.loads((out / "report.json").read_text())
        tim = rep["timings_s"]
        before_metric = sum(tim.get(k, 0.0) for k in ("load", "geometry", "track", "fuse",
                                                       "overlays"))
        # the stages run in that order until the metric (fuse/overlays interleave with track)
        peak_track = max((r for t, r in samples if t <= before_metric + 1.0), default=0.0)
        peak = max((r for _, r in samples), default=0.0)
        rows.append((n, tim["track"] / n, (tim["track"] + tim.get("fuse", 0)) / n,
                     tim.get("metric", 0.0), secs, peak_track, peak))
        print(f"  {n} frames done in {secs:.0f} s", file=sys.stderr, flush=True)
    print(f"\n`lift3d segment` on make-scene scenes at {a.width}x{a.height} ({env_note})\n")
    print("| frames | track s/frame | track+fuse s/frame | metric s | total s | peak RSS before "
          "metric (MB) | peak RSS (MB) |")
    print("|---|---|---|---|---|---|---|")
    for n, spf, sfp, ms, secs, pt, p in rows:
        print(f"| {n} | {spf:.3f} | {sfp:.3f} | {ms:.1f} | {secs:.0f} | {pt:.0f} | {p:.0f} |")
    base = rows[0]
    for n, _spf, sfp, _ms, _secs, pt, p in rows[1:]:
        print(f"\n{n} vs {base[0]} frames: peak RSS x{p / base[6]:.2f} (before metric "
              f"x{pt / base[5]:.2f}), track+fuse s/frame x{sfp / base[2]:.2f}")


if __name__ == "__main__":
    main()
