"""Time and accuracy of MASt3R multi-frame alignment on a synthetic ray-cast scene.

Pairwise predictions are made from the ground truth (see tests/geometry/mast3r/test_align.py):
per-pixel noise, a smooth per-pointmap distortion, a random scale per pair, and optionally a
few confident pairs with a wrong relative pose. Prints the pose errors after the best
similarity, as percentages of the scene's bounding-box diagonal.

    PYTHONPATH=. python benchmarks/mast3r_align.py --frames 10 --height 384 --width 512
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from pathlib import Path

import numpy as np
import torch

from lift3d.geometry.mast3r.align import AlignConfig, global_align, pose_errors, umeyama


def _synthetic():
    path = Path(__file__).resolve().parents[1] / "tests/geometry/mast3r/test_align.py"
    spec = importlib.util.spec_from_file_location("_align_synthetic", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _relative_rotation_errors(cam_to_world: np.ndarray, gt: np.ndarray) -> np.ndarray:
    """(N, N) degrees between estimated and true relative rotations (needs no alignment)."""
    rel = np.einsum("iba,jbc->ijac", cam_to_world[:, :3, :3], cam_to_world[:, :3, :3])
    rel_gt = np.einsum("iba,jbc->ijac", gt[:, :3, :3], gt[:, :3, :3])
    diff = np.einsum("ijba,ijbc->ijac", rel_gt, rel)
    cos = (np.trace(diff, axis1=-2, axis2=-1) - 1) / 2
    return np.degrees(np.arccos(np.clip(cos, -1.0, 1.0)))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--height", type=int, default=384)
    ap.add_argument("--width", type=int, default=512)
    ap.add_argument("--window", type=int, default=2, help="pairs (i, j) with 0 < |i - j| <= w")
    ap.add_argument("--one-direction", action="store_true", help="only pairs with i < j")
    ap.add_argument("--bad", type=int, default=2, help="corrupted (confident, wrong) pairs")
    ap.add_argument("--noise", type=float, default=0.01)
    ap.add_argument("--warp", type=float, default=0.0)
    ap.add_argument("--focal-jitter", type=float, default=0.01)
    ap.add_argument("--iterations", type=int, default=AlignConfig.iterations)
    ap.add_argument("--max-pixels", type=int, default=AlignConfig.max_pixels)
    ap.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: default)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    syn = _synthetic()
    focal = 0.8 * args.width
    truth = syn.Truth(args.frames, args.height, args.width, focal)
    edges = syn._window(args.frames, args.window, both=not args.one_direction)
    rng = np.random.default_rng(0)
    bad = {edges[k] for k in rng.choice(len(edges), args.bad, replace=False)}
    preds = [
        truth.pair(
            i,
            j,
            rng,
            corrupt=(i, j) in bad,
            noise=args.noise,
            warp=args.warp,
            focal_jitter=args.focal_jitter,
        )
        for i, j in edges
    ]
    print(f"{args.frames} frames {args.height}x{args.width}, {len(preds)} pairs, bad {sorted(bad)}")
    for iters in (0, args.iterations):
        cfg = AlignConfig(iterations=iters, max_pixels=args.max_pixels)
        t0 = time.perf_counter()
        res = global_align(preds, args.frames, cfg)
        dt = time.perf_counter() - t0
        rot, trans, _ = pose_errors(res.cam_to_world, truth.poses)
        on_points = umeyama(
            np.stack(res.points)[:, ::4, ::4].reshape(-1, 3),
            truth.world[:, ::4, ::4].reshape(-1, 3),
        )
        rot_p, _, _ = pose_errors(res.cam_to_world, truth.poses, on_points)
        flagged = sorted(edges[k] for k in np.flatnonzero(~res.pair_inlier))
        print(
            f"iterations={iters:4d}: {dt:6.2f} s  rotation err max {rot.max():.3f} deg "
            f"(median {np.median(rot):.3f}; {rot_p.max():.3f} aligned on points; relative "
            f"max {_relative_rotation_errors(res.cam_to_world, truth.poses).max():.3f}), "
            f"centre err max {100 * trans.max() / truth.size:.3f}% of scene, "
            f"focal err max {100 * np.abs(res.focals / focal - 1).max():.2f}%, "
            f"outlier pairs {flagged}"
        )


if __name__ == "__main__":
    main()
