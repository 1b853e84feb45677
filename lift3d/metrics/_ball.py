"""Compiled radius-neighbour sums for the exact consistency metric (numba).

For every point p the kernel visits every point q of *another* frame with
``(dx*dx + dy*dy) + dz*dz <= eps*eps`` (float64, the comparison scipy's cKDTree makes, no fused
multiply-add: numba does not contract without ``fastmath``) and returns

* ``cnt[p]``: how many there are, and
* ``sim[p]``: the sum of sim(p, q): [ID_p == ID_q] for ID labels, f_p . f_q for unit features.

How: points are counting-sorted by a grid cell of side a hair over eps, so every neighbour of p
lies in the 27 cells around p's cell. Cells of one (x, y) column have consecutive keys, so the
3 cells of a column are one contiguous run of the sorted points: per point, 9 runs, each
trimmed to the cells whose box is within eps of p (a conservative bound, with a slack far above
rounding). The loop over a run is branch-free over 0-based views, which LLVM vectorises.
Work items of 64 cells go to the threads one at a time. Nothing is sampled and no neighbour
list is stored: memory is O(points), time O(points x points in the trimmed runs).

Features: per point the kernel adds up its neighbours' vectors and takes one dot product at
the end (D adds per neighbour, in float64 from the stored float32: no rounding but the
stored values'). Features too large for memory are handed over block by block: a block is a
run of whole x-slabs of the grid plus the slab on each side, the only rows its points can
reach, read through ``rows(idx)`` (e.g. from memory-mapped files) when the block comes up.
"""

from __future__ import annotations

import os
import warnings
from contextlib import contextmanager
from time import perf_counter

import numba
import numpy as np
from numba import njit, prange

from lift3d.errors import InputError

# Threads: OpenMP, else numba's own work queue, TBB last: Open3D ships an older libtbb that
# numba rejects with a warning when it tries TBB first and finds that one loaded.
if not {"NUMBA_THREADING_LAYER", "NUMBA_THREADING_LAYER_PRIORITY"} & set(os.environ):
    numba.config.THREADING_LAYER_PRIORITY = ["omp", "workqueue", "tbb"]

# warn when the pairs to examine would take minutes (about 3e9 pairs per second on 2 cores)
_PAIRS_PER_S = 3e9
_WARN_PAIRS = 5e11


@njit(cache=True, nogil=True)
def _lower_bound(a, v):
    """First index i with a[i] >= v in a sorted array (a.size if none)."""
    lo, hi = 0, a.size
    while lo < hi:
        mid = (lo + hi) >> 1
        if a[mid] < v:
            lo = mid + 1
        else:
            hi = mid
    return lo


@njit(cache=True, nogil=True)
def _column_bounds(ukey, start, c, strides, bounds):
    """For the 9 columns (dx, dy) in {-1, 0, 1}^2 around cell c: bounds[col, m] is the first
    sorted point of cell (x + dx, y + dy, z - 1 + m) or of any later cell, m = 0..3. Cells of a
    column have consecutive keys, so cells z-1..z+1 of a column are one contiguous run of
    points, and any sub-range of them is bounds[col, lo] .. bounds[col, hi + 1]."""
    n_cells = ukey.size
    col = 0
    for dx in range(-1, 2):
        for dy in range(-1, 2):
            k = ukey[c] + dx * strides[0] + dy * strides[1] - 1
            j = _lower_bound(ukey, k)
            for m in range(4):
                bounds[col, m] = start[j]
                if m < 3 and j < n_cells and ukey[j] == k + m:
                    j += 1
            col += 1


@njit(cache=True, nogil=True)
def _face_gaps(xi, lo_cell, size, gap):
    """gap[a, 0] / gap[a, 2]: squared distance from xi to the lower / upper face of its cell
    along axis a (the nearest a point of the cell below / above can be); gap[a, 1] = 0."""
    for a in range(3):
        lo = max(xi[a] - lo_cell[a], 0.0)
        hi = max(lo_cell[a] + size - xi[a], 0.0)
        gap[a, 0] = lo * lo
        gap[a, 1] = 0.0
        gap[a, 2] = hi * hi


