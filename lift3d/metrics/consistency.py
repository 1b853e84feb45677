"""Multi-view consistency H(I, M) of per-pixel outputs, computed exactly (issue 2).

Definition (the one every function here implements; ``consistency_reference`` spells it out
as a plain loop):

* The inputs are F frames, each with world points ``x`` (H, W, 3), a validity mask and a
  per-pixel output: an ID map (H, W) int or a feature map (H, W, D) float.
* The *query pixels* are the valid pixels (with ``exclude_unlabelled``: the valid pixels whose
  ID is not 0).
* The *neighbours* N(p) of a query pixel p of frame f are the query pixels q of every frame
  g != f with ``||x_q - x_p|| <= eps``. The distance is evaluated in float64 from the float32
  points as ``(dx*dx + dy*dy) + dz*dz <= eps*eps`` (the comparison scipy's cKDTree makes);
  a pair lying exactly at eps, to the last bit, is therefore decided by that rounding.
* h(p) = mean over q in N(p) of sim(p, q), with sim = [ID_p == ID_q] for ID maps (one-hot
  cosine), and sim = cos(f_p, f_q) = f_p/|f_p| . f_q/|f_q| for feature maps. A zero feature
  vector normalises to the zero vector: its cosine with anything is 0, it still counts as a
  neighbour and as a query (its own h is 0).
* ID 0 (unlabelled) is a class like any other by default; with ``exclude_unlabelled`` the
  pixels with ID 0 are removed before anything else: they are neither queries nor neighbours.
* h(p) is undefined (NaN) when N(p) is empty. H is the mean of h over the pixels where it is
  defined (NaN when there is none); per-frame values are the same mean within one frame.

H = 1 for a labelling that puts one label everywhere, so H is only meaningful beside a
segmentation quality figure (see :mod:`lift3d.metrics.video`).

How it is fast without sampling (ID maps): with A(p) the number of points within eps in all
frames, A_f(p) the same in p's own frame, and S(p), S_f(p) the same counts restricted to p's ID,
h(p) = (S - S_f) / (A - A_f). These are radius *counts* (scipy cKDTree
``query_ball_point(return_length=True)``, multi-threaded; own-frame counts use one tree per
frame; counts by ID use a 4th coordinate ``ID * 2 eps`` so that points of different IDs are
never within eps while distances inside one ID stay bit-identical). Most pixels need no count
at all: a pixel whose eps-cell neighbourhood (27 cells of side eps) holds one ID only has
S = A and S_f = A_f, so h(p) = 1 as soon as one other-frame point lies within eps; that is
certain when the 27 cells of side eps / (2 sqrt 3) around p (all closer than eps) hold a point
of another frame. Counts are taken only for the remaining pixels. Feature maps use neighbour
lists in chunks and a sparse product (sum_q cos(p, q) = f_p . sum_q f_q); they cost
O(pixels x neighbours x D).

Units: ``eps`` is in the units of the points — metres for RGB-D and metric MASt3R pointmaps.
``ConsistencyConfig.eps`` defaults to 0.01 m, about two pixel footprints of a 640x480 depth
camera at 2 m; pass a value in the units of your points.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.spatial import cKDTree

from lift3d.checks import check_shape
from lift3d.errors import InputError, ShapeError


@dataclass(frozen=True)
class ConsistencyConfig:
    """Settings of the consistency metric.

    eps: neighbour radius in the units of the points (metres for RGB-D); default 0.01 m.
    exclude_unlabelled: drop pixels with ID 0 from queries and neighbours (default False:
        0 is a class of its own).
    workers: threads for the KD-tree queries (-1 = all cores).
    chunk: query points per KD-tree call, bounds the memory of neighbour lists (features).
    """

    eps: float = 0.01
    exclude_unlabelled: bool = False
    workers: int = -1
    chunk: int = 200_000


@dataclass
class ConsistencyResult:
    """Result of :func:`consistency` (and of the reference and per-mask variants).

    H: mean h over pixels with at least one neighbour (NaN if none has).
    per_frame: (F,) float64 mean h per frame, NaN where no pixel of that frame has neighbours.
    n_pixels: number of query pixels (valid, and labelled when unlabelled ones are excluded).
    n_with_neighbours: number of query pixels with at least one neighbour.
    maps: with ``return_maps``, per frame (H, W) float32 h, NaN where undefined.
    """

    H: float
    per_frame: np.ndarray
    n_pixels: int
    n_with_neighbours: int
    maps: list[np.ndarray] | None = None


# ---------------------------------------------------------------------------------------------
# Input handling


@dataclass
class _Flat:
    x: np.ndarray  # (N, 3) float64 world points of the query pixels
    frame: np.ndarray  # (N,) int64 frame index
    pix: np.ndarray  # (N,) int64 flat pixel index within its frame
    out: np.ndarray  # (N,) int64 IDs or (N, D) float64 unit features
    is_ids: bool
    shapes: list[tuple[int, int]]


def _flatten(points, valid, outputs, exclude_unlabelled: bool) -> _Flat:
    if not (len(points) == len(valid) == len(outputs)):
        raise ShapeError(
            f"consistency: got {len(points)} point maps, {len(valid)} valid masks and "
            f"{len(outputs)} output maps; pass one of each per frame"
        )
    if len(points) == 0:
        raise InputError("consistency: no frames given", fix="pass at least one frame")
    is_ids = np.issubdtype(np.asarray(outputs[0]).dtype, np.integer)
    xs, fs, ps, os_ = [], [], [], []
    shapes = []
    for i, (p, v, o) in enumerate(zip(points, valid, outputs, strict=True)):
        o = np.asarray(o)
        h, w = np.shape(v)[:2]
        check_shape(f"points[{i}]", p, (h, w, 3), np.floating)
        check_shape(f"valid[{i}]", v, (h, w), np.bool_)
        if is_ids:
            check_shape(f"outputs[{i}]", o, (h, w), np.integer)
        else:
            check_shape(f"outputs[{i}]", o, (h, w, None), np.floating)
        m = np.asarray(v).copy()
        m &= np.isfinite(p).all(axis=-1)
        if is_ids and exclude_unlabelled:
            m &= o != 0
        idx = np.flatnonzero(m)
        shapes.append((h, w))
        xs.append(np.asarray(p, np.float64).reshape(-1, 3)[idx])
        fs.append(np.full(idx.size, i, np.int64))
        ps.append(idx.astype(np.int64))
        os_.append(o.reshape(h * w, *o.shape[2:])[idx])
    out = np.concatenate(os_)
    if is_ids:
        out = out.astype(np.int64)
    else:
        out = out.astype(np.float64)
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        # zero vectors stay zero: cosine 0 with everything (module docstring)
        out = np.divide(out, norm, out=np.zeros_like(out), where=norm > 0)
    return _Flat(np.concatenate(xs), np.concatenate(fs), np.concatenate(ps), out, is_ids, shapes)


def _result(flat: _Flat, h: np.ndarray, return_maps: bool) -> ConsistencyResult:
    """Aggregate per-point h (NaN = no neighbour) into H, per-frame means and maps."""
    n_frames = len(flat.shapes)
    ok = ~np.isnan(h)
    n_ok = int(ok.sum())
    H = float(h[ok].mean()) if n_ok else float("nan")
    cnt = np.bincount(flat.frame[ok], minlength=n_frames)
    tot = np.bincount(flat.frame[ok], weights=h[ok], minlength=n_frames)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_frame = np.where(cnt > 0, tot / np.maximum(cnt, 1), np.nan)
    maps = None
    if return_maps:
        maps = []
        for i, (hh, ww) in enumerate(flat.shapes):
            m = np.full(hh * ww, np.nan, np.float32)
            sel = flat.frame == i
            m[flat.pix[sel]] = h[sel]
            maps.append(m.reshape(hh, ww))
    return ConsistencyResult(H, per_frame, int(h.size), n_ok, maps)


# ---------------------------------------------------------------------------------------------
# Exact fast path


def _grouped_x(x: np.ndarray, group: np.ndarray | None, eps: float) -> np.ndarray:
    """Points with a 4th coordinate ``group * 2 eps``: other groups are always farther than eps,
    distances inside a group are unchanged to the bit (the 4th difference is exactly 0)."""
    if group is None:
        return x
    return np.concatenate([x, (group.astype(np.float64) * (2.0 * eps))[:, None]], axis=1)


def _tree_counts(xd, gd, xq, gq, eps: float, cfg: ConsistencyConfig) -> np.ndarray:
    """For each query point, the number of data points of the same group within eps."""
    if xq.shape[0] == 0 or xd.shape[0] == 0:
        return np.zeros(xq.shape[0], np.int64)
    tree = cKDTree(_grouped_x(xd, gd, eps), leafsize=16, balanced_tree=False,
                   compact_nodes=False)
    xq = _grouped_x(xq, gq, eps)
    out = np.empty(xq.shape[0], np.int64)
    step = cfg.chunk * 10
    for s in range(0, xq.shape[0], step):
        out[s : s + step] = tree.query_ball_point(xq[s : s + step], eps, return_length=True,
                                                  workers=cfg.workers)
    return out


def _counts(x, group, data_sel, query, eps, cfg: ConsistencyConfig) -> np.ndarray:
    """Number of points among ``x[data_sel]`` in the same group within eps of each query point
    ``x[query]`` (itself included when it is among the data). Returns (n_query,) int64."""
    g = None if group is None else group
    return _tree_counts(x[data_sel], None if g is None else g[data_sel], x[query],
                        None if g is None else g[query], eps, cfg)


def _counts_own_frame(x, frame, group, data_sel, query, eps, cfg) -> np.ndarray:
    """:func:`_counts` restricted to each query's own frame, with one small tree per frame
    (about twice as fast as one tree grouped by frame)."""
    out = np.empty(query.size, np.int64)
    order = np.argsort(frame[query], kind="stable")
    qs = query[order]
    data = np.flatnonzero(data_sel)
    data = data[np.argsort(frame[data], kind="stable")]
    n_frames = int(frame.max()) + 1
    qb = np.searchsorted(frame[qs], np.arange(n_frames + 1))
    db = np.searchsorted(frame[data], np.arange(n_frames + 1))
    for f in range(n_frames):  # a loop over frames, not points
        if qb[f] == qb[f + 1]:
            continue
        qf, df = qs[qb[f] : qb[f + 1]], data[db[f] : db[f + 1]]
        gd = None if group is None else group[df]
        gq = None if group is None else group[qf]
        out[order[qb[f] : qb[f + 1]]] = _tree_counts(x[df], gd, x[qf], gq, eps, cfg)
    return out


class _Grid:
    """Integer cell keys of points on a uniform grid; keys of neighbouring cells are the key
    plus a constant, so a 27-neighbourhood is 27 shifted copies of a key array."""

    def __init__(self, x: np.ndarray, size: float):
        lo = x.min(axis=0)
        ic = np.floor((x - lo) / size).astype(np.int64) + 1  # margin of one cell for offsets
        dims = ic.max(axis=0) + 2
        if float(dims[0]) * float(dims[1]) * float(dims[2]) > 2.0**62:
            raise InputError(
                f"consistency: the points span {dims.tolist()} cells of size {size:g}",
                fix="eps is far too small for these points; pass eps in the units of the points",
            )
        self.strides = np.array([dims[1] * dims[2], dims[2], 1], np.int64)
        self.key = ic @ self.strides

    def offsets(self) -> np.ndarray:
        o = np.stack(np.meshgrid([-1, 0, 1], [-1, 0, 1], [-1, 0, 1], indexing="ij"), -1)
        return o.reshape(-1, 3) @ self.strides


def _uniq(a: np.ndarray) -> np.ndarray:
    """Sorted unique values of a 1-D int array (sort based: numpy's hash unique is slower on
    tens of millions of int64 keys)."""
    s = np.sort(a)
    return s[np.r_[True, s[1:] != s[:-1]]] if s.size else s


def _uniq_inv(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique values of a 1-D int array and the index of each element among them."""
    order = np.argsort(a, kind="stable")
    s = a[order]
    first = np.r_[True, s[1:] != s[:-1]] if s.size else np.zeros(0, bool)
    inv = np.empty(a.size, np.int64)
    inv[order] = np.cumsum(first) - 1
    return s[first], inv


