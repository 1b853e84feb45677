"""Per-frame mask quality of a segmenter against ground-truth instance maps.

For every frame of a scene with ground truth (``make-scene`` folders: ScanNet layout with
``instance/``), the segmenter's automatic masks are computed on the frame alone (with the
frame's cleaned depth and K, as the tracker gives them, for segmenters that read depth) and
every ground-truth object in view (at least ``--min-area`` of the frame) gets the IoU of its
best-matching mask. Printed per scene and overall:

* ``best IoU``: mean over (frame, object) of the best mask IoU (the figure to tune);
* ``>=0.5`` / ``>=0.8``: share of (frame, object) pairs whose best mask reaches that IoU;
* ``masks/frame``: automatic masks per frame;
* ``floor IoU``: best mask IoU of the floor (background pixels whose world z is below
  ``--floor-z``), showing that the floor is one region apart from walls and objects;
* ``s/frame``: segmentation CPU seconds per frame (process time, noisy under load).

Usage::

    PYTHONPATH=$PWD python benchmarks/segment_quality.py /tmp/scenes/seed0 /tmp/scenes/seed1 \
        --segmenter classical --segmenter geometric
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np


def best_ious(masks: np.ndarray, gt: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """(len(ids),) best IoU of each ground-truth ID among ``masks`` (M, H, W) bool."""
    if len(masks) == 0:
        return np.zeros(len(ids))
    flat = masks.reshape(len(masks), -1)
    area = flat.sum(1)
    out = np.zeros(len(ids))
    for k, i in enumerate(ids):
        g = (gt == i).ravel()
        inter = flat[:, g].sum(1)
        out[k] = (inter / np.maximum(area + g.sum() - inter, 1)).max()
    return out


def score_scene(path: Path, segmenter, min_area: float, floor_z: float, stride: int) -> dict:
    from lift3d.geometry.rgbd import pointmaps_from_depth
    from lift3d.io import load_scene
    from lift3d.segment.base import depth_kwargs

    scene = load_scene(path)
    per_obj, floors, n_masks, secs = [], [], [], []
    for t in range(0, len(scene), stride):
        frame, gt = scene.frames[t], np.asarray(scene.gt_labels[t])
        pm = pointmaps_from_depth(frame)
        start = time.process_time()
        masks = segmenter.auto_masks(frame.image, **depth_kwargs(segmenter, pm.depth, pm.K))
        secs.append(time.process_time() - start)
        stack = np.stack([m.segmentation for m in masks]) if masks else np.zeros((0, *gt.shape))
        ids, counts = np.unique(gt[gt > 0], return_counts=True)
        ids = ids[counts >= min_area * gt.size]
        per_obj.extend(best_ious(stack, gt, ids).tolist())
        floor = (gt == 0) & pm.valid & (pm.points[..., 2] < floor_z)
        if floor.sum() >= min_area * gt.size:
            floors.append(best_ious(stack, np.where(floor, 1, 0), np.array([1]))[0])
        n_masks.append(len(masks))
    return {"ious": np.array(per_obj), "floor": np.array(floors), "n_masks": np.array(n_masks),
            "secs": np.array(secs)}


def line(name: str, r: dict) -> str:
    ious = r["ious"]
    return (f"{name:<28} best IoU {ious.mean():.3f}  >=0.5 {np.mean(ious >= 0.5):.2f}  "
            f">=0.8 {np.mean(ious >= 0.8):.2f}  n={len(ious):4d}  "
            f"masks/frame {r['n_masks'].mean():5.1f}  floor IoU {r['floor'].mean():.3f}  "
            f"s/frame {r['secs'].mean():.3f}")


def main() -> None:
    from lift3d.segment import build_segmenter

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("scenes", nargs="+", type=Path)
    ap.add_argument("--segmenter", action="append", default=None)
    ap.add_argument("--min-area", type=float, default=0.001,
                    help="objects below this share of the frame are not scored")
    ap.add_argument("--floor-z", type=float, default=0.02, help="floor: world z below this (m)")
    ap.add_argument("--stride", type=int, default=1, help="score every stride-th frame")
    args = ap.parse_args()
    for name in args.segmenter or ["classical"]:
        seg = build_segmenter(name)
        results = [score_scene(p, seg, args.min_area, args.floor_z, args.stride)
                   for p in args.scenes]
        for p, r in zip(args.scenes, results):
            print(line(f"{name} {p.name}", r))
        total = {k: np.concatenate([r[k] for r in results]) for k in results[0]}
        print(line(f"{name} ALL", total))


if __name__ == "__main__":
    main()