@njit(cache=True, nogil=True)
def _point_runs(gap, bounds, lim2, runs):
    """The runs of sorted points that can hold a neighbour of a point: per column, the cells
    whose box is within sqrt(lim2) of the point. Returns how many runs were written."""
    n = 0
    col = 0
    for ix in range(3):
        for iy in range(3):
            rem = lim2 - (gap[0, ix] + gap[1, iy])
            if rem >= 0.0:
                lo = 0 if gap[2, 0] <= rem else 1
                hi = 2 if gap[2, 2] <= rem else 1
                b, e = bounds[col, lo], bounds[col, hi + 1]
                if e > b:
                    runs[n, 0], runs[n, 1] = b, e
                    n += 1
            col += 1
    return n


@njit(cache=True, nogil=True)
def _sum_ids(xs, ys, zs, frame, lab, p, runs, n_runs, eps2):
    """Other-frame points within eps of point p in the runs, and how many share its ID."""
    xp, yp, zp = np.float64(xs[p]), np.float64(ys[p]), np.float64(zs[p])
    fp, lp = frame[p], lab[p]
    n_all = 0
    n_same = 0
    for r in range(n_runs):
        b0, b1 = runs[r, 0], runs[r, 1]
        # views indexed from 0: no negative-index wrap, so the loop vectorises
        qx, qy, qz, qf, ql = xs[b0:b1], ys[b0:b1], zs[b0:b1], frame[b0:b1], lab[b0:b1]
        for q in range(b1 - b0):  # branch-free
            dx = np.float64(qx[q]) - xp
            dy = np.float64(qy[q]) - yp
            dz = np.float64(qz[q]) - zp
            hit = ((dx * dx + dy * dy) + dz * dz <= eps2) & (qf[q] != fp)
            n_all += hit
            n_same += hit & (ql[q] == lp)
    return n_all, np.float64(n_same)


@njit(cache=True, nogil=True)
def _add_rows(feat, base, hits, k, acc):
    """acc += feat[hits[t] - base] for t < k, in float64 (independent lanes: vectorised)."""
    dim = feat.shape[1]
    for t in range(k):
        row = feat[hits[t] - base]
        for d in range(dim):
            acc[d] += np.float64(row[d])


@njit(cache=True, nogil=True)
def _sum_features(xs, ys, zs, frame, feat, base, p, runs, n_runs, eps2, acc, hits):
    """Other-frame points within eps of point p in the runs, and the sum of f_p . f_q.

    feat holds the rows of sorted points base, base + 1, ... (one spatial block). The sum is
    taken as f_p . (sum_q f_q): one vector add per neighbour and one dot per point. The
    distance loop is branch-free, writing every candidate into ``hits`` and advancing only
    on a neighbour; full buffers are added up in order. Products and sums are float64: a
    float32 product is exact there, so the stored features are the only rounding."""
    xp, yp, zp = np.float64(xs[p]), np.float64(ys[p]), np.float64(zs[p])
    fp = frame[p]
    acc[:] = 0.0
    n_all = 0
    k = 0
    cap = hits.size
    for r in range(n_runs):
        b0, b1 = runs[r, 0], runs[r, 1]
        qx, qy, qz, qf = xs[b0:b1], ys[b0:b1], zs[b0:b1], frame[b0:b1]
        for q in range(b1 - b0):
            dx = np.float64(qx[q]) - xp
            dy = np.float64(qy[q]) - yp
            dz = np.float64(qz[q]) - zp
            hit = ((dx * dx + dy * dy) + dz * dz <= eps2) & (qf[q] != fp)
            hits[k] = b0 + q
            k += hit
            if k == cap:
                _add_rows(feat, base, hits, k, acc)
                n_all += k
                k = 0
    _add_rows(feat, base, hits, k, acc)
    n_all += k
    s = 0.0
    own = feat[p - base]
    for d in range(feat.shape[1]):
        s += np.float64(own[d]) * acc[d]
    return n_all, s


