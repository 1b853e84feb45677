"""Voxel keys and the scene scale: the one home of both (tracker memory, fusion, metric).

A voxel of size ``s`` holding point p is ``floor(p / s)`` (int64 per axis); its key packs the
three indices, offset by 2^20, into 21 bits each of one int64, so keys sort in lexicographic
(x, y, z) order and equal keys are equal voxels. The packing covers |index| < 2^20 (a voxel
of 1 cm spans +-10 km).
"""

from __future__ import annotations

import numpy as np

KEY_BITS = 21
"""Bits per axis of a packed voxel key."""
KEY_OFFSET = 1 << (KEY_BITS - 1)
"""Added to each voxel index so that it is non-negative in its bit field."""


def voxel_index(points: np.ndarray, voxel: float) -> np.ndarray:
    """(N, 3) int64 voxel indices ``floor(points / voxel)`` of points (N, 3), computed in the
    points' own float type (float32 points divide in float32)."""
    return np.floor(points / voxel).astype(np.int64)


def pack_keys(q: np.ndarray) -> np.ndarray:
    """(N,) int64 keys of (N, 3) int64 voxel indices (lexicographic order preserved).

    Raises ValueError for indices outside the packing's range (a voxel far too small for the
    scene, or points at infinity)."""
    if len(q) and (q.min() < -KEY_OFFSET or q.max() >= KEY_OFFSET):
        raise ValueError(f"voxel index beyond +-{KEY_OFFSET}: the voxel size is too small for "
                         "the scene's extent, or points are not finite")
    q = q + KEY_OFFSET
    return (q[:, 0] << (2 * KEY_BITS)) | (q[:, 1] << KEY_BITS) | q[:, 2]


def in_key_range(q: np.ndarray) -> bool:
    """Whether every voxel index of ``q`` (N, 3) fits the int64 packing of :func:`pack_keys`."""
    return not len(q) or (q.min() >= -KEY_OFFSET and q.max() < KEY_OFFSET)


def rows_in_key_range(q: np.ndarray) -> np.ndarray:
    """(N,) bool: which voxel indices of ``q`` (N, 3) fit the packing of :func:`pack_keys`
    (:func:`in_key_range` asks it of all at once)."""
    return np.all((q >= -KEY_OFFSET) & (q < KEY_OFFSET), axis=1)


def wide_keys(q: np.ndarray) -> np.ndarray:
    """(N,) 24-byte keys of (N, 3) int64 voxel indices of any range, ordered (by bytes) in
    the same lexicographic (x, y, z) order as :func:`pack_keys`; for scenes whose points span
    more than the packing (e.g. an alignment gone wrong puts points far away)."""
    u = (np.ascontiguousarray(q, np.int64).view(np.uint64) ^ np.uint64(1 << 63)).astype(">u8")
    return np.ascontiguousarray(u).view(np.dtype((np.void, 24))).ravel()


def find_sorted(keys: np.ndarray, query: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where each of ``query`` is in the sorted unique ``keys``: (positions (N,) int64, the
    insertion points of :func:`np.searchsorted`, and found (N,) bool, whether the key there
    is the query). A binary search per query: np.isin's answer at a cost that does not grow
    with ``keys`` (the tracker's memories, the fused voxels)."""
    pos = np.searchsorted(keys, query)
    found = pos < len(keys)
    found[found] = keys[pos[found]] == query[found]
    return pos, found


def unpack_keys(keys: np.ndarray) -> np.ndarray:
    """(N, 3) int64 voxel indices of keys made by :func:`pack_keys`."""
    mask = (1 << KEY_BITS) - 1
    q = np.stack([keys >> (2 * KEY_BITS), (keys >> KEY_BITS) & mask, keys & mask], 1)
    return q - KEY_OFFSET


_HASH = np.array([0x9E3779B97F4A7C15 - (1 << 64), 0xC2B2AE3D27D4EB4F - (1 << 64), 1], np.int64)


def voxel_keys(points: np.ndarray, voxel: float) -> np.ndarray:
    """Sorted unique int64 keys of the voxels (size ``voxel``) holding ``points`` (N, 3).

    Within the packing's range these are :func:`pack_keys`; beyond it (an alignment gone
    wrong, random-weight networks) a wrapping int64 hash of the three indices, so equal voxels
    still have equal keys (what the tracker's memory compares) and a collision of two voxels
    has probability ~N^2 / 2^64."""
    if len(points) == 0:
        return np.zeros(0, np.int64)
    q = voxel_index(points, voxel)
    if in_key_range(q):
        return np.unique(pack_keys(q))
    with np.errstate(over="ignore"):
        return np.unique((q * _HASH).sum(axis=1))


def frame_scale(points: np.ndarray, valid: np.ndarray, cam_to_world: np.ndarray | None) -> float:
    """Median distance from the camera centre (the origin when the pose is unknown) of a
    frame's valid points; 0 when none is valid."""
    if points is None or not valid.any():
        return 0.0
    centre = np.zeros(3) if cam_to_world is None else np.asarray(cam_to_world)[:3, 3]
    return float(np.median(np.linalg.norm(points[valid] - centre, axis=1)))


def scene_scale(geometry) -> float:
    """The scene scale: :func:`frame_scale` of the first frame with a valid point (0 if none,
    or for 2D geometry). Reads pointmaps in order until one has a valid point."""
    if geometry.kind != "3d":
        return 0.0
    for k in range(len(geometry)):
        pm = geometry[k]
        if pm.points is not None and pm.valid.any():
            return frame_scale(pm.points, pm.valid, pm.cam_to_world)
    return 0.0
