"""H(I,M) for 2D-only geometry (optical flow): matches stand in for 3D points.

Without world points, "the same point" is what the matches say: pixel p of frame i and the
pixels q of frame j = i +- 1 with ||q - m_ij(p)|| <= r (r in pixels) are neighbours, where
m_ij(p) is p's match in j. Only confident matches count (``min_conf``). h(p) is the mean
cosine similarity of the outputs over p's neighbours (for ID maps: the share of neighbours
with p's ID; ID 0 is its own class unless ``exclude_unlabelled``); H is the mean of h over
pixels with at least one neighbour. Exact: every neighbour is counted, none sampled.
"""

from __future__ import annotations

import math

import numpy as np

from lift3d.types import Geometry


def disk_offsets(r: float) -> np.ndarray:
    """(K, 2) integer offsets (dx, dy) with dx^2 + dy^2 <= r^2."""
    R = int(math.floor(r))
    d = np.arange(-R, R + 1)
    dx, dy = np.meshgrid(d, d)
    keep = dx**2 + dy**2 <= r * r + 1e-9
    return np.stack([dx[keep], dy[keep]], 1)


def consistency_matches(
    geometry: Geometry, labels, eps: float = 1.0,
    exclude_unlabelled: bool = False, min_conf: float = 0.3, feature_dtype: str = "float32",
):
    """Exact H(I,M) over consecutive-frame matches with radius ``eps`` pixels.

    labels: per frame (H, W) int ID maps, or (H, W, D) feature maps of any real dtype (sim =
    cosine; each frame normalised once, stored as ``feature_dtype``); a sequence, lazy or
    not. Returns a :class:`~lift3d.metrics.consistency.ConsistencyResult`.
    """
    from lift3d.metrics.consistency import ConsistencyResult
    from lift3d.types import Lazy

    n = len(labels)
    offs = disk_offsets(eps)
    is_ids = n == 0 or np.ndim(labels[0]) == 2
    outs = labels if is_ids else Lazy(n, lambda t: _unit(labels[t], feature_dtype), keep=3)
    # frame by frame (outputs are read as asked: a lazy sequence streams)
    per_frame = np.full(n, np.nan)
    hsum, hcount, npix = 0.0, 0, 0
    for i in range(n):
        li_map = outs[i]
        h_i, w_i = li_map.shape[:2]
        same = np.zeros(h_i * w_i, np.float64)
        total = np.zeros(h_i * w_i, np.int64)
        for j in (i - 1, i + 1):
            if not 0 <= j < n:
                continue
            m = geometry.matches(i, j)
            keep = m.conf >= min_conf
            src, dst = m.xy_i[keep].astype(np.int64), m.xy_j[keep].astype(np.int64)
            li = li_map[src[:, 1], src[:, 0]]
            src_flat = src[:, 1] * w_i + src[:, 0]
            if exclude_unlabelled and is_ids:
                ok = li > 0
                src_flat, dst, li = src_flat[ok], dst[ok], li[ok]
            lj_map = outs[j]
            h, w = lj_map.shape[:2]
            valid_j = geometry.valid[j]
            for dx, dy in offs:
                qx, qy = dst[:, 0] + dx, dst[:, 1] + dy
                inside = (qx >= 0) & (qx < w) & (qy >= 0) & (qy < h)
                qx, qy = np.clip(qx, 0, w - 1), np.clip(qy, 0, h - 1)
                lj = lj_map[qy, qx]
                ok = inside & valid_j[qy, qx]
                if exclude_unlabelled and is_ids:
                    ok &= lj > 0
                total += np.bincount(src_flat[ok], minlength=h_i * w_i)
                if is_ids:
                    sim = (lj == li)[ok]
                else:  # float64 products of the stored values, as the 3D kernel takes them
                    sim = np.einsum("nd,nd->n", li[ok].astype(np.float64), lj[ok].astype(np.float64))
                same += np.bincount(src_flat[ok], weights=sim, minlength=h_i * w_i)
        has = total > 0
        npix += int(geometry.valid[i].sum())
        if has.any():
            h_i = same[has] / total[has]
            per_frame[i] = float(h_i.mean())
            hsum += float(h_i.sum())
            hcount += int(has.sum())
    H = hsum / hcount if hcount else float("nan")
    return ConsistencyResult(H=H, per_frame=per_frame, n_pixels=npix, n_with_neighbours=hcount)


def _unit(f: np.ndarray, dtype: str) -> np.ndarray:
    """(H, W, D) unit vectors of a feature map (zero vectors stay zero), stored as dtype."""
    v = np.asarray(f, np.float64)
    norm = np.linalg.norm(v, axis=2, keepdims=True)
    return np.divide(v, norm, out=np.zeros_like(v), where=norm > 0).astype(dtype)