def _member(a: np.ndarray, sorted_set: np.ndarray) -> np.ndarray:
    """(len(a),) bool: a in sorted_set."""
    if sorted_set.size == 0:
        return np.zeros(a.size, bool)
    pos = np.minimum(np.searchsorted(sorted_set, a), sorted_set.size - 1)
    return sorted_set[pos] == a


def _pair_key(key: np.ndarray, value: np.ndarray, n_val: int) -> np.ndarray:
    """One int64 key per (key, value) pair; ``value`` dense in [0, n_val)."""
    if key.size and float(key.max() + 1) * n_val >= 2.0**62:
        raise InputError("consistency: too many cells x groups for int64 keys",
                         fix="pass a larger eps (in the units of the points)")
    return key * n_val + value


def _pure_points(grid: _Grid, label: np.ndarray, n_lab: int) -> np.ndarray:
    """(N,) bool: True where every point within eps certainly has the point's own ID
    (its 27 cells of side eps hold a single ID). Conservative: False may still be pure."""
    cell_lab = _uniq(_pair_key(grid.key, label, n_lab))
    if cell_lab.size > 0.25 * grid.key.size:  # sparse points: shortcut does not pay
        return np.zeros(grid.key.size, bool)
    cell, lab = cell_lab // n_lab, cell_lab % n_lab
    # distinct IDs over the 27-neighbourhood of every occupied cell
    shifted = _uniq(_pair_key((cell[:, None] + grid.offsets()[None, :]).ravel(),
                              np.repeat(lab, 27), n_lab)) // n_lab
    first = np.r_[True, shifted[1:] != shifted[:-1]]
    ukey = shifted[first]
    n_ids = np.diff(np.r_[np.flatnonzero(first), shifted.size])
    return n_ids[np.searchsorted(ukey, grid.key)] == 1  # a point's own cell is among ukey


