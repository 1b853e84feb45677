"""Spatial blocks for the exact H of a long sequence in bounded memory (numba helpers).

The space is cut into a k-d tree of boxes of whole grid bins (bins of side S, at least 8 eps),
split at weighted medians of a histogram of the query points until each box owns at most a
budget of points. A point is *owned* by the box that holds its bin; a box's kernel run also
sees, as neighbours only, every point within ``mu`` (a hair over eps / S, in bin units) of
its faces. Every other-frame point within eps of an owned point is then in the run (proof in
:func:`route`), so each owned point's neighbour count and same-ID count are exactly those of
one run over all the points.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_OFF = 1 << 20  # packed bin keys: 21 bits per axis, coordinates in [-2^20, 2^20)
_MASK = (1 << 21) - 1


def bins_of(x: np.ndarray, size: float) -> np.ndarray:
    """(N, 3) int64 bin coordinates floor(x / size), in float64 from the points."""
    return np.floor(np.asarray(x, np.float64) / size).astype(np.int64)


def pack(b: np.ndarray) -> np.ndarray:
    """(N,) int64 keys of (N, 3) bin coordinates in [-2^20, 2^20)."""
    q = b + _OFF
    return (q[:, 0] << 42) | (q[:, 1] << 21) | q[:, 2]


def unpack(k: np.ndarray) -> np.ndarray:
    return np.stack([(k >> 42) & _MASK, (k >> 21) & _MASK, k & _MASK], axis=1) - _OFF


class Histogram:
    """Counts of points per bin, the bins doubling in size when there are more than
    ``max_bins`` of them or a coordinate leaves the packed range (memory stays small; the
    histogram only balances the blocks, it never decides which point goes where)."""

    def __init__(self, size: float, max_bins: int = 1 << 18) -> None:
        self.size = float(size)
        self.max_bins = max_bins
        self.keys = np.zeros(0, np.int64)
        self.counts = np.zeros(0, np.int64)

    def _coarsen(self) -> None:
        self.size *= 2.0  # floor(floor(x/s)/2) == floor(x/(2s)): the same bins as recounting
        self.keys, inv = np.unique(pack(unpack(self.keys) >> 1), return_inverse=True)
        self.counts = np.bincount(inv.ravel(), weights=self.counts).astype(np.int64)

    def add(self, x: np.ndarray) -> None:
        if x.shape[0] == 0:
            return
        b = bins_of(x, self.size)
        while b.min() < -_OFF or b.max() >= _OFF:
            self._coarsen()
            b = bins_of(x, self.size)
        k, c = np.unique(pack(b), return_counts=True)
        keys = np.concatenate([self.keys, k])
        self.keys, inv = np.unique(keys, return_inverse=True)
        self.counts = np.bincount(inv.ravel(), weights=np.concatenate([self.counts, c]),
                                  minlength=self.keys.size).astype(np.int64)
        while self.keys.size > self.max_bins:
            self._coarsen()


class KdTree:
    """Boxes of whole bins: node i splits axis ``axis[i]`` at bin ``split[i]`` (bins below go
    to ``left[i]``), or is the leaf of block ``leaf[i]`` (-1 for inner nodes). The root covers
    all of space, so every point has an owner."""

    def __init__(self, hist: Histogram, budget: int) -> None:
        self.axis: list[int] = []
        self.split: list[int] = []
        self.left: list[int] = []
        self.right: list[int] = []
        self.leaf: list[int] = []
        self.owned: list[int] = []  # histogram points per block
        self._build(unpack(hist.keys), hist.counts, max(int(budget), 1))
        self.arrays = tuple(np.array(a, np.int64) for a in
                            (self.axis, self.split, self.left, self.right, self.leaf))

    @property
    def n_blocks(self) -> int:
        return len(self.owned)

    def _node(self) -> int:
        for a in (self.axis, self.split, self.left, self.right, self.leaf):
            a.append(-1)
        return len(self.leaf) - 1

    def _build(self, b: np.ndarray, c: np.ndarray, budget: int) -> int:
        i = self._node()
        span = b.max(0) - b.min(0) if len(b) else np.zeros(3, np.int64)
        if c.sum() <= budget or not span.any():
            self.leaf[i] = len(self.owned)
            self.owned.append(int(c.sum()))
            return i
        a = int(np.argmax(span))
        v, inv = np.unique(b[:, a], return_inverse=True)
        cum = np.cumsum(np.bincount(inv.ravel(), weights=c))
        k = int(np.searchsorted(cum, cum[-1] / 2.0))
        s = int(v[k] + 1) if k + 1 < v.size else int(v[k])  # both sides hold points
        lo = b[:, a] < s
        self.axis[i], self.split[i] = a, s
        self.left[i] = self._build(b[lo], c[lo], budget)
        self.right[i] = self._build(b[~lo], c[~lo], budget)
        return i


@njit(cache=True, nogil=True)
def route(x, size, mu, axis, split, left, right, leaf, own, extra_idx, extra_block):
    """For each point: own[i] = the block whose box holds its bin floor(x/size); and the
    pairs (extra_idx, extra_block) of the other blocks whose box is within ``mu`` bins of it
    (as neighbours only). Returns how many pairs were written (at most 7 per point: the cube
    of side 2 mu < 1 bin around a point meets at most 8 bins).

    Exactness: let p be owned by block L and q any point with |x_q - x_p| <= eps on each
    axis, so |u_q - u_p| < mu with u = x / size. At every split s on L's path, p went left
    (floor(u_p) < s, so u_p < s, so u_q < s + mu) or right (u_p >= floor(u_p) >= s, so
    u_q > s - mu); the descent below follows left when u < s + mu and right when
    u >= s - mu, so q reaches L.
    """
    n = x.shape[0]
    stack = np.empty(leaf.size + 1, np.int64)  # depth-first: at most depth + 1 waiting
    u = np.empty(3)
    m = 0
    for i in range(n):
        for a in range(3):
            u[a] = np.float64(x[i, a]) / size
        node = 0
        while leaf[node] < 0:
            node = left[node] if np.floor(u[axis[node]]) < split[node] else right[node]
        mine = leaf[node]
        own[i] = mine
        stack[0] = 0
        top = 1
        while top > 0:
            top -= 1
            node = stack[top]
            if leaf[node] >= 0:
                if leaf[node] != mine:
                    extra_idx[m] = i
                    extra_block[m] = leaf[node]
                    m += 1
                continue
            ua = u[axis[node]]
            if ua >= split[node] - mu:
                stack[top] = right[node]
                top += 1
            if ua < split[node] + mu:
                stack[top] = left[node]
                top += 1
    return m
