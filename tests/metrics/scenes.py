"""Small generated scenes for the metric tests: planes seen from several posed pinhole cameras."""

from __future__ import annotations

import numpy as np

from lift3d.cameras import look_at


def render_planes(K, c2w, planes, hw) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Back-projected nearest hit of pixel rays (centres at +0.5) with planes n.X = d.

    Returns world points (H, W, 3) float32, valid (H, W) bool and the hit plane (H, W) int.
    """
    h, w = hw
    u, v = np.meshgrid(np.arange(w) + 0.5, np.arange(h) + 0.5)
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u)], -1)
    dirs = rays @ c2w[:3, :3].T
    eye = c2w[:3, 3]
    best = np.full((h, w), np.inf)
    which = np.full((h, w), -1)
    for k, (n, d) in enumerate(planes):
        n = np.asarray(n, np.float64)
        den = dirs @ n
        with np.errstate(divide="ignore", invalid="ignore"):
            t = (d - n @ eye) / den
        t = np.where((t > 1e-6) & np.isfinite(t), t, np.inf)
        closer = t < best
        best[closer], which[closer] = t[closer], k
    valid = np.isfinite(best) & (best < 20)
    pts = eye + np.where(valid, best, 0)[..., None] * dirs
    return pts.astype(np.float32), valid, which


def plane_scene(n_frames=4, hw=(24, 32), seed=0):
    """Floor and two walls seen from ``n_frames`` cameras on an arc; labels from world position.

    Returns points, valid, ids (consistent: a function of the world point) per frame.
    """
    rng = np.random.default_rng(seed)
    h, w = hw
    K = np.array([[w * 0.9, 0, w / 2], [0, w * 0.9, h / 2], [0, 0, 1.0]])
    planes = [((0, 0, 1), 0.0), ((0, 1, 0), 2.0), ((1, 0, 0), 2.0)]
    points, valid, ids = [], [], []
    for i in range(n_frames):
        a = -0.6 + 1.2 * i / max(1, n_frames - 1) + rng.normal(0, 0.02)
        eye = (-2.5 * np.sin(a), -2.5 * np.cos(a), 1.2)
        p, v, which = render_planes(K, look_at(eye, (0.3, 0.5, 0.4)), planes, hw)
        lab = 1 + which * 3 + (p[..., 0] > 0.4) + (p[..., 2] > 1.0)
        points.append(p)
        valid.append(v)
        ids.append(np.where(v, lab, 0).astype(np.int32))
    return points, valid, ids