def _cell_frames(key: np.ndarray, frame: np.ndarray, n_frames: int):
    """Occupied cells (sorted) with the number of distinct frames, and min / max frame."""
    cf = _uniq(_pair_key(key, frame, n_frames))
    cell, fr = cf // n_frames, cf % n_frames
    first = np.r_[True, cell[1:] != cell[:-1]]
    last = np.r_[cell[1:] != cell[:-1], True]
    n = np.diff(np.r_[np.flatnonzero(first), cell.size])
    return cell[first], n, fr[first], fr[last]


def _other_frame_within_eps(x, frame, n_frames: int, eps: float, sel: np.ndarray) -> np.ndarray:
    """(len(sel),) bool: True where a point of another frame certainly lies within eps of the
    point ``sel``. Two sufficient tests, cheap first: the point's cell of side eps/2 (diameter
    < eps) holds another frame; else one of the 27 cells of side eps / (2 sqrt 3) around it
    (all closer than eps) does. False proves nothing."""
    out = np.zeros(sel.size, bool)
    grid = _Grid(x, 0.5 * eps * (1.0 - 1e-6))
    ucell, n_fr, _, _ = _cell_frames(grid.key, frame, n_frames)
    out[:] = n_fr[np.searchsorted(ucell, grid.key[sel])] >= 2
    rest = sel[~out]
    if rest.size == 0:
        return out
    grid = _Grid(x, eps / (2.0 * np.sqrt(3.0)) * (1.0 - 1e-6))
    ucell, n_fr, f_min, f_max = _cell_frames(grid.key, frame, n_frames)
    # only the cells of the undecided points are targets; every occupied cell is a source
    tcell, t_idx = _uniq_inv(grid.key[rest])
    any_multi = np.zeros(tcell.size, bool)
    lo = np.full(tcell.size, n_frames)
    hi = np.full(tcell.size, -1)
    for d in grid.offsets():
        pos = np.minimum(np.searchsorted(ucell, tcell + d), ucell.size - 1)
        hit = ucell[pos] == tcell + d
        src = pos[hit]
        any_multi[hit] |= n_fr[src] >= 2
        lo[hit] = np.minimum(lo[hit], f_min[src])
        hi[hit] = np.maximum(hi[hit], f_max[src])
    f = frame[rest]
    lo, hi, any_multi = lo[t_idx], hi[t_idx], any_multi[t_idx]
    out[~out] = any_multi | (lo != hi) | (lo != f)
    return out


