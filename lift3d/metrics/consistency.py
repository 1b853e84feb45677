"""Multi-view consistency H(I, M) of per-pixel outputs, computed exactly (issue 2).

Definition (the one every function here implements; ``consistency_reference`` spells it out
as a plain loop):

* The inputs are F frames, each with world points ``x`` (H, W, 3), a validity mask and a
  per-pixel output: an ID map (H, W) int or a feature map (H, W, D) of any real dtype.
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

How it is exact and fast: no sampling and no neighbour lists. A compiled kernel
(:mod:`lift3d.metrics._ball`, numba) sorts the points into grid cells of side a hair over eps,
and for every pixel scans only the cells that can hold a point within eps (the 3 x 3 columns
around it, each a contiguous run of the sorted points, trimmed to the cells whose box is within
eps), evaluating the distance exactly as above. It sums, per pixel, the number of other-frame
neighbours and their similarity, on every core. ID maps cost O(pixels x candidates); feature
maps add O(neighbours x D). For one fixed radius a grid of cell eps is the natural index
(constant-time cell look-up, candidates read in memory order); the neighbours it finds are
exactly a KD-tree's ε-ball, which the tests check against ``consistency_reference`` (scipy's
cKDTree, one query per point).

Feature maps are normalised once per frame (in float64) and stored as unit float32 vectors
(float16 on request): the kernel's sums are float64, so the stored rounding is the only error,
at most :func:`feature_error_bound` on any h and on H (about 1.2e-7 for float32). They are
kept in memory up to ``ConsistencyConfig.feature_memory`` and in memory-mapped scratch files
beyond, and handed to the kernel one spatial block at a time (:mod:`lift3d.metrics._ball`):
no (N, D) float64 array is ever made outside :func:`consistency_reference`.

Units: ``eps`` is in the units of the points — metres for RGB-D and metric MASt3R pointmaps.
``ConsistencyConfig.eps`` defaults to 0.01 m, about two pixel footprints of a 640x480 depth
camera at 2 m; pass a value in the units of your points.
"""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from time import perf_counter

import numpy as np
from scipy.spatial import cKDTree

from lift3d.checks import check_shape
from lift3d.errors import InputError, ShapeError
from lift3d.metrics._dense import dense_index
from lift3d.metrics.config import BLOCK_POINTS

FEATURE_DTYPES = ("float32", "float16")

#: Unit roundoff u and half the smallest subnormal spacing eta of each storage type: a stored
#: unit component is within u |f_d| + eta of the exact one (round to nearest).
_ROUNDING = {"float32": (2.0**-24, 2.0**-150), "float16": (2.0**-11, 2.0**-25)}


def feature_error_bound(dtype: str, dim: int) -> float:
    """Largest change storing unit features as ``dtype`` can make to a cosine, hence to any
    h(p) (a mean of cosines) and to H (a mean of h).

    With e_d the rounding of component d (|e_d| <= u |f_d| + eta), Cauchy-Schwarz gives
    |sum_d e_pd f_qd| <= u + eta sqrt(D) for unit f, so
    |f~_p . f~_q - f_p . f_q| <= 2 (u + eta sqrt(D)) + (u + eta sqrt(D))^2. The sums in
    the kernel are float64 (float32 x float32 products are exact there): their rounding, about
    1e-16 per term, is left out. float32: about 1.2e-7; float16: about 9.8e-4 (D = 64).
    """
    if dtype not in _ROUNDING:
        raise InputError(f"feature precision {dtype!r} is not one of {FEATURE_DTYPES}")
    u, eta = _ROUNDING[dtype]
    e = u + eta * float(np.sqrt(dim))
    return 2 * e + e * e


