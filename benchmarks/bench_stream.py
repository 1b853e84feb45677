"""Peak memory and seconds per frame of `lift3d segment` against the number of frames.

Generates synthetic posed RGB-D scenes (`lift3d make-scene`, ScanNet layout) of N frames,
runs `lift3d segment` on each in a child process and samples the child's resident memory and
CPU time every 50 ms, so the figures are the whole process's (Python, numpy, Open3D). The
phases are read off the output folder as it fills: tracking (with fusion and overlays, frame
by frame) from the first ``labels/`` file to ``cloud.ply``; then the metric and the rest.
Prints, per N: wall and CPU seconds per frame of tracking (CPU seconds are what to compare on
a loaded machine), the seconds after tracking (mostly H), peak RSS while tracking, peak RSS
of the whole run, and how fast the resident memory grows while tracking (a slope fitted to
the samples after the first 20% of the frames, in MB per 100 frames: ~0 when nothing grows
with the number of frames).

    .venv/bin/python benchmarks/bench_stream.py --frames 100 400 1000 --width 640 --height 480
    .venv/bin/python benchmarks/bench_stream.py --frames 100 400 1000 --width 160 --height 120 \\
        --extra --h-frames 100     # H on 100 evenly spaced frames at every length

Scenes are cached under --work (generation is not timed here: ~0.25 s per 640x480 frame).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

_TICK = os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float:
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process (its threads included)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / _TICK
    except (OSError, IndexError, ValueError):
        return float("nan")


def run(cmd: list[str], out: Path) -> tuple[float, np.ndarray, float, float]:
    """Run ``cmd`` writing ``out``; return (seconds, samples (K, 3) of [t, RSS MB, CPU s],
    t when tracking started (first labels/ file), t when it ended (cloud.ply written))."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples: list[tuple[float, float, float]] = []
    marks = {"start": float("nan"), "end": float("nan")}

    def sample() -> None:
        labels, cloud = out / "labels", out / "cloud.ply"
        while proc.poll() is None:
            t = time.perf_counter() - t0
            samples.append((t, rss_mb(proc.pid), cpu_s(proc.pid)))
            if np.isnan(marks["start"]) and labels.is_dir() and any(os.scandir(labels)):
                marks["start"] = t
            if np.isnan(marks["end"]) and cloud.is_file():
                marks["end"] = t
            time.sleep(0.05)

    th = threading.Thread(target=sample, daemon=True)
    th.start()
    _, err = proc.communicate()
    th.join()
    if proc.returncode:
        sys.exit(f"bench_stream: {' '.join(cmd)} failed:\n{err[-2000:]}")
    return time.perf_counter() - t0, np.array(samples), marks["start"], marks["end"]


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
    rows = []
    for n in a.frames:
        scene = a.work / f"scene_{n}_{a.width}x{a.height}"
        if not (scene / "done").is_file():
            subprocess.run(exe + ["make-scene", str(scene), "--seed", "0", "--frames", str(n),
                                  "--width", str(a.width), "--height", str(a.height)],
                           check=True, stdout=subprocess.DEVNULL)
            (scene / "done").write_text("")
        out = a.work / f"out_{n}_{a.width}x{a.height}"
        shutil.rmtree(out, ignore_errors=True)
        secs, s, t_a, t_b = run(exe + ["segment", str(scene), "-o", str(out), "-q"] + a.extra,
                                out)
        t, rss, cpu = s[:, 0], s[:, 1], s[:, 2]
        tracking = (t >= t_a) & (t <= t_b)
        cpu_a, cpu_b = np.interp([t_a, t_b], t, cpu)
        late = tracking & (t >= t_a + 0.2 * (t_b - t_a))
        slope = np.polyfit(t[late], rss[late], 1)[0] * (t_b - t_a) / n if late.sum() > 2 else 0.0
        rows.append(dict(n=n, wall=(t_b - t_a) / n, cpu=(cpu_b - cpu_a) / n, after=secs - t_b,
                         total=secs, peak_track=rss[t <= t_b].max(), peak=rss.max(),
                         growth=100 * slope))
        print(f"  {n} frames done in {secs:.0f} s", file=sys.stderr, flush=True)
    print(f"\n`lift3d segment` on make-scene scenes at {a.width}x{a.height} (segment options: "
          f"{' '.join(a.extra) or 'defaults'}; load {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores)\n")
    print("| frames | s/frame wall | s/frame CPU | s after tracking (H...) | total s | peak RSS "
          "while tracking (MB) | peak RSS (MB) | RSS growth while tracking (MB / 100 frames) |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['n']} | {r['wall']:.3f} | {r['cpu']:.3f} | {r['after']:.0f} | "
              f"{r['total']:.0f} | {r['peak_track']:.0f} | {r['peak']:.0f} | {r['growth']:.1f} |")
    b = rows[0]
    for r in rows[1:]:
        print(f"\n{r['n']} vs {b['n']} frames: peak RSS x{r['peak'] / b['peak']:.2f} (while "
              f"tracking x{r['peak_track'] / b['peak_track']:.2f}), CPU s/frame "
              f"x{r['cpu'] / b['cpu']:.2f}, wall s/frame x{r['wall'] / b['wall']:.2f}")


if __name__ == "__main__":
    main()