def _h_ids(flat: _Flat, eps: float, cfg: ConsistencyConfig) -> np.ndarray:
    x, frame, ids = flat.x, flat.frame, flat.out
    n = x.shape[0]
    h = np.full(n, np.nan)
    if n == 0:
        return h
    _, lab = _uniq_inv(ids)  # dense label index 0..L-1
    n_lab = int(lab.max()) + 1
    # cells a hair larger than eps: a neighbour within eps is always in the 27 cells around
    grid = _Grid(x, eps * (1.0 + 1e-6))
    pure = _pure_points(grid, lab, n_lab)
    n_frames = len(flat.shapes)
    sure = np.zeros(n, bool)
    cand = np.flatnonzero(pure)
    sure[cand] = _other_frame_within_eps(x, frame, n_frames, eps, cand)
    h[sure] = 1.0
    need = ~sure  # these need A - A_f (whether any neighbour exists, and how many)
    if not need.any():
        return h
    # only points in the 27 cells around a needed point can be its neighbours
    near = _near_cells(grid, need)
    q = np.flatnonzero(need)
    a = _counts(x, None, near, q, eps, cfg)
    a_f = _counts_own_frame(x, frame, None, near, q, eps, cfg)
    n_other = a - a_f
    s = n_other.astype(np.float64)  # pure points: S - S_f = A - A_f
    impure = ~pure[q]
    if impure.any():
        qi = q[impure]
        sel = np.zeros(n, bool)
        sel[qi] = True
        near_i = _near_cells(grid, sel)
        s_all = _counts(x, lab, near_i, qi, eps, cfg)
        s_f = _counts_own_frame(x, frame, lab, near_i, qi, eps, cfg)
        s[impure] = s_all - s_f
    has = n_other > 0
    h[q[has]] = s[has] / n_other[has]
    return h