@dataclass(frozen=True)
class ConsistencyConfig:
    """Settings of the consistency metric.

    eps: neighbour radius in the units of the points (metres for RGB-D); default 0.01 m.
    exclude_unlabelled: drop pixels with ID 0 from queries and neighbours (default False:
        0 is a class of its own).
    workers: threads of the neighbour kernel (-1 = all cores).
    feature_dtype: how unit features are stored: float32 (default; H within about 1.2e-7 of
        the float64 value) or float16 (half the memory; within
        :func:`feature_error_bound`, about 1e-3).
    feature_memory: bytes of unit features kept in memory (default 1 GiB); beyond it every
        frame's unit features go to a scratch file, memory-mapped when read.
    block_bytes: bytes of features the kernel holds at once: one spatial block (default
        256 MiB; a block is never smaller than one x-slab of the grid and its neighbours).
    scratch_dir: where the scratch files go (None = the system's temporary folder); they are
        removed when the call returns.
    """

    eps: float = 0.01
    exclude_unlabelled: bool = False
    workers: int = -1
    feature_dtype: str = "float32"
    feature_memory: int = 1 << 30
    block_bytes: int = 256 << 20
    scratch_dir: str | None = None


@dataclass
class ConsistencyResult:
    """Result of :func:`consistency` (and of the reference and per-mask variants).

    H: mean h over pixels with at least one neighbour (NaN if none has).
    per_frame: (F,) float64 mean h per frame, NaN where no pixel of that frame has neighbours.
    n_pixels: number of query pixels (valid, and labelled when unlabelled ones are excluded).
    n_with_neighbours: number of query pixels with at least one neighbour.
    maps: with ``return_maps``, per frame (H, W) float32 h, NaN where undefined.
    stats: where the exact path spent its time: wall seconds of flattening the inputs
        (``wall_flatten``), of the grid sort (``wall_sort``) and of the neighbour sums
        (``wall_sums``); and the points examined per pixel before the per-pixel trimming
        (``candidates_per_point``; neighbours are a fraction of it).
    """

    H: float
    per_frame: np.ndarray
    n_pixels: int
    n_with_neighbours: int
    maps: list[np.ndarray] | None = None
    stats: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# Input handling


@dataclass
class _Flat:
    x: np.ndarray  # (N, 3) world points of the query pixels, float32 or float64 as given
    frame: np.ndarray  # (N,) int32 frame index
    masks: list  # per frame: None (every pixel is a query) or the (H*W,) bool query mask
    out: object  # (N,) int64 IDs, (N, D) float64 unit features or UnitFeatures
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
    is_ids = np.ndim(outputs[0]) == 2
    masks, shapes, dim = [], [], None
    for i, (p, v, o) in enumerate(zip(points, valid, outputs, strict=True)):
        o = np.asarray(o)
        h, w = np.shape(v)[:2]
        check_shape(f"points[{i}]", p, (h, w, 3), np.floating)
        check_shape(f"valid[{i}]", v, (h, w), np.bool_)
        if is_ids:
            check_shape(f"outputs[{i}]", o, (h, w), np.integer)
        else:
            check_shape(f"outputs[{i}]", o, (h, w, None), np.number)
            if dim is not None and o.shape[2] != dim:
                raise ShapeError(f"outputs[{i}] has {o.shape[2]} channels, outputs[0] {dim}")
            dim = o.shape[2]
        m = _query_mask(np.asarray(p), v, o if is_ids and exclude_unlabelled else None)
        masks.append(None if m.all() else m.ravel())
        shapes.append((h, w))
    counts = [h * w if m is None else int(np.count_nonzero(m))
              for m, (h, w) in zip(masks, shapes, strict=True)]
    n = sum(counts)
    # points keep their precision (float32 pointmaps stay float32, half the memory): every
    # distance is taken in float64 from them, which is the same as converting first
    x = np.empty((n, 3), np.result_type(*[np.asarray(p).dtype for p in points]))
    out = np.empty(n, np.int64) if is_ids else np.empty((n, dim), np.float64)
    s = 0
    for p, o, m, (h, w), c in zip(points, outputs, masks, shapes, counts, strict=True):
        p, o = np.asarray(p).reshape(h * w, 3), np.asarray(o).reshape(h * w, *np.shape(o)[2:])
        e = s + c
        if m is None:  # every pixel is a query: plain copies
            x[s:e], out[s:e] = p, o
        else:
            np.compress(m, p, axis=0, out=x[s:e])
            out[s:e] = o[m]
        s = e
    frame = np.repeat(np.arange(len(points), dtype=np.int32), counts)
    if not is_ids:
        norm = np.linalg.norm(out, axis=1, keepdims=True)
        # zero vectors stay zero: cosine 0 with everything (module docstring)
        out = np.divide(out, norm, out=np.zeros_like(out), where=norm > 0)
    return _Flat(x, frame, masks, out, is_ids, shapes)


