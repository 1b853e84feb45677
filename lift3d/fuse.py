"""Fusion of per-frame pointmaps and ID maps into one labelled cloud.

Every valid pixel of every frame is an observation: a world point, a colour, a normal (from
the pointmap's neighbours, turned towards the camera) and a label with a weight (the
geometry's confidence). Observations are grouped by voxel; each voxel becomes one point with
the mean position, colour and normal, the number of observations, and the label that got the
largest share of the confidence-weighted votes (that share is its ``label_conf``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lift3d.types import Geometry, LabelledCloud


@dataclass(frozen=True)
class FuseConfig:
    """Fusion settings."""

    voxel: float | None = None
    """Voxel size in scene units; None = ``voxel_rel`` x scene scale (median depth)."""
    voxel_rel: float = 0.005
    """Voxel size relative to the scene scale, when ``voxel`` is None."""
    unlabelled_votes: bool = True
    """Unlabelled pixels (ID 0) vote for "unlabelled"; if False they do not vote at all."""
    min_obs: int = 1
    """Voxels with fewer observations are dropped."""
    stride: int = 1
    """Use every stride-th pixel in x and y (1 = all pixels)."""


def pixel_normals(points: np.ndarray, cam_centre: np.ndarray | None) -> np.ndarray:
    """Unit normals (H, W, 3) float32 of a pointmap by central differences.

    Turned to face ``cam_centre`` when given; zeros at the border and where undefined.
    """
    n = np.zeros_like(points, dtype=np.float32)
    dx = points[1:-1, 2:] - points[1:-1, :-2]
    dy = points[2:, 1:-1] - points[:-2, 1:-1]
    c = np.cross(dy, dx)  # OpenCV axes: y down x right -> normal towards the camera
    norm = np.linalg.norm(c, axis=-1, keepdims=True)
    c = np.where(norm > 0, c / np.maximum(norm, 1e-12), 0.0)
    if cam_centre is not None:
        view = cam_centre[None, None, :] - points[1:-1, 1:-1]
        flip = (c * view).sum(-1) < 0
        c[flip] *= -1
    n[1:-1, 1:-1] = c
    return n


def fuse(
    geometry: Geometry, images: list[np.ndarray], labels: list[np.ndarray],
    cfg: FuseConfig = FuseConfig(), voxel: float | None = None,
) -> LabelledCloud:
    """Fuse all frames into a :class:`LabelledCloud`.

    images: (H, W, 3) uint8 per frame; labels: (H, W) int32 per frame (IDs consistent across
    frames). ``voxel`` overrides the config's voxel size (scene units).
    """
    if geometry.points is None:
        raise ValueError("fusion needs 3D geometry (points); flow geometry is 2D only")
    s = cfg.stride
    pts, col, nrm, lab, w = [], [], [], [], []
    for k, (p, v, c) in enumerate(zip(geometry.points, geometry.valid, geometry.conf)):
        pose = geometry.cam_to_world[k]
        normals = pixel_normals(p, None if pose is None else pose[:3, 3])
        sel = v[::s, ::s]
        pts.append(p[::s, ::s][sel])
        col.append(images[k][::s, ::s][sel])
        nrm.append(normals[::s, ::s][sel])
        lab.append(labels[k][::s, ::s][sel])
        w.append(c[::s, ::s][sel])
    points = np.concatenate(pts).astype(np.float64)
    if voxel is None:
        voxel = cfg.voxel if cfg.voxel is not None else cfg.voxel_rel * _scale(geometry)
    return fuse_points(
        points, np.concatenate(col), np.concatenate(nrm), np.concatenate(lab),
        np.concatenate(w).astype(np.float64), voxel, cfg,
    )


def _scale(geometry: Geometry) -> float:
    from lift3d.track import scene_scale

    s = scene_scale(geometry)
    return s if s > 0 else 1.0


def fuse_points(
    points: np.ndarray, colors: np.ndarray, normals: np.ndarray, labels: np.ndarray,
    weights: np.ndarray, voxel: float, cfg: FuseConfig = FuseConfig(),
) -> LabelledCloud:
    """Voxel-fuse observations: points (N, 3), colors (N, 3) uint8, normals (N, 3),
    labels (N,) int, weights (N,) >= 0. Returns one point per occupied voxel."""
    if len(points) == 0:
        z = np.zeros((0, 3), np.float32)
        return LabelledCloud(z, np.zeros((0, 3), np.uint8), z, np.zeros(0, np.int32),
                             np.zeros(0, np.float32), np.zeros(0, np.int32))
    q = np.floor(points / voxel).astype(np.int64)
    q -= q.min(0)
    span = q.max(0) + 1
    key = (q[:, 0] * span[1] + q[:, 1]) * span[2] + q[:, 2]  # 1-D keys sort far faster
    _, vox, n_obs = np.unique(key, return_inverse=True, return_counts=True)
    vox = vox.ravel()
    n_vox = len(n_obs)

    def mean(a: np.ndarray) -> np.ndarray:
        return np.stack([np.bincount(vox, a[:, d], n_vox) for d in range(a.shape[1])], 1) / n_obs[:, None]

    pos = mean(points)
    rgb = np.clip(np.rint(mean(colors.astype(np.float64))), 0, 255).astype(np.uint8)
    nsum = mean(normals.astype(np.float64))
    nlen = np.linalg.norm(nsum, axis=1, keepdims=True)
    nrm = np.where(nlen > 1e-9, nsum / np.maximum(nlen, 1e-12), 0.0)

    label_out, conf_out = vote(vox, labels, weights, n_vox, cfg.unlabelled_votes)
    keep = n_obs >= cfg.min_obs
    return LabelledCloud(
        points=pos[keep].astype(np.float32), colors=rgb[keep], normals=nrm[keep].astype(np.float32),
        labels=label_out[keep], label_conf=conf_out[keep], n_obs=n_obs[keep].astype(np.int32),
    )


def vote(
    group: np.ndarray, labels: np.ndarray, weights: np.ndarray, n_groups: int,
    unlabelled_votes: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Confidence-weighted label vote per group.

    Returns (label (G,) int32, share of the weight the winner got (G,) float32). Ties go to
    the smaller label. Groups with no votes get label 0 and share 0.
    """
    labels = labels.astype(np.int64)
    w = weights.astype(np.float64)
    if not unlabelled_votes:
        keep = labels > 0
        group, labels, w = group[keep], labels[keep], w[keep]
    w = np.maximum(w, 1e-12)  # every observation votes, even at zero confidence
    base = int(labels.max()) + 1 if len(labels) else 1
    pair, inv = np.unique(group.astype(np.int64) * base + labels, return_inverse=True)
    pw = np.bincount(inv.ravel(), w, len(pair))
    pg, pl = pair // base, pair % base
    # winner per group: sort by group, then weight descending, then label ascending
    order = np.lexsort((pl, -pw, pg))
    first = np.ones(len(order), bool)
    first[1:] = pg[order][1:] != pg[order][:-1]
    win = order[first]
    total = np.bincount(pg, pw, n_groups)
    label_out = np.zeros(n_groups, np.int32)
    conf_out = np.zeros(n_groups, np.float32)
    label_out[pg[win]] = pl[win]
    conf_out[pg[win]] = pw[win] / np.maximum(total[pg[win]], 1e-12)
    return label_out, conf_out
