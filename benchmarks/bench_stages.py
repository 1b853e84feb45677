"""Time per frame of each stage of `lift3d segment` on fixed sequences (issue 5).

Sequences: the synthetic scene of seed 0 (30 frames, 320x240, posed RGB-D: ``rgbd`` geometry)
and the first 30 frames of DAVIS blackswan (854x480, ``flow`` geometry, when ../shared is
there). Stages, each timed on its own over the whole sequence and divided by the frame count:

* load: reading the scene folder (:func:`lift3d.io.load_scene`);
* geometry: building the geometry and the consecutive-frame matches the tracker uses;
* segmenter: ``auto_masks`` of every frame (the classical, weight-free segmenter);
* tracker: :func:`lift3d.track.track_sequence` (carrying masks, prompts, re-seeding; it calls
  the segmenter again, so it includes segmenter time); baseline: the independent labelling;
* fusion: :func:`lift3d.fuse.fuse` into a labelled cloud (3D geometry only);
* metric H: H(I,M) of the tracked labels (exact; over flow matches for video);
  metric quality: the 2D (and 3D) figures against ground truth (:func:`measure_quality`);
* export: :func:`lift3d.export.export` of the output folder to every format that applies.

Times are wall clock and, in brackets, this process's CPU time (the figure to trust on a
shared, loaded machine).

Run from the repository root:  PYTHONPATH=. python benchmarks/bench_stages.py [--frames 30]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

from lift3d.errors import Lift3DError

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


class Clock:
    """Wall and CPU seconds per stage."""

    def __init__(self) -> None:
        self.wall: dict[str, float] = {}
        self.cpu: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str):
        w, c = time.perf_counter(), time.process_time()
        try:
            yield
        finally:
            self.wall[name] = self.wall.get(name, 0.0) + time.perf_counter() - w
            self.cpu[name] = self.cpu.get(name, 0.0) + time.process_time() - c


def bench(scene_dir: Path, geometry_name: str, n_frames: int, work: Path) -> tuple[Clock, int]:
    """Run every stage once on ``scene_dir``; return the clock and the frame count."""
    from lift3d.export import FORMATS, export
    from lift3d.fuse import FuseConfig, fuse
    from lift3d.geometry import build_geometry
    from lift3d.io import load_scene
    from lift3d.io.outputs import write_cameras, write_label_png, write_ply
    from lift3d.pipeline import SegmentConfig, measure_consistency, measure_quality
    from lift3d.segment import build_segmenter
    from lift3d.track import TrackConfig, independent_labels, track_sequence

    clock = Clock()
    with clock("load"):
        scene = load_scene(scene_dir, max_frames=n_frames)
    images = [f.image for f in scene.frames]
    n = len(scene)
    with clock("geometry"):
        geometry = build_geometry(geometry_name)(scene)
        for t in range(1, n):
            geometry.matches(t - 1, t)
    segmenter = build_segmenter("classical")
    with clock("segmenter auto_masks"):
        for img in images:
            segmenter.auto_masks(img)
    tcfg = TrackConfig()
    with clock("tracker (incl. segmenter)"):
        labels = track_sequence(images, geometry, segmenter, tcfg)
    with clock("baseline (independent)"):
        independent_labels(images, segmenter, tcfg)
    cloud = None
    if geometry.kind == "3d":
        with clock("fusion"):
            cloud = fuse(geometry, images, labels, FuseConfig())
    cfg = SegmentConfig(geometry=geometry_name, segmenter="classical")
    with clock("metric H"):
        measure_consistency(geometry, labels, cfg)
    if scene.gt_labels is not None:
        with clock("metric quality"):
            measure_quality(scene, labels, cloud)
    out = work / scene_dir.name
    for name, lab in zip(scene.names, labels):
        write_label_png(out / "labels" / f"{name}.png", lab)
    if cloud is not None:
        write_ply(out / "cloud.ply", cloud)
    write_cameras(out / "cameras.json", scene.names, [f.path for f in scene.frames],
                  [f.hw for f in scene.frames], geometry.K, geometry.cam_to_world)
    with clock("export"):
        for fmt in FORMATS:
            try:
                export(out, fmt, work / f"{scene_dir.name}_{fmt}")
            except Lift3DError as err:  # e.g. no cloud or no cameras for 2D video
                print(f"  export {fmt} on {scene_dir.name}: n/a ({str(err)[:80]})")
    return clock, n


def table(results: dict[str, tuple[Clock, int]]) -> str:
    """Markdown table: ms per frame, wall (CPU), one column per sequence."""
    stages = list(dict.fromkeys(k for c, _ in results.values() for k in c.wall))
    head = "| stage | " + " | ".join(f"{k} ({n} fr.)" for k, (_, n) in results.items()) + " |"
    lines = [head, "|---|" + "---|" * len(results)]
    for s in stages:
        cells = []
        for clock, n in results.values():
            if s in clock.wall:
                cells.append(f"{1000 * clock.wall[s] / n:.0f} ({1000 * clock.cpu[s] / n:.0f})")
            else:
                cells.append("–")
        lines.append(f"| {s} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def warm_up_kernels() -> None:
    """Compile or load the metric's numba kernels once, so that no stage pays for it."""
    import numpy as np

    from lift3d.metrics.consistency import consistency

    pts = [np.random.default_rng(i).random((4, 5, 3)).astype(np.float32) for i in range(2)]
    consistency(pts, [np.ones((4, 5), bool)] * 2, [np.zeros((4, 5), np.int32)] * 2, 0.5)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--frames", type=int, default=30)
    ap.add_argument("--no-davis", action="store_true", help="Only the synthetic scene.")
    args = ap.parse_args()
    from lift3d.synth import make_scene

    t0 = time.perf_counter()
    warm_up_kernels()
    print(f"numba kernels compiled (first run) or loaded from the cache: "
          f"{time.perf_counter() - t0:.1f} s, not counted below")
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        synth = make_scene(work / "synth_seed0", seed=0, n_frames=args.frames, width=320, height=240)
        results["synthetic seed 0, 320x240, rgbd"] = bench(synth, "rgbd", args.frames, work / "out")
        davis = SHARED / "davis2016_480p" / "JPEGImages" / "480p" / "blackswan"
        if not args.no_davis and davis.is_dir():
            results["DAVIS blackswan, 854x480, flow"] = bench(davis, "flow", args.frames, work / "out")
        elif not args.no_davis:
            print(f"skipping DAVIS: {davis} not found")
    print("ms per frame, wall (CPU):")
    print(table(results))
    print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