def _result(flat: _Flat, h: np.ndarray, return_maps: bool, stats=None) -> ConsistencyResult:
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
        s = 0
        for mask, (hh, ww) in zip(flat.masks, flat.shapes, strict=True):
            m = np.full(hh * ww, np.nan, np.float32)
            e = s + (hh * ww if mask is None else int(np.count_nonzero(mask)))
            m[slice(None) if mask is None else mask] = h[s:e]  # frames are contiguous runs
            maps.append(m.reshape(hh, ww))
            s = e
    return ConsistencyResult(H, per_frame, int(h.size), n_ok, maps, dict(stats or {}))


# ---------------------------------------------------------------------------------------------
# Exact fast path


def _h_exact(flat: _Flat, eps: float, cfg: ConsistencyConfig, stats: dict) -> np.ndarray:
    """Per point h (NaN where no other-frame point lies within eps)."""
    from lift3d.metrics._ball import ball_sums  # compiles (or loads) the kernel on first use

    block_rows = None
    if not flat.is_ids:
        block_rows = max(1, cfg.block_bytes // (4 * max(1, flat.out.dim)))
    cnt, sim = ball_sums(flat.x, flat.frame, flat.out, eps, cfg.workers, stats, block_rows)
    h = np.full(cnt.size, np.nan)
    has = cnt > 0
    h[has] = sim[has] / cnt[has]  # exact for IDs: same-ID count / count
    return h


class UnitFeatures:
    """Every query pixel's unit feature, (N, D), stored frame by frame as float32 (or float16),
    normalised once when the frame is added: in memory up to ``memory`` bytes, then in scratch
    ``.npy`` files under ``folder`` (all frames so far are moved there when the budget is
    passed), memory-mapped only while :meth:`rows` reads them, so they never stay resident."""

    def __init__(self, dim: int, dtype: str = "float32", memory: int = 1 << 30,
                 folder: str | None = None) -> None:
        if dtype not in FEATURE_DTYPES:
            raise InputError(f"feature precision {dtype!r} is not one of {FEATURE_DTYPES}",
                             fix="pass feature_dtype='float32' (default) or 'float16'")
        self.dim, self.dtype, self.memory = int(dim), np.dtype(dtype), int(memory)
        self._folder = folder
        self._tmp = None  # tempfile.TemporaryDirectory once the features spill to disk
        self._parts: list = []  # per frame: (n_f, D) array, or the path of its .npy
        self.offsets = [0]
        self._bytes = 0

    def add(self, f: np.ndarray) -> None:
        """Append one frame's (n_f, D) features (any real dtype), normalised to unit length
        in float64 (a zero vector stays zero: cosine 0 with everything)."""
        unit = np.empty(f.shape, self.dtype)
        step = max(1, (16 << 20) // max(1, 8 * self.dim))  # float64 work in 16 MiB pieces
        for s in range(0, f.shape[0], step):
            v = np.asarray(f[s:s + step], np.float64)
            norm = np.linalg.norm(v, axis=1, keepdims=True)
            unit[s:s + step] = np.divide(v, norm, out=np.zeros_like(v), where=norm > 0)
        self._parts.append(unit)
        self.offsets.append(self.offsets[-1] + unit.shape[0])
        self._bytes += unit.nbytes
        if self._tmp is not None or self._bytes > self.memory:
            self._spill()

    def _spill(self) -> None:
        import tempfile

        if self._tmp is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="lift3d-features-", dir=self._folder)
        for k, part in enumerate(self._parts):
            if isinstance(part, np.ndarray):
                path = f"{self._tmp.name}/{k:06d}.npy"
                np.save(path, part)
                self._parts[k] = path

    @property
    def on_disk(self) -> bool:
        return self._tmp is not None

    def rows(self, idx: np.ndarray) -> np.ndarray:
        """(len(idx), D) float32 features of the points ``idx`` (input positions)."""
        idx = np.asarray(idx, np.int64)
        perm = np.argsort(idx, kind="stable")
        sidx = idx[perm]
        out = np.empty((idx.size, self.dim), np.float32)
        cuts = np.searchsorted(sidx, self.offsets)
        for k, part in enumerate(self._parts):
            lo, hi = cuts[k], cuts[k + 1]
            if hi == lo:
                continue
            local = sidx[lo:hi] - self.offsets[k]
            if isinstance(part, np.ndarray):
                out[perm[lo:hi]] = part[local]
            else:  # mapped for this read only: its pages leave this process with the map
                mm = np.load(part, mmap_mode="r")
                out[perm[lo:hi]] = mm[local]
                del mm
        return out

    def close(self) -> None:
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None


def _query_mask(p: np.ndarray, v, ids=None) -> np.ndarray:
    """(H, W) bool: the query pixels of a frame: valid, with finite points, and (when ``ids``
    is given, unlabelled pixels excluded) an ID other than 0."""
    m = np.array(v, bool)
    for a in range(3):
        m &= np.isfinite(p[..., a])
    if ids is not None:
        m &= np.asarray(ids) != 0
    return m


def _gather(load, n_frames: int, exclude_unlabelled: bool, cfg: ConsistencyConfig) -> _Flat:
    """Read frames ``load(i) -> (points, valid, output)`` one at a time into the query pixels'
    points, frames and outputs: int64 IDs, or :class:`UnitFeatures` (normalised once, stored
    as ``cfg.feature_dtype``). One frame's arrays are held at a time."""
    if n_frames == 0:
        raise InputError("consistency: no frames given", fix="pass at least one frame")
    xs, outs, masks, shapes, counts = [], [], [], [], []
    is_ids, feats = None, None
    for i in range(n_frames):
        p, v, o = load(i)
        h, w = np.shape(v)[:2]
        check_shape(f"points[{i}]", p, (h, w, 3), np.floating)
        check_shape(f"valid[{i}]", v, (h, w), np.bool_)
        kind = np.ndim(o) == 2
        if is_ids is None:
            is_ids = kind
        if is_ids:
            check_shape(f"outputs[{i}]", o, (h, w), np.integer)
        else:
            check_shape(f"outputs[{i}]", o, (h, w, feats.dim if feats else None), np.number)
            if feats is None:
                feats = UnitFeatures(np.shape(o)[2], cfg.feature_dtype, cfg.feature_memory,
                                     cfg.scratch_dir)
        p = np.asarray(p)
        m = _query_mask(p, v, o if is_ids and exclude_unlabelled else None)
        full = bool(m.all())
        masks.append(None if full else m.ravel())
        shapes.append((h, w))
        flat_p = p.reshape(h * w, 3)
        flat_o = np.asarray(o).reshape(h * w, *np.shape(o)[2:])
        xs.append(flat_p.copy() if full else flat_p[m.ravel()])
        if is_ids:
            outs.append((flat_o if full else flat_o[m.ravel()]).astype(np.int64))
        else:
            feats.add(flat_o if full else flat_o[m.ravel()])
        counts.append(xs[-1].shape[0])
        del p, v, o, flat_p, flat_o
    x = np.concatenate(xs) if xs else np.zeros((0, 3), np.float32)
    del xs
    frame = np.repeat(np.arange(n_frames, dtype=np.int32), counts)
    out = (np.concatenate(outs) if outs else np.zeros(0, np.int64)) if is_ids else feats
    return _Flat(x, frame, masks, out, bool(is_ids), shapes)


def consistency_frames(
    load, n_frames: int, eps: float, exclude_unlabelled: bool = False,
    return_maps: bool = False, config: ConsistencyConfig | None = None,
    block_points: int | None = None, spill_dir=None,
) -> ConsistencyResult:
    """Exact H(I, M) over frames read one at a time (definition in the module docstring).

    load(i) -> (points (H, W, 3) float, valid (H, W) bool, output): the output is an
    (H, W) int ID map or an (H, W, D) feature map of any real dtype (a memory-mapped array is
    read once, for that frame only). Memory: the query pixels' points (12 bytes each for
    float32) and IDs; features are normalised once per frame and stored as
    ``config.feature_dtype``, in memory up to ``config.feature_memory`` bytes and in
    memory-mapped scratch files beyond, and the kernel reads them one spatial block
    (``config.block_bytes``) at a time: never an (N, D) float64 copy.

    block_points: for ID maps without ``return_maps``, bound the query points held at once
    too (a long sequence): spatial blocks with an eps margin, spilled under ``spill_dir``
    (:func:`_consistency_frames_blocked`; the same H bit for bit). None: one block.
    Other arguments as :func:`consistency`.
    """
    if block_points is not None and not return_maps and n_frames > 0 \
            and np.ndim(load(0)[2]) == 2:
        return _consistency_frames_blocked(load, n_frames, eps, exclude_unlabelled, block_points,
                                           spill_dir, config)
    if not eps > 0:
        raise InputError(f"consistency: eps must be > 0, got {eps}", fix="pass a radius in the "
                         "units of the points, e.g. 0.01 for metres")
    cfg = config or ConsistencyConfig(eps=eps, exclude_unlabelled=exclude_unlabelled)
    t = perf_counter()
    flat = _gather(load, n_frames, exclude_unlabelled, cfg)
    stats = {"wall_flatten": perf_counter() - t}
    try:
        h = _h_exact(flat, eps, cfg, stats)
    finally:
        if not flat.is_ids:
            stats["features_on_disk"] = float(flat.out.on_disk)
            flat.out.close()
    return _result(flat, h, return_maps, stats)


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
    valid: per frame (H, W) bool. outputs: per frame (H, W) int ID maps, or (H, W, D) feature
    maps (any real dtype; stored as unit float32 vectors, see :class:`ConsistencyConfig`).
    eps: neighbour radius (> 0). exclude_unlabelled: ID 0 pixels are neither queries nor
    neighbours (ignored for features). return_maps: add per-pixel h maps.
    config: kernel threads and feature storage (its eps and exclude_unlabelled are not used
    here). For frames read one at a time, :func:`consistency_frames`.
    """
    if not (len(points) == len(valid) == len(outputs)):
        raise ShapeError(
            f"consistency: got {len(points)} point maps, {len(valid)} valid masks and "
            f"{len(outputs)} output maps; pass one of each per frame"
        )
    return consistency_frames(lambda i: (points[i], valid[i], outputs[i]), len(points), eps,
                              exclude_unlabelled, return_maps, config)


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
    if not (len(points) == len(valid) == len(ids)):
        raise ShapeError(f"consistency_per_mask: got {len(points)} point maps, {len(valid)} "
                         f"valid masks and {len(ids)} ID maps; pass one of each per frame")
    return consistency_per_mask_frames(lambda i: (points[i], valid[i], ids[i]), len(points), eps,
                                       exclude_unlabelled, voxel)


def consistency_per_mask_frames(load, n_frames: int, eps: float,
                                exclude_unlabelled: bool = False, voxel: float | None = None
                                ) -> ConsistencyResult:
    """:func:`consistency_per_mask` over frames ``load(i) -> (points, valid, ids)`` read one
    at a time (as :func:`consistency_frames`)."""
    if not eps > 0:
        raise InputError(f"consistency_per_mask: eps must be > 0, got {eps}")
    if n_frames and np.ndim(load(0)[2]) != 2:
        raise ShapeError("consistency_per_mask: outputs must be (H, W) integer ID maps",
                         fix="the per-mask approximation scores masks; feature maps have none")
    flat = _gather(load, n_frames, exclude_unlabelled, ConsistencyConfig())
    n_frames = len(flat.shapes)
    if flat.x.shape[0] == 0:
        return ConsistencyResult(float("nan"), np.full(n_frames, np.nan), 0, 0)
    from lift3d.metrics._ball import voxel_counts

    ids, lab = dense_index(flat.out)
    n_lab = ids.size
    # in voxel order: per point T_m(v) other-frame observations in its voxel, T'_m(v) of them
    # with its ID; sums over a mask's pixels = sum_v c_m(v) T_m(v) (each pixel carries its voxel)
    frame, lab, t, t_same = voxel_counts(flat.x, flat.frame, lab, voxel or eps)
    _, mask = dense_index(frame * n_lab + lab)
    num = np.bincount(mask, weights=t_same)
    den = np.bincount(mask, weights=t)
    w = np.bincount(mask, weights=t > 0)
    mask_frame = np.zeros(num.size, np.int64)
    mask_frame[mask] = frame
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


# ---------------------------------------------------------------------------------------------
# Long sequences: exact H in bounded memory


def _query(i: int, p, v, o, exclude_unlabelled: bool) -> tuple[np.ndarray, np.ndarray]:
    """Frame i's query points (K, 3) and IDs (K,), in pixel order (as :func:`_flatten`)."""
    o = np.asarray(o)
    h, w = np.shape(v)[:2]
    check_shape(f"points[{i}]", p, (h, w, 3), np.floating)
    check_shape(f"valid[{i}]", v, (h, w), np.bool_)
    if not np.issubdtype(o.dtype, np.integer):
        raise ShapeError(f"consistency_frames: outputs[{i}] are not ID maps",
                         fix="feature maps go through consistency()")
    check_shape(f"outputs[{i}]", o, (h, w), np.integer)
    p = np.asarray(p)
    m = _query_mask(p, v, o if exclude_unlabelled else None).ravel()
    return p.reshape(h * w, 3)[m], o.reshape(h * w)[m]


class _PairwiseMean:
    """The mean numpy's ``a.mean()`` gives for a 1-D float64 array of known length ``n``,
    fed in order in pieces: numpy sums pairwise (halves rounded down to a multiple of 8, runs
    of <= 128 summed 8-way), so the same tree is evaluated here with ``np.add.reduce`` on
    each subtree of at most ``leaf`` values and the top of the tree in Python. Bit for bit
    equal to ``np.concatenate(pieces).mean()``; holds at most ``leaf`` values."""

    def __init__(self, n: int, leaf: int = 1 << 20) -> None:
        self.n = n
        self.sizes: list[int] = []
        self.tree = self._plan(n, max(leaf, 128))
        self.values: list[float] = []
        self.buf: list[np.ndarray] = []
        self.held = 0

    def _plan(self, n: int, leaf: int):
        if n <= leaf:
            self.sizes.append(n)
            return len(self.sizes) - 1
        n2 = n // 2
        n2 -= n2 % 8
        return (self._plan(n2, leaf), self._plan(n - n2, leaf))

    def add(self, a: np.ndarray) -> None:
        self.buf.append(a)
        self.held += a.size
        k = len(self.values)
        if k == len(self.sizes) or self.held < self.sizes[k]:
            return
        allv, s = np.concatenate(self.buf), 0
        while k < len(self.sizes) and allv.size - s >= self.sizes[k]:
            self.values.append(float(np.add.reduce(allv[s:s + self.sizes[k]])))
            s += self.sizes[k]
            k += 1
        self.buf = [allv[s:].copy()]
        self.held = self.buf[0].size

    def mean(self) -> float:
        if self.n == 0:
            return float("nan")

        def ev(t):
            return self.values[t] if isinstance(t, int) else ev(t[0]) + ev(t[1])

        return float(np.float64(ev(self.tree)) / self.n)


def _consistency_frames_blocked(
    load, n_frames: int, eps: float, exclude_unlabelled: bool = False,
    block_points: int = BLOCK_POINTS, spill_dir=None, config: ConsistencyConfig | None = None,
) -> ConsistencyResult:
    """Exact H(I, M) of ID maps over ``n_frames`` frames read by ``load(i) -> (points (H, W,
    3), valid (H, W), ids (H, W))``, in memory bounded by ``block_points`` whatever the number
    of frames (what :func:`consistency_frames` runs when given ``block_points``). Equal bit
    for bit to :func:`consistency` on the same frames (H, per_frame, n_pixels,
    n_with_neighbours; no maps).

    When the query points fit in one block they are gathered and measured as
    :func:`consistency` does. Otherwise (two reads of each frame): a first pass counts the
    points per grid bin, a k-d tree of bin boxes owning at most ``block_points`` each is cut
    from the counts (:mod:`lift3d.metrics._blocks`); a second pass reads the frames again and
    writes each box's points, plus those within eps of its faces, to files under
    ``spill_dir`` (default: the system's temporary folder; about 30 bytes per point); the
    kernel then runs box by box, and per-pixel h is gathered back frame by frame. Each owned
    point sees every point within eps of it, so its h is the one of a single run; H and the
    per-frame means are summed in the same order as :func:`consistency` sums them.
    """
    from lift3d.metrics._blocks import Histogram, KdTree

    if not eps > 0:
        raise InputError(f"consistency: eps must be > 0, got {eps}", fix="pass a radius in the "
                         "units of the points, e.g. 0.01 for metres")
    if n_frames == 0:
        raise InputError("consistency: no frames given", fix="pass at least one frame")
    cfg = config or ConsistencyConfig(eps=eps, exclude_unlabelled=exclude_unlabelled)
    t0 = perf_counter()
    # pass 1: counts per frame and per bin; the frames themselves while they fit one block
    hist = Histogram(8.0 * eps)
    counts = np.zeros(n_frames, np.int64)
    kept: list | None = []
    dtypes, id_range = set(), [0, 0]
    for f in range(n_frames):
        x, ids = _query(f, *load(f), exclude_unlabelled)
        counts[f] = x.shape[0]
        dtypes.add(x.dtype)
        if ids.size:
            id_range = [min(id_range[0], int(ids.min())), max(id_range[1], int(ids.max()))]
        hist.add(x)
        if kept is not None:
            kept.append((x, ids))
            if counts.sum() > block_points:
                kept = None
    if kept is not None:  # one block: what consistency() does, without the per-pixel maps
        x = np.concatenate([k[0] for k in kept])
        out = np.concatenate([k[1] for k in kept]).astype(np.int64)
        flat = _Flat(x, np.repeat(np.arange(n_frames, dtype=np.int32), counts),
                     [None] * n_frames, out, True, [(0, 0)] * n_frames)
        del kept
        stats = {"wall_flatten": perf_counter() - t0, "blocks": 1}
        return _result(flat, _h_exact(flat, eps, cfg, stats), False, stats)
    tree = KdTree(hist, block_points)
    id_dtype = np.int32 if -(2**31) <= id_range[0] and id_range[1] < 2**31 else np.int64
    with tempfile.TemporaryDirectory(prefix="lift3d-h-", dir=spill_dir) as tmp:
        spill = _Spill(Path(tmp), tree, hist.size, eps, counts, np.result_type(*dtypes), id_dtype)
        for f in range(n_frames):  # pass 2
            x, ids = _query(f, *load(f), exclude_unlabelled)
            spill.add_frame(f, x, ids)
        spill.close()
        stats = spill.block_sums(eps, cfg)
        H, per_frame = spill.gather()
    stats["wall_total"] = perf_counter() - t0
    return ConsistencyResult(H, per_frame, int(counts.sum()), spill.n_ok, None, stats)


class _Spill:
    """The files of :func:`consistency_frames` under ``root``: per block b, ``x{b}`` / ``l{b}``
    its points and IDs (per frame: the owned ones in pixel order, then its margin), then
    ``h{b}`` the owned points' h; ``owner`` the block of every query pixel, frame by frame.
    ``own_n`` / ``extra_n`` (blocks, frames): owned and margin points per block and frame."""

    def __init__(self, root: Path, tree, size: float, eps: float, counts: np.ndarray,
                 x_dtype, id_dtype) -> None:
        nb, n_frames = tree.n_blocks, counts.size
        self.root, self.tree, self.size, self.counts = root, tree, size, counts
        self.mu = eps / size * (1 + 1e-6) + 1e-6  # in bins: a hair over eps (see route)
        self.x_dtype, self.id_dtype = x_dtype, id_dtype
        self.owner_dtype = np.uint16 if nb < 2**16 else np.int32
        self.own_n = np.zeros((nb, n_frames), np.int64)
        self.extra_n = np.zeros((nb, n_frames), np.int64)
        self.n_ok = 0
        self._owner = open(root / "owner", "wb")
        self._files = [(open(root / f"x{b}", "wb"), open(root / f"l{b}", "wb")) for b in range(nb)]

    def close(self) -> None:
        self._owner.close()
        for fx, fl in self._files:
            fx.close()
            fl.close()

    def add_frame(self, f: int, x: np.ndarray, ids: np.ndarray) -> None:
        """Route frame f's query points to the blocks that own or need them."""
        from lift3d.metrics._blocks import route

        if x.shape[0] != self.counts[f]:
            self.close()
            raise InputError(f"consistency_frames: frame {f} gave {self.counts[f]} points, "
                             f"then {x.shape[0]}", fix="load(i) must return the same frame "
                             "every time")
        x, ids = np.ascontiguousarray(x, self.x_dtype), ids.astype(self.id_dtype)
        n = x.shape[0]
        own = np.empty(n, np.int64)
        e_idx, e_blk = np.empty(7 * n, np.int64), np.empty(7 * n, np.int64)
        m = route(x, self.size, self.mu, *self.tree.arrays, own, e_idx, e_blk)
        own.astype(self.owner_dtype).tofile(self._owner)
        nb = self.tree.n_blocks
        by_own = np.argsort(own, kind="stable")
        self.own_n[:, f] = np.bincount(own, minlength=nb)
        e_ord = np.argsort(e_blk[:m], kind="stable")
        e_idx, e_blk = e_idx[:m][e_ord], e_blk[:m][e_ord]
        self.extra_n[:, f] = np.bincount(e_blk, minlength=nb)
        o_end, e_end = np.cumsum(self.own_n[:, f]), np.cumsum(self.extra_n[:, f])
        for b in np.flatnonzero(self.own_n[:, f] + self.extra_n[:, f]):
            sel = np.concatenate([by_own[o_end[b] - self.own_n[b, f]:o_end[b]],
                                  e_idx[e_end[b] - self.extra_n[b, f]:e_end[b]]])
            x[sel].tofile(self._files[b][0])
            ids[sel].tofile(self._files[b][1])

    def block_sums(self, eps: float, cfg: ConsistencyConfig) -> dict[str, float]:
        """The kernel, block by block: ``h{b}`` = its owned points' h (NaN: no neighbour)."""
        n_frames = self.counts.size
        stats = {"blocks": self.tree.n_blocks, "wall_sort": 0.0, "wall_sums": 0.0}
        n_cand = 0.0
        for b in range(self.tree.n_blocks):
            seg = np.stack([self.own_n[b], self.extra_n[b]], 1).ravel()
            frame = np.repeat(np.repeat(np.arange(n_frames, dtype=np.int32), 2), seg)
            mine = np.repeat(np.tile(np.array([True, False]), n_frames), seg)
            flat = _Flat(np.fromfile(self.root / f"x{b}", self.x_dtype).reshape(-1, 3), frame,
                         [], np.fromfile(self.root / f"l{b}", self.id_dtype), True, [])
            st: dict[str, float] = {}
            h = _h_exact(flat, eps, cfg, st)[mine]
            del flat, frame
            self.n_ok += int(np.count_nonzero(~np.isnan(h)))
            h.tofile(self.root / f"h{b}")
            (self.root / f"x{b}").unlink()
            (self.root / f"l{b}").unlink()
            stats["wall_sort"] += st.get("wall_sort", 0.0)
            stats["wall_sums"] += st.get("wall_sums", 0.0)
            n_cand += st.get("candidates_per_point", 0.0) * seg.sum()
        seen = int((self.own_n + self.extra_n).sum())
        stats["candidates_per_point"] = n_cand / max(seen, 1)
        stats["points_seen_per_point"] = seen / max(int(self.counts.sum()), 1)
        return stats

    def gather(self) -> tuple[float, np.ndarray]:
        """H and the per-frame means from the blocks' h, frame by frame in pixel order: the
        order in which :func:`_result` sums them."""
        n_frames = self.counts.size
        per_frame = np.full(n_frames, np.nan)
        mean = _PairwiseMean(self.n_ok)
        hfiles = [open(self.root / f"h{b}", "rb") for b in range(self.tree.n_blocks)]
        try:
            with open(self.root / "owner", "rb") as fo:
                for f in range(n_frames):
                    own = np.fromfile(fo, self.owner_dtype, int(self.counts[f])).astype(np.int64)
                    by_own = np.argsort(own, kind="stable")
                    o_end = np.cumsum(self.own_n[:, f])
                    h = np.empty(own.size)
                    for b in np.flatnonzero(self.own_n[:, f]):
                        h[by_own[o_end[b] - self.own_n[b, f]:o_end[b]]] = np.fromfile(
                            hfiles[b], np.float64, int(self.own_n[b, f]))
                    hk = h[~np.isnan(h)]
                    mean.add(hk)
                    if hk.size:  # np.bincount's sequential sum, as _result takes it
                        tot = np.bincount(np.zeros(hk.size, np.intp), weights=hk)[0]
                        per_frame[f] = tot / hk.size
        finally:
            for fh in hfiles:
                fh.close()
        return mean.mean(), per_frame
