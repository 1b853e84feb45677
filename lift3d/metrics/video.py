"""2D segmentation quality of ID maps against ground truth (issues 2 and 5).

Predictions are per-frame ID maps (H, W) int (0 = unlabelled; an ID is the same object in
every frame). Ground truth is either one binary mask per frame (single-object protocol) or
per-frame instance maps (H, W) int with 0 = background (multi-object, DAVIS 2017 style).

ID selection. Predicted IDs are free labels, so each ground-truth object is compared with
the predicted ID that fits it best, chosen by one of two rules:

* per frame  (``"frame"``):    in each frame the ID with the best IoU against the object;
* per sequence (``"sequence"``): one ID for the whole sequence, the one with the best mean
  IoU over frames (stricter: an ID switch costs).

The candidates always include the empty mask (no ID), so a frame where the object is absent
is scored 1 when nothing is selected there. Conventions for empty masks follow DAVIS: IoU 1
when both are empty; precision 1 for an empty prediction, recall 1 for an empty ground
truth; F1 (Dice) 0 when exactly one is empty.

Everything that counts pixels goes through one sparse confusion per sequence: the
(frame, predicted ID, ground-truth ID) triples that occur and their pixels, counted one frame
at a time (lazy sequences are read frame by frame, never held), so memory grows with the
pairs that meet, not with frames x IDs x objects; only the boundary measure F works per frame
and object, as image operations.

DAVIS measures (davis2017-evaluation definitions, re-implemented): J = region IoU; F =
boundary F-measure with boundaries from ``seg2bmap`` and a match tolerance of
``ceil(bound_th * image diagonal)`` pixels (bound_th = 0.008), matching by dilation with a
disk of that radius; per object statistics mean, recall (share of frames with value > 0.5)
and decay (mean of the first quarter of frames minus mean of the last quarter).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property

import cv2
import numpy as np
from skimage.morphology import disk

from lift3d.checks import check_shape
from lift3d.errors import InputError, ShapeError
from lift3d.metrics._dense import dense_index

SELECTION_RULES = ("frame", "sequence")


@dataclass(frozen=True)
class VideoMetricsConfig:
    """bound_th: DAVIS boundary tolerance, a fraction of the image diagonal (< 1) or pixels
    (>= 1); default 0.008 as DAVIS. skip_first_last: drop the first and last frame from the
    DAVIS statistics, as the DAVIS semi-supervised protocol does (default False). void_id:
    ground-truth value of "void" pixels left out of every pixel count (DAVIS PNGs use 255);
    None = no void (default)."""

    bound_th: float = 0.008
    skip_first_last: bool = False
    void_id: int | None = None


# ---------------------------------------------------------------------------------------------
# Confusion tensor


@dataclass
class Confusion:
    """Pixel counts of a sequence, sparse: only the (frame, predicted ID, ground-truth ID)
    triples that occur, so memory grows with the pairs that meet, not frames x IDs x objects.

    pred_ids: (P,) predicted IDs, index 0 is the empty selection (ID 0 = unlabelled pixels
        are never a candidate; their counts are kept at index 0 only for the areas).
    gt_ids: (G,) ground-truth IDs, index 0 is background.
    frame, pred, gt: (K,) int64 frame, index into pred_ids, index into gt_ids of every
        non-zero count, sorted by (frame, pred, gt); count: (K,) int64 its pixels.
    gt_area: (F, G) int64 pixels of each ground-truth ID in each frame (dense: objects are few).
    """

    pred_ids: np.ndarray
    gt_ids: np.ndarray
    frame: np.ndarray
    pred: np.ndarray
    gt: np.ndarray
    count: np.ndarray
    gt_area: np.ndarray

    @property
    def n_frames(self) -> int:
        return self.gt_area.shape[0]

    def _key(self, f, p, g) -> np.ndarray:
        n_p, n_g = self.pred_ids.size, self.gt_ids.size
        return (np.asarray(f, np.int64) * n_p + p) * n_g + g

    @cached_property
    def _keys(self) -> np.ndarray:  # sorted, as the triples are
        return self._key(self.frame, self.pred, self.gt)

    @cached_property
    def _pred_area(self) -> tuple[np.ndarray, np.ndarray]:  # sorted (frame * P + pred), pixels
        key = self.frame * self.pred_ids.size + self.pred
        # the triples are sorted by (frame, pred): each run of one key is contiguous
        starts = np.flatnonzero(np.r_[True, key[1:] != key[:-1]]) if key.size else key
        return key[starts], np.add.reduceat(self.count, starts) if key.size else key

    def _lookup(self, keys: np.ndarray, table: np.ndarray, values: np.ndarray) -> np.ndarray:
        i = np.minimum(np.searchsorted(table, keys), max(table.size - 1, 0))
        if not table.size:
            return np.zeros(keys.shape, np.int64)
        return np.where(table[i] == keys, values[i], 0)

    def inter_at(self, f, p, g) -> np.ndarray:
        """Pixels of predicted index ``p`` and ground-truth index ``g`` in frame ``f``
        (arrays that broadcast; 0 where they do not meet)."""
        f, p, g = np.broadcast_arrays(f, p, g)
        return self._lookup(self._key(f, p, g), self._keys, self.count)

    def pred_area_at(self, f, p) -> np.ndarray:
        """Pixels of predicted index ``p`` in frame ``f`` (arrays that broadcast)."""
        f, p = np.broadcast_arrays(f, p)
        table, area = self._pred_area
        return self._lookup(np.asarray(f, np.int64) * self.pred_ids.size + p, table, area)

    def pred_area_total(self) -> np.ndarray:  # (P,) pixels over all frames
        return np.bincount(self.pred, self.count, minlength=self.pred_ids.size).astype(np.int64)

    def pooled(self) -> np.ndarray:
        """(P, G) int64 pixels of each (predicted, ground-truth) pair summed over frames."""
        n_g = self.gt_ids.size
        out = np.bincount(self.pred * n_g + self.gt, self.count, self.pred_ids.size * n_g)
        return out.astype(np.int64).reshape(self.pred_ids.size, n_g)

    def iou_at(self, sel: np.ndarray) -> np.ndarray:
        """(F, G) IoU of the predicted index ``sel[f, g]`` with ground-truth index g in frame f;
        index 0 is the empty prediction (IoU 1 where the object is absent, else 0)."""
        f, g = np.meshgrid(np.arange(self.n_frames), np.arange(self.gt_ids.size), indexing="ij")
        inter = self.inter_at(f, sel, g).astype(np.float64)
        union = self.pred_area_at(f, sel) + self.gt_area - inter
        iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
        return np.where(sel == 0, (self.gt_area == 0).astype(np.float64), iou)

    def _pair_iou(self) -> np.ndarray:
        """(K,) IoU of every triple (its pair in its frame)."""
        inter = self.count.astype(np.float64)
        union = self.pred_area_at(self.frame, self.pred) + self.gt_area[self.frame, self.gt] - inter
        return np.where(union > 0, inter / np.maximum(union, 1), 1.0)

    def best_per_frame(self) -> np.ndarray:
        """(F, G) the predicted index of best IoU with each object in each frame, ties to the
        lower index; 0 (empty) where the object is absent or no ID meets it."""
        sel = np.zeros(self.gt_area.shape, np.int64)
        cand = self.pred > 0
        f, p, g, iou = self.frame[cand], self.pred[cand], self.gt[cand], self._pair_iou()[cand]
        order = np.lexsort((p, -iou, g, f))
        f, p, g = f[order], p[order], g[order]
        first = np.r_[True, (f[1:] != f[:-1]) | (g[1:] != g[:-1])] if f.size else f.astype(bool)
        sel[f[first], g[first]] = p[first]
        return sel

    def mean_iou(self) -> np.ndarray:
        """(P, G) mean over frames of the IoU of every predicted index with every object (an
        ID and an object both absent from a frame score 1 there, as IoU of two empty masks;
        index 0 scores 1 where the object is absent). Summed frame after frame, the order of
        a dense (F, P, G) mean, so the figures are the same to the last bit."""
        n_p = self.pred_ids.size
        acc = np.zeros((n_p, self.gt_ids.size))
        iou = self._pair_iou()
        bounds = np.searchsorted(self.frame, np.arange(self.n_frames + 1))
        for f in range(self.n_frames):
            s = slice(bounds[f], bounds[f + 1])
            absent = np.ones(n_p)
            absent[self.pred[s]] = 0.0
            absent[0] = 1.0
            empty = self.gt_area[f] == 0
            acc[:, empty] += absent[:, None]  # + 0.0 leaves a present ID's sum as it is
            meet = self.pred[s] > 0
            acc[self.pred[s][meet], self.gt[s][meet]] += iou[s][meet]
        return acc / self.n_frames


def _as_maps(name: str, maps, like=None, first: int = 0) -> list[np.ndarray]:
    """``maps`` as integer arrays, checked; errors name ``name[first + i]``."""
    out = []
    for i, m in enumerate(maps):
        m = np.asarray(m)
        if m.dtype == bool:
            m = m.astype(np.int32)
        shape = (None, None) if like is None else like[i].shape
        check_shape(f"{name}[{first + i}]", m, shape, np.integer)
        out.append(m)
    return out


def confusion(
    pred: list[np.ndarray], gt: list[np.ndarray], void_id: int | None = None
) -> Confusion:
    """Confusion tensor of per-frame ID maps ``pred`` against ``gt`` (same shapes per frame;
    gt may be bool masks). IDs are made dense over the whole sequence; pixels whose ground
    truth is ``void_id`` are not counted."""
    if len(pred) != len(gt):
        raise ShapeError(f"video metrics: {len(pred)} predicted frames but {len(gt)} "
                         "ground-truth frames; pass one of each per frame")
    if not pred:
        raise InputError("video metrics: no frames given")
    # One frame at a time (lazy sequences are read once, never held): per frame the counts
    # of its (pred, gt) pairs, then one dense tensor; equal to counting all pixels at once.
    counts = []
    for f in range(len(pred)):
        g = _as_maps("gt", [gt[f]], first=f)[0]
        p = _as_maps("pred", [pred[f]], like=[g], first=f)[0]
        p, g = p.ravel().astype(np.int64), g.ravel().astype(np.int64)
        if void_id is not None:
            keep = g != void_id
            p, g = p[keep], g[keep]
        pv, p_i = dense_index(p)
        gv, g_i = dense_index(g)
        pair, n = np.unique(p_i * gv.size + g_i, return_counts=True)
        counts.append((pv[pair // gv.size], gv[pair % gv.size], n))
    p_all = np.concatenate([c[0] for c in counts])
    g_all = np.concatenate([c[1] for c in counts])
    n_all = np.concatenate([c[2] for c in counts]).astype(np.int64)
    frame = np.repeat(np.arange(len(counts), dtype=np.int64), [len(c[0]) for c in counts])
    del counts
    # ID 0 is always among the IDs, so that index 0 is ID 0 (when IDs are >= 0); within a
    # frame the pairs come sorted by (pred, gt) value, so the triples are sorted as documented
    pred_ids, p_idx = dense_index(p_all, always=(0,))
    gt_ids, g_idx = dense_index(g_all, always=(0,))
    n_g = gt_ids.size
    n_f = len(pred)
    gt_area = np.bincount(frame * n_g + g_idx, n_all, n_f * n_g).astype(np.int64).reshape(n_f, n_g)
    return Confusion(pred_ids, gt_ids, frame, p_idx.astype(np.int64), g_idx.astype(np.int64),
                     n_all, gt_area)


def select_ids(conf: Confusion, rule: str) -> np.ndarray:
    """(F, G) index into ``conf.pred_ids`` chosen for every ground-truth object in every frame
    (0 = empty selection), by the rule ``"frame"`` or ``"sequence"`` (module docstring)."""
    if rule not in SELECTION_RULES:
        raise InputError(f"unknown ID selection rule {rule!r}", fix=f"use one of {SELECTION_RULES}")
    if rule == "frame":
        return conf.best_per_frame()
    best = conf.mean_iou()  # (P, G) mean IoU over frames; the empty mask competes too
    return np.broadcast_to(best.argmax(axis=0), conf.gt_area.shape).copy()


# ---------------------------------------------------------------------------------------------
# Single-object protocol


@dataclass
class MaskScores:
    """Frame-averaged scores of the selected predicted ID against one ground-truth mask.

    iou, f1, precision, recall: floats (mean over frames); per_frame: dict of (F,) arrays;
    ids: (F,) the predicted ID used per frame (0 = none).
    """

    iou: float
    f1: float
    precision: float
    recall: float
    per_frame: dict[str, np.ndarray]
    ids: np.ndarray


def _scores(conf: Confusion, sel: np.ndarray, g: int) -> MaskScores:
    frames = np.arange(conf.n_frames)
    inter = conf.inter_at(frames, sel[:, g], g).astype(np.float64)
    inter[sel[:, g] == 0] = 0.0
    a_p = conf.pred_area_at(frames, sel[:, g]).astype(np.float64)
    a_p[sel[:, g] == 0] = 0.0  # the empty selection claims no pixel
    a_g = conf.gt_area[:, g].astype(np.float64)
    union = a_p + a_g - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 1.0)
    prec = np.where(a_p > 0, inter / np.maximum(a_p, 1), 1.0)
    rec = np.where(a_g > 0, inter / np.maximum(a_g, 1), 1.0)
    f1 = np.where(a_p + a_g > 0, 2 * inter / np.maximum(a_p + a_g, 1), 1.0)
    pf = {"iou": iou, "f1": f1, "precision": prec, "recall": rec}
    return MaskScores(float(iou.mean()), float(f1.mean()), float(prec.mean()), float(rec.mean()),
                      pf, conf.pred_ids[sel[:, g]])


def single_object_scores(
    pred: list[np.ndarray], gt_masks: list[np.ndarray], rule: str = "frame",
    conf: Confusion | None = None,
) -> MaskScores:
    """The method's single-object protocol: IoU, F1 (Dice), precision and recall of the
    selected predicted ID against the ground-truth mask, averaged over frames.

    pred: per frame (H, W) int ID maps. gt_masks: per frame (H, W) bool (or 0/1) masks.
    rule: ``"frame"`` (best ID per frame) or ``"sequence"`` (one ID, best mean IoU).
    ``conf``: :func:`confusion` of ``pred`` against the masks (ground-truth IDs 0 and 1), if
    already counted; then neither sequence is read.
    """
    if conf is None:
        from lift3d.types import Lazy

        masks = Lazy(len(gt_masks), lambda f: np.asarray(gt_masks[f]) != 0, keep=0)  # never held
        conf = confusion(pred, masks)
    g = int(np.searchsorted(conf.gt_ids, 1))
    if g >= conf.gt_ids.size:  # no foreground anywhere: add an all-absent object column
        conf = Confusion(conf.pred_ids, np.r_[conf.gt_ids, 1], conf.frame, conf.pred, conf.gt,
                         conf.count, np.c_[conf.gt_area, np.zeros(conf.n_frames, np.int64)])
    return _scores(conf, select_ids(conf, rule), g)


# ---------------------------------------------------------------------------------------------
# Sequence-level IoU of ID maps against instance maps (issue 2)


@dataclass
class SequenceIoU:
    """sequence_iou: mean over GT instances of the pooled IoU (pixels summed over all frames)
    of the single best predicted ID; frame_iou: mean over instances and frames of the
    per-frame best-ID IoU (frames where the instance is absent and nothing fits count 1).
    per_instance: {gt_id: (sequence IoU, frame IoU, best predicted ID)}."""

    sequence_iou: float
    frame_iou: float
    per_instance: dict[int, tuple[float, float, int]]


def sequence_iou(pred: list[np.ndarray], gt: list[np.ndarray],
                 conf: Confusion | None = None) -> SequenceIoU:
    """Sequence-level IoU (one predicted ID per ground-truth instance over all frames, pixels
    pooled over frames) beside the per-frame best-ID IoU. gt: per frame (H, W) int instance
    maps, 0 = background (not an instance). ``conf``: their confusion, if already counted."""
    conf = confusion(pred, gt) if conf is None else conf
    inter = conf.pooled().astype(np.float64)  # (P, G) pooled over frames
    union = conf.pred_area_total()[:, None] + conf.gt_area.sum(0)[None, :] - inter
    pooled = np.where(union > 0, inter / np.maximum(union, 1), 0.0)
    pooled[0] = 0.0  # the unlabelled ID is not a prediction
    per_frame = conf.iou_at(select_ids(conf, "frame"))  # (F, G)
    out = {}
    for g in range(1, conf.gt_ids.size):
        p = int(pooled[:, g].argmax())
        out[int(conf.gt_ids[g])] = (float(pooled[p, g]), float(per_frame[:, g].mean()),
                                    int(conf.pred_ids[p]))
    if not out:
        return SequenceIoU(float("nan"), float("nan"), out)
    vals = np.array([v[:2] for v in out.values()])
    return SequenceIoU(float(vals[:, 0].mean()), float(vals[:, 1].mean()), out)


# ---------------------------------------------------------------------------------------------
# DAVIS J and F


def seg2bmap(mask: np.ndarray) -> np.ndarray:
    """(H, W) bool boundary map of a binary mask, DAVIS convention: a pixel is a boundary when
    it differs from its east, south or south-east neighbour (last row and column compare
    along the image edge only; the bottom-right pixel is never a boundary)."""
    seg = np.asarray(mask, bool)
    e = np.zeros_like(seg)
    s = np.zeros_like(seg)
    se = np.zeros_like(seg)
    e[:, :-1] = seg[:, 1:]
    s[:-1, :] = seg[1:, :]
    se[:-1, :-1] = seg[1:, 1:]
    b = (seg ^ e) | (seg ^ s) | (seg ^ se)
    b[-1, :] = seg[-1, :] ^ e[-1, :]
    b[:, -1] = seg[:, -1] ^ s[:, -1]
    b[-1, -1] = False
    return b


def bound_pixels(shape: tuple[int, int], bound_th: float = 0.008) -> int:
    """DAVIS boundary tolerance in pixels: bound_th itself when >= 1, else
    ceil(bound_th * image diagonal)."""
    return int(bound_th) if bound_th >= 1 else int(math.ceil(bound_th * math.hypot(*shape)))


def boundary_f(gt: np.ndarray, pred: np.ndarray, bound_th: float = 0.008) -> float:
    """DAVIS contour accuracy F of one frame: boundary precision / recall with a tolerance of
    :func:`bound_pixels` (disk dilation), F = 2PR / (P + R); empty boundaries as DAVIS."""
    gb, pb = seg2bmap(gt), seg2bmap(pred)
    r = bound_pixels(gt.shape, bound_th)
    se = disk(r).astype(np.uint8)
    g_dil = cv2.dilate(gb.astype(np.uint8), se) > 0
    p_dil = cv2.dilate(pb.astype(np.uint8), se) > 0
    n_p, n_g = int(pb.sum()), int(gb.sum())
    if n_p == 0 and n_g == 0:
        return 1.0
    if n_p == 0 or n_g == 0:
        return 0.0  # (P, R) = (1, 0) or (0, 1)
    prec = float((pb & g_dil).sum()) / n_p
    rec = float((gb & p_dil).sum()) / n_g
    return 0.0 if prec + rec == 0 else 2 * prec * rec / (prec + rec)


def davis_statistics(values: np.ndarray) -> tuple[float, float, float]:
    """(mean, recall, decay) of per-frame values, DAVIS ``db_statistics``: recall = share of
    frames > 0.5; decay = mean of the first of 4 bins minus mean of the last, the bins split
    at round(linspace(1, F, 5)) - 1 (inclusive ends, as DAVIS)."""
    v = np.asarray(values, np.float64)
    mean = float(np.nanmean(v))
    rec = float(np.nanmean(v > 0.5))
    ids = (np.round(np.linspace(1, len(v), 5) + 1e-10) - 1).astype(int)
    bins = [v[ids[i] : ids[i + 1] + 1] for i in range(4)]
    decay = float(np.nanmean(bins[0]) - np.nanmean(bins[3]))
    return mean, rec, decay


@dataclass
class DavisScores:
    """DAVIS J, F and J&F of a sequence (means over ground-truth objects).

    J, F: dicts with "mean", "recall", "decay"; JF: (J mean + F mean) / 2.
    per_object: {gt_id: {"J": (F,) per-frame J, "F": (F,) per-frame F, "ids": (F,) the
    predicted ID used}}.
    """

    J: dict[str, float]
    F: dict[str, float]
    JF: float
    per_object: dict[int, dict[str, np.ndarray]]


def davis_scores(
    pred: list[np.ndarray],
    gt: list[np.ndarray],
    rule: str = "frame",
    config: VideoMetricsConfig | None = None,
    conf: Confusion | None = None,
) -> DavisScores:
    """DAVIS J and F of ID maps against instance maps (or single masks), with the predicted ID
    for each ground-truth object chosen by ``rule`` (``"frame"`` or ``"sequence"``, by IoU).

    pred: per frame (H, W) int. gt: per frame (H, W) int instance maps (0 = background) or bool.
    ``conf``: ``confusion(pred, gt, config.void_id)``, if already counted (the boundary
    measure F still reads the frames of the objects it scores).
    """
    cfg = config or VideoMetricsConfig()
    conf = confusion(pred, gt, cfg.void_id) if conf is None else conf
    sel = select_ids(conf, rule)
    jall = conf.iou_at(sel)  # (F, G)
    frames = np.arange(conf.n_frames)
    if cfg.skip_first_last and len(pred) > 2:
        frames = frames[1:-1]
    per_object = {}
    stats_j, stats_f = [], []
    for g in range(1, conf.gt_ids.size):
        gid = conf.gt_ids[g]
        fvals = np.empty(len(frames))
        for k, f in enumerate(frames):
            pid = conf.pred_ids[sel[f, g]]
            pm = (np.asarray(pred[f]) == pid) if sel[f, g] > 0 else np.zeros(pred[f].shape, bool)
            fvals[k] = boundary_f(np.asarray(gt[f]) == gid, pm, cfg.bound_th)
        jvals = jall[frames, g]
        per_object[int(gid)] = {"J": jvals, "F": fvals, "ids": conf.pred_ids[sel[frames, g]]}
        stats_j.append(davis_statistics(jvals))
        stats_f.append(davis_statistics(fvals))
    if not per_object:
        nan = {"mean": float("nan"), "recall": float("nan"), "decay": float("nan")}
        return DavisScores(nan, dict(nan), float("nan"), per_object)
    keys = ("mean", "recall", "decay")
    J = dict(zip(keys, np.mean(stats_j, axis=0).tolist(), strict=True))
    F = dict(zip(keys, np.mean(stats_f, axis=0).tolist(), strict=True))
    return DavisScores(J, F, (J["mean"] + F["mean"]) / 2, per_object)
