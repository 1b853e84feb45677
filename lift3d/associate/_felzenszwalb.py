"""Felzenszwalb-Huttenlocher graph segmentation (compiled, numba) over a sorted edge list.

The algorithm of "Efficient Graph-Based Image Segmentation" (2004) on any graph, as ScanNet's
Segmentator runs it on mesh vertices: edges in increasing weight; two components join when
the edge is no heavier than either's internal difference plus ``k / size``; then components
below ``min_size`` join a neighbour along the lightest remaining edges.
"""

from __future__ import annotations

import numpy as np
from numba import njit


@njit(cache=True, nogil=True)
def _find(parent: np.ndarray, a: int) -> int:
    root = a
    while parent[root] != root:
        root = parent[root]
    while parent[a] != root:  # path compression
        nxt = parent[a]
        parent[a] = root
        a = nxt
    return root


@njit(cache=True, nogil=True)
def _segment(src: np.ndarray, dst: np.ndarray, w: np.ndarray, n: int, k: float,
             min_size: int) -> np.ndarray:
    parent = np.arange(n)
    size = np.ones(n, np.int64)
    thresh = np.full(n, k)
    for e in range(len(w)):
        a = _find(parent, src[e])
        b = _find(parent, dst[e])
        if a != b and w[e] <= thresh[a] and w[e] <= thresh[b]:
            if size[a] < size[b]:
                a, b = b, a
            parent[b] = a
            size[a] += size[b]
            thresh[a] = w[e] + k / size[a]
    for e in range(len(w)):
        a = _find(parent, src[e])
        b = _find(parent, dst[e])
        if a != b and (size[a] < min_size or size[b] < min_size):
            if size[a] < size[b]:
                a, b = b, a
            parent[b] = a
            size[a] += size[b]
    out = np.empty(n, np.int64)
    for i in range(n):
        out[i] = _find(parent, i)
    return out


def segment_graph(src: np.ndarray, dst: np.ndarray, w: np.ndarray, n: int, k: float,
                  min_size: int) -> np.ndarray:
    """(n,) int64 component index (0..C-1) per node of a graph given by edges ``src``,
    ``dst`` (E,) sorted by weight ``w`` (E,) ascending."""
    if n == 0:
        return np.zeros(0, np.int64)
    root = _segment(np.ascontiguousarray(src, np.int64), np.ascontiguousarray(dst, np.int64),
                    np.ascontiguousarray(w, np.float64), int(n), float(k), int(min_size))
    return np.unique(root, return_inverse=True)[1].ravel().astype(np.int64)