@njit(parallel=True, cache=True, nogil=True)
def _ball(xs, ys, zs, frame, lab, feat, use_feat, ukey, start, cell_ijk, lo, size, strides,
          eps2, lim2, chunk, order, cnt, sim, c_lo, c_hi, base):
    """Per sorted point p of cells c_lo..c_hi-1: cnt / sim of :func:`_sum_ids` (``use_feat``
    False) or :func:`_sum_features` (feature rows from sorted point ``base`` on), written at
    the point's input position order[p]."""
    for b in prange((c_hi - c_lo + chunk - 1) // chunk):
        bounds = np.empty((9, 4), np.int64)
        runs = np.empty((9, 2), np.int64)
        gap = np.empty((3, 3))
        lo_cell = np.empty(3)
        xi = np.empty(3)
        acc = np.empty(feat.shape[1])
        hits = np.empty(256, np.int64)
        for c in range(c_lo + b * chunk, min(c_hi, c_lo + (b + 1) * chunk)):
            _column_bounds(ukey, start, c, strides, bounds)
            for a in range(3):
                lo_cell[a] = lo[a] + cell_ijk[c, a] * size
            for p in range(start[c], start[c + 1]):
                xi[0], xi[1], xi[2] = xs[p], ys[p], zs[p]
                _face_gaps(xi, lo_cell, size, gap)
                n_runs = _point_runs(gap, bounds, lim2, runs)
                if use_feat:
                    n, v = _sum_features(xs, ys, zs, frame, feat, base, p, runs, n_runs, eps2,
                                         acc, hits)
                else:
                    n, v = _sum_ids(xs, ys, zs, frame, lab, p, runs, n_runs, eps2)
                cnt[order[p]] = n  # results go back to the input order
                sim[order[p]] = v


@njit(cache=True, nogil=True)
def _bounds(x):
    """Per-axis minimum and maximum of (N, 3) points, in float64."""
    lo = np.full(3, np.inf)
    hi = np.full(3, -np.inf)
    for i in range(x.shape[0]):
        for a in range(3):
            v = np.float64(x[i, a])
            lo[a] = min(lo[a], v)
            hi[a] = max(hi[a], v)
    return lo, hi


@njit(parallel=True, cache=True, nogil=True)
def _cell_keys(x, lo, size, strides, key):
    """key[i] = ijk . strides with ijk = floor((x[i] - lo) / size) in float64."""
    for i in prange(x.shape[0]):
        k = 0
        for a in range(3):
            k += np.int64(np.floor((np.float64(x[i, a]) - lo[a]) / size)) * strides[a]
        key[i] = k


@njit(cache=True, nogil=True)
def _counting_order(key, pos):
    """Indices that sort ``key`` (stable), for keys in [0, n_keys): O(N + n_keys). pos: zeros,
    (n_keys + 1,), an integer type that holds N (int32 halves the table's memory)."""
    n_keys = pos.size - 1
    for k in key:
        pos[k + 1] += 1
    for i in range(n_keys):
        pos[i + 1] += pos[i]
    order = np.empty(key.size, np.int64)
    for i in range(key.size):
        k = key[i]
        order[pos[k]] = i
        pos[k] += 1
    return order


@njit(cache=True, nogil=True)
def _runs(skey):
    """Start of every run of equal values in a sorted array, and the end (N) appended."""
    n = skey.size
    m = 1
    for i in range(1, n):
        m += skey[i] != skey[i - 1]
    start = np.empty(m + 1, np.int64)
    start[0] = 0
    j = 1
    for i in range(1, n):
        if skey[i] != skey[i - 1]:
            start[j] = i
            j += 1
    start[m] = n
    return start


@njit(parallel=True, cache=True, nogil=True)
def _take_xyz(x, order, xs, ys, zs):
    for i in prange(order.size):
        j = order[i]
        xs[i], ys[i], zs[i] = x[j, 0], x[j, 1], x[j, 2]


@njit(parallel=True, cache=True, nogil=True)
def _take(a, order, out):
    for i in prange(order.size):
        out[i] = a[order[i]]


def ball_sums(x: np.ndarray, frame: np.ndarray, out, eps: float, workers: int = -1,
              stats: dict | None = None, block_rows: int | None = None
              ) -> tuple[np.ndarray, np.ndarray]:
    """Per point: the number of other-frame points within eps and the sum of their similarity.

    x: (N, 3) float32 or float64 points (distances are taken in float64 either way); frame:
    (N,) int frame index; out: (N,) int IDs, (N, D) float unit features, or an object with
    ``dim`` (D) and ``rows(idx) -> (len(idx), D)`` float32 / float64 (the features of the
    points ``idx``: how features too large for memory are read, block by block).
    Returns ``(cnt, sim)`` in the input order: (N,) int64, and (N,) float64 holding, for IDs,
    the same-ID counts (exact integers), for features the sums of dot products.
    workers: threads (-1 = all of numba's). block_rows: features are taken for at most about
    this many points at a time (one spatial block: consecutive x-slabs of the grid and the
    slab on each side; None = all at once). stats: if given, gets the wall seconds of the grid
    sort (``wall_sort``), of reading features (``wall_features``) and of the neighbour sums
    (``wall_sums``), the points examined per pixel before trimming (``candidates_per_point``)
    and the number of blocks (``blocks``).
    """
    with _numba_threads(workers):
        if isinstance(out, np.ndarray) or not hasattr(out, "rows"):
            out = np.asarray(out)
        return _ball_sums(np.asarray(x), np.asarray(frame), out, float(eps),
                          {} if stats is None else stats, block_rows)


@njit(parallel=True, cache=True, nogil=True)
def _candidates(ukey, start, strides):
    """Upper bound of the point pairs the kernel examines: per cell, its points times the
    points of its 27 cells (before the per-point trimming)."""
    total = 0
    for c in prange(ukey.size):
        bounds = np.empty((9, 4), np.int64)
        _column_bounds(ukey, start, c, strides, bounds)
        around = 0
        for col in range(9):
            around += bounds[col, 3] - bounds[col, 0]
        total += (start[c + 1] - start[c]) * around
    return total


@njit(cache=True, nogil=True)
def _equal_counts(key, out):
    """out[i] = how many entries of ``key`` equal key[i] (quadratic for short runs)."""
    m = key.size
    if m <= 48:
        for i in range(m):
            k = 0
            for j in range(m):
                k += key[j] == key[i]
            out[i] = k
        return
    idx = np.argsort(key)
    b = 0
    for e in range(1, m + 1):
        if e == m or key[idx[e]] != key[idx[b]]:
            for i in range(b, e):
                out[idx[i]] = e - b
            b = e


@njit(parallel=True, cache=True, nogil=True)
def _voxel_counts(frame, lab, n_lab, start, other, other_same):
    """Per sorted point in voxel run start[v]:start[v+1]: other[i] = points of other frames in
    its voxel, other_same[i] = those with its label."""
    for v in prange(start.size - 1):
        b, e = start[v], start[v + 1]
        m = e - b
        f_cnt = np.empty(m, np.int64)
        l_cnt = np.empty(m, np.int64)
        fl_cnt = np.empty(m, np.int64)
        _equal_counts(frame[b:e], f_cnt)
        _equal_counts(lab[b:e], l_cnt)
        _equal_counts(frame[b:e].astype(np.int64) * n_lab + lab[b:e], fl_cnt)
        for i in range(m):
            other[b + i] = m - f_cnt[i]
            other_same[b + i] = l_cnt[i] - fl_cnt[i]


@contextmanager
def _numba_threads(workers):
    """Run numba's parallel loops on ``workers`` threads (-1 or None: all of numba's)."""
    n_max = numba.config.NUMBA_NUM_THREADS
    prev = numba.get_num_threads()
    numba.set_num_threads(n_max if workers is None or workers < 1 else min(int(workers), n_max))
    try:
        yield
    finally:
        numba.set_num_threads(prev)


def _take_as(a, order, dtype):
    out = np.empty(order.size, dtype)
    _take(np.ascontiguousarray(a), order, out)
    return out


class _Cells:
    """Points sorted by the cell of a grid of side ``size`` whose origin is one cell below the
    lowest point (neighbour keys never go negative): ``order`` sorts the points, cell c holds
    sorted points start[c]:start[c+1], has key ukey[c] and integer coordinates cell_ijk[c]."""

    def __init__(self, x: np.ndarray, size: float):
        n = x.shape[0]
        self.size = size
        lo, hi = _bounds(x)
        self.lo = lo - size
        # floor((x - lo) / size) is monotone in x, so the top point has the largest cell
        self.dims = np.floor((hi - self.lo) / size).astype(np.int64) + 2
        n_keys = float(self.dims[0]) * float(self.dims[1]) * float(self.dims[2])
        if n_keys > 2.0**62:
            raise InputError(
                f"consistency: the points span {self.dims.tolist()} cells of size {size:g}",
                fix="eps is far too small for these points; pass eps in the units of the points",
            )
        self.strides = np.array([self.dims[1] * self.dims[2], self.dims[2], 1], np.int64)
        key = np.empty(n, np.int64)
        _cell_keys(x, self.lo, size, self.strides, key)
        # a counting sort when the grid is not much larger than the cloud, else a comparison sort
        if n_keys <= 4 * n + 4096:
            pos = np.zeros(int(n_keys) + 1, np.int32 if n < 2**31 - 1 else np.int64)
            self.order = _counting_order(key, pos)
        else:
            self.order = np.argsort(key, kind="stable")
        skey = _take_as(key, self.order, np.int64)
        self.start = _runs(skey)
        self.ukey = skey[self.start[:-1]]
        u = self.ukey
        self.cell_ijk = np.stack([u // self.strides[0], u % self.strides[0] // self.strides[1],
                                  u % self.strides[1]], axis=1)


def _ball_sums(x, frame, out, eps, stats, block_rows):
    t0 = perf_counter()
    n = x.shape[0]
    if n == 0:
        return np.zeros(0, np.int64), np.zeros(0, np.float64)
    size = eps * (1.0 + 1e-6)  # a hair over eps: every neighbour lies in the 27 cells around
    g = _Cells(x, size)
    order = g.order
    pairs = int(_candidates(g.ukey, g.start, g.strides))
    stats["candidates_per_point"] = pairs / n
    if pairs > _WARN_PAIRS:
        warnings.warn(
            f"consistency: eps = {eps:g} reaches about {pairs / n:,.0f} points around each of the "
            f"{n:,} pixels ({pairs:.2g} pairs to examine); this may take "
            f"{pairs / _PAIRS_PER_S / 60:.0f} min or more. Pass eps in the units of the points, "
            "a small fraction of the scene's size.", RuntimeWarning, stacklevel=5)
    xs, ys, zs = (np.empty(n, x.dtype) for _ in range(3))
    _take_xyz(x, order, xs, ys, zs)
    fs = _take_as(frame, order, np.int32)
    # the pruning bound: skip a cell only when its box is farther than eps by a slack far above
    # the rounding of coordinates and cell corners (so no neighbour is ever skipped)
    reach = float(np.abs(g.lo).max() + g.dims.max() * size)
    lim2 = (eps + 1e-7 * eps + 64 * np.finfo(np.float64).eps * reach) ** 2
    eps2 = eps * eps
    chunk = 64  # cells per work item
    cnt = np.empty(n, np.int64)
    sim = np.empty(n, np.float64)
    use_feat = not (isinstance(out, np.ndarray) and out.ndim == 1)
    n_cells = g.ukey.size
    if use_feat:
        lab = np.zeros(0, np.int64)
        blocks = _blocks(g, n if block_rows is None else block_rows)
    else:
        lab = _take_as(out, order, np.int64)
        blocks = [(0, n_cells, 0, n_cells)]
    stats.update(wall_sort=perf_counter() - t0, wall_features=0.0, wall_sums=0.0,
                 blocks=len(blocks))
    # work items (64 cells) go out one by one; only for this loop: a chunk size of 1 on a
    # per-point loop would hand out millions of items
    prev_chunk = numba.set_parallel_chunksize(1)
    try:
        for c_lo, c_hi, m_lo, m_hi in blocks:
            t1 = perf_counter()
            base = int(g.start[m_lo])
            feat = _block_features(out, order[base:g.start[m_hi]]) if use_feat else \
                np.zeros((0, 0), np.float64)
            t2 = perf_counter()
            _ball(xs, ys, zs, fs, lab, feat, use_feat, g.ukey, g.start, g.cell_ijk, g.lo, size,
                  g.strides, eps2, lim2, chunk, order, cnt, sim, c_lo, c_hi, base)
            del feat
            stats["wall_features"] += t2 - t1
            stats["wall_sums"] += perf_counter() - t2
    finally:
        numba.set_parallel_chunksize(prev_chunk)
    return cnt, sim


def _block_features(out, idx: np.ndarray) -> np.ndarray:
    """(len(idx), D) C-contiguous features of the points ``idx`` (float32 stays float32)."""
    rows = out[idx] if isinstance(out, np.ndarray) else out.rows(idx)
    if rows.dtype not in (np.float32, np.float64):
        rows = rows.astype(np.float32)
    return np.ascontiguousarray(rows)


def _blocks(g: _Cells, max_rows: int) -> list[tuple[int, int, int, int]]:
    """Split the grid's cells into spatial blocks for the feature sums: runs of whole x-slabs
    (cells sorted by key are x-major, so a slab is a run of cells and of sorted points). Each
    block is ``(c_lo, c_hi, m_lo, m_hi)``: the query cells c_lo..c_hi-1 and the cells
    m_lo..m_hi-1 whose features they need (the block and the slab before and after it: every
    neighbour of a cell lies within one slab of it). A block holds at most ``max_rows`` points,
    margins included, unless one slab alone holds more."""
    xi = g.cell_ijk[:, 0]
    n_cells = xi.size
    first = np.flatnonzero(np.r_[True, xi[1:] != xi[:-1]])  # first cell of every slab
    bounds = np.r_[first, n_cells]  # slab k: cells bounds[k]..bounds[k+1]-1
    rows = np.diff(g.start[bounds])
    n_slabs = rows.size
    out = []
    k = 0
    while k < n_slabs:
        lo_margin = rows[k - 1] if k > 0 else 0
        e = k + 1
        total = lo_margin + rows[k]
        # grow while the block, with the slab after it as margin, stays under max_rows
        while e < n_slabs and total + rows[e] + (rows[e + 1] if e + 1 < n_slabs else 0) <= max_rows:
            total += rows[e]
            e += 1
        out.append((int(bounds[k]), int(bounds[e]), int(bounds[max(k - 1, 0)]),
                    int(bounds[min(e + 1, n_slabs)])))
        k = e
    return out


def voxel_counts(x: np.ndarray, frame: np.ndarray, lab: np.ndarray, size: float,
                 workers: int = -1) -> tuple[np.ndarray, ...]:
    """Voxel statistics of the per-mask approximation, on a grid of side ``size``.

    lab: (N,) int64 labels in [0, n_lab). Returns, in voxel-sorted order, ``(frame, lab,
    other, other_same)``: each sorted point's frame and label, the number of points of other
    frames in its voxel, and of those the ones with its label."""
    with _numba_threads(workers):
        g = _Cells(np.asarray(x), float(size))
        fs = _take_as(frame, g.order, np.int64)
        ls = _take_as(lab, g.order, np.int64)
        other = np.empty(fs.size, np.int64)
        same = np.empty(fs.size, np.int64)
        _voxel_counts(fs, ls, int(lab.max()) + 1 if lab.size else 1, g.start, other, same)
        return fs, ls, other, same