def _near_cells(grid: _Grid, sel: np.ndarray) -> np.ndarray:
    """(N,) bool: points lying in the 27-cell neighbourhood of any cell holding a ``sel``
    point — the only points that can be within eps of a ``sel`` point."""
    cells = _uniq(grid.key[sel])
    around = _uniq((cells[:, None] + grid.offsets()[None, :]).ravel())
    return _member(grid.key, around)


def _h_features(flat: _Flat, eps: float, cfg: ConsistencyConfig) -> np.ndarray:
    x, frame, f = flat.x, flat.frame, flat.out
    n = x.shape[0]
    h = np.full(n, np.nan)
    if n == 0:
        return h
    tree = cKDTree(x, leafsize=16, balanced_tree=False, compact_nodes=False)
    step = max(1, cfg.chunk // 10)
    for s in range(0, n, step):
        e = min(n, s + step)
        lists = tree.query_ball_point(x[s:e], eps, workers=cfg.workers, return_sorted=False)
        lens = np.fromiter((len(v) for v in lists), np.int64, e - s)
        cols = np.fromiter((j for v in lists for j in v), np.int64, int(lens.sum()))
        rows = np.repeat(np.arange(s, e), lens)
        keep = frame[cols] != frame[rows]
        rows, cols = rows[keep] - s, cols[keep]
        cnt = np.bincount(rows, minlength=e - s)
        adj = sparse.csr_matrix((np.ones(rows.size), (rows, cols)), shape=(e - s, n))
        sums = adj @ f  # (e - s, D): sum of unit features of the neighbours
        has = cnt > 0
        dots = np.einsum("nd,nd->n", f[s:e], sums)
        h[s:e][has] = dots[has] / cnt[has]
    return h


def consistency(
    points: list[np.ndarray],
    valid: list[np.ndarray],
    outputs: list[np.ndarray],
    eps: float,
    exclude_unlabelled: bool = False,
    return_maps: bool = False,
    config: ConsistencyConfig | None = None,
) -> ConsistencyResult:
    """Exact multi-view consistency H(I, M) (definition in the module docstring).

    points: per frame (H, W, 3) float world points (units of ``eps``; metres for RGB-D).
    valid: per frame (H, W) bool. outputs: per frame (H, W) int ID maps, or (H, W, D) float
    feature maps. eps: neighbour radius (> 0). exclude_unlabelled: ID 0 pixels are neither
    queries nor neighbours (ignored for features). return_maps: add per-pixel h maps.
    config: workers / chunk size (its eps and exclude_unlabelled are not used here).
    """
    if not eps > 0:
        raise InputError(f"consistency: eps must be > 0, got {eps}", fix="pass a radius in the "
                         "units of the points, e.g. 0.01 for metres")
    cfg = config or ConsistencyConfig(eps=eps, exclude_unlabelled=exclude_unlabelled)
    flat = _flatten(points, valid, outputs, exclude_unlabelled)
    h = _h_ids(flat, eps, cfg) if flat.is_ids else _h_features(flat, eps, cfg)
    return _result(flat, h, return_maps)


def consistency_reference(
    points: list[np.ndarray],
    valid: list[np.ndarray],
    outputs: list[np.ndarray],
    eps: float,
    exclude_unlabelled: bool = False,
    return_maps: bool = False,
) -> ConsistencyResult:
    """Plain per-point implementation of :func:`consistency`, for tests on small inputs only
    (a Python loop over points with one KD-tree radius search each)."""
    flat = _flatten(points, valid, outputs, exclude_unlabelled)
    tree = cKDTree(flat.x)
    h = np.full(flat.x.shape[0], np.nan)
    for i in range(flat.x.shape[0]):
        nb = np.asarray(tree.query_ball_point(flat.x[i], eps), np.int64)
        nb = nb[flat.frame[nb] != flat.frame[i]]
        if nb.size == 0:
            continue
        if flat.is_ids:
            h[i] = np.mean(flat.out[nb] == flat.out[i])
        else:
            h[i] = np.mean(flat.out[nb] @ flat.out[i])
    return _result(flat, h, return_maps)


# ---------------------------------------------------------------------------------------------
# Per-mask approximation


def consistency_per_mask(
    points: list[np.ndarray],
    valid: list[np.ndarray],
    ids: list[np.ndarray],
    eps: float,
    exclude_unlabelled: bool = False,
    voxel: float | None = None,
) -> ConsistencyResult:
    """The cheap per-mask approximation of H: each mask (one ID in one frame) is scored as a unit.

    Definition: voxelise all query pixels (as in :func:`consistency`) on a grid of side
    ``voxel`` (default ``eps``). For voxel v let O(v) be its number of points, O_f(v) those of
    frame f, O_l(v) those with ID l and O_fl(v) those of frame f with ID l. The mask m = (f, l)
    with c_m(v) = O_fl(v) pixels in v sees T_m(v) = O(v) - O_f(v) observations of other frames
    there, of which T'_m(v) = O_l(v) - O_fl(v) carry its ID. Its score is
    ``sum_v c_m(v) T'_m(v) / sum_v c_m(v) T_m(v)`` (the share of same-ID observations among the
    other-frame observations in its voxels, each voxel weighted by the mask's pixels there), and
    its weight is its pixel count in voxels with T_m(v) > 0. H is the weighted mean of the mask
    scores; ``per_frame`` the same within each frame. Masks with ID 0 are scored like others
    unless ``exclude_unlabelled`` drops those pixels everywhere. It equals 1 when every voxel
    holds one ID, and costs one sort of the points (no radius search). ``maps`` is None.
    """
    if not eps > 0:
        raise InputError(f"consistency_per_mask: eps must be > 0, got {eps}")
    flat = _flatten(points, valid, ids, exclude_unlabelled)
    if not flat.is_ids:
        raise ShapeError("consistency_per_mask: outputs must be (H, W) integer ID maps")
    n_frames = len(flat.shapes)
    if flat.x.shape[0] == 0:
        return ConsistencyResult(float("nan"), np.full(n_frames, np.nan), 0, 0)
    _, vox = _uniq_inv(_Grid(flat.x, voxel or eps).key)
    _, lab = _uniq_inv(flat.out)
    n_lab = int(lab.max()) + 1

    def count(key):
        _, inv = _uniq_inv(key)
        return np.bincount(inv)[inv]

    o = count(vox)
    o_f = count(vox * n_frames + flat.frame)
    o_l = count(vox * n_lab + lab)
    o_fl = count((vox * n_frames + flat.frame) * n_lab + lab)
    t = (o - o_f).astype(np.float64)  # per point: other-frame observations in its voxel
    t_same = (o_l - o_fl).astype(np.float64)
    # per point sums over pixels of a mask = sum_v c_m(v) * T_m(v) (each pixel carries its voxel)
    _, mask = _uniq_inv(flat.frame * n_lab + lab)
    num = np.bincount(mask, weights=t_same)
    den = np.bincount(mask, weights=t)
    w = np.bincount(mask, weights=(t > 0).astype(np.float64))
    mask_frame = np.zeros(num.size, np.int64)
    mask_frame[mask] = flat.frame
    ok = den > 0
    score = np.where(ok, num / np.where(ok, den, 1.0), 0.0)
    n_ok = int(w.sum())
    H = float((score * w).sum() / w.sum()) if n_ok else float("nan")
    wf = np.bincount(mask_frame, weights=w, minlength=n_frames)
    sf = np.bincount(mask_frame, weights=score * w, minlength=n_frames)
    with np.errstate(invalid="ignore", divide="ignore"):
        per_frame = np.where(wf > 0, sf / np.maximum(wf, 1e-300), np.nan)
    return ConsistencyResult(H, per_frame, int(flat.x.shape[0]), n_ok)


def consistency_of_labels(geometry, labels, config: ConsistencyConfig | None = None,
                          return_maps: bool = False) -> ConsistencyResult:
    """Exact H of a :class:`~lift3d.types.Labels` on a 3D :class:`~lift3d.types.Geometry`
    (the call the pipeline and the CLI make), with ``config.eps`` and
    ``config.exclude_unlabelled``."""
    cfg = config or ConsistencyConfig()
    if geometry.points is None:
        raise InputError("consistency needs world points; this geometry is 2D only",
                         fix="use an RGB-D or MASt3R geometry source")
    return consistency(geometry.points, geometry.valid, labels.maps, cfg.eps,
                       cfg.exclude_unlabelled, return_maps, cfg)
