"""3D instance metrics of labelled points against ground-truth instance labels (issue 5).

Both labellings live on the same N points (use :func:`transfer_labels` to carry a fused cloud's
labels onto the ground-truth points). Label 0 is "no instance": predicted 0 is not an instance;
ground-truth 0 (unannotated) points are dropped before anything is counted (with the default
``ignore_gt_zero``), as ScanNet's evaluation ignores unannotated points. Class-agnostic: every
instance is compared with every other.

Definitions (P predicted instances, G ground-truth instances, overlaps from one bincount):

* IoU(p, g) = |p & g| / |p | g| over the (kept) points.
* mean IoU: Hungarian matching (scipy ``linear_sum_assignment``) maximising the total IoU; each
  ground-truth instance scores its matched IoU, 0 when unmatched; mean over ground truth.
* AP@t (t = 0.25, 0.5): predictions ranked by confidence — the mean ``label_conf`` of their
  points when given, else their size — are matched greedily (ScanNet style): each in turn
  takes the still unmatched ground-truth instance of highest IoU if that IoU >= t (true
  positive), else is a false positive. AP is the area under the precision-recall curve with
  the precision made monotone (all-point interpolation, as VOC 2010+ / COCO per threshold).
* found: ground-truth instances with a prediction of IoU >= ``found_iou`` (0.5).
* split: ground-truth instances of which two or more predictions each hold >= ``split_frac``
  (0.25) of the points.
* merged: predictions that hold >= ``merge_frac`` (0.5) of the points of two or more
  ground-truth instances each.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from lift3d.checks import check_shape
from lift3d.errors import InputError, ShapeError


@dataclass(frozen=True)
class InstanceMetricsConfig:
    """ap_thresholds: IoU thresholds of AP (default 0.25 and 0.5); found_iou: IoU for "found"
    (0.5); split_frac / merge_frac: shares of an instance's points (0.25 / 0.5; module
    docstring); ignore_gt_zero: drop unannotated ground-truth points (True)."""

    ap_thresholds: tuple[float, ...] = (0.25, 0.5)
    found_iou: float = 0.5
    split_frac: float = 0.25
    merge_frac: float = 0.5
    ignore_gt_zero: bool = True


@dataclass
class InstanceScores:
    """mean_iou: Hungarian-matched mean IoU over ground truth; ap: {threshold: AP};
    n_gt / n_pred: instance counts; found / split / merged: counts (module docstring);
    iou: (P, G) IoU matrix; pred_ids (P,), gt_ids (G,): the instance IDs of its rows/columns;
    matches: list of (pred_id, gt_id, IoU) of the Hungarian matching."""

    mean_iou: float
    ap: dict[float, float]
    n_gt: int
    n_pred: int
    found: int
    split: int
    merged: int
    iou: np.ndarray
    pred_ids: np.ndarray
    gt_ids: np.ndarray
    matches: list[tuple[int, int, float]] = field(default_factory=list)


def transfer_labels(
    src_points: np.ndarray, src_labels: np.ndarray, dst_points: np.ndarray, max_dist: float
) -> np.ndarray:
    """Labels of the nearest source point for every destination point, 0 where the nearest is
    farther than ``max_dist`` (units of the points). src_points (M, 3), src_labels (M,) int,
    dst_points (N, 3) -> (N,) int32. KD-tree nearest neighbour (scipy cKDTree)."""
    check_shape("src_points", src_points, (None, 3), np.number)
    check_shape("src_labels", src_labels, (src_points.shape[0],), np.integer)
    check_shape("dst_points", dst_points, (None, 3), np.number)
    out = np.zeros(dst_points.shape[0], np.int32)
    if src_points.shape[0] == 0 or dst_points.shape[0] == 0:
        return out
    tree = cKDTree(np.asarray(src_points, np.float64))
    d, idx = tree.query(np.asarray(dst_points, np.float64), k=1,
                        distance_upper_bound=max_dist * (1 + 1e-12), workers=-1)
    ok = d <= max_dist
    out[ok] = src_labels[idx[ok]]
    return out


def _overlaps(pred: np.ndarray, gt: np.ndarray):
    """Dense IDs and the (P, G) intersection counts of instances (IDs > 0 only)."""
    pred_ids, p = np.unique(pred, return_inverse=True)
    gt_ids, g = np.unique(gt, return_inverse=True)
    inter = np.bincount(p * gt_ids.size + g, minlength=pred_ids.size * gt_ids.size)
    inter = inter.reshape(pred_ids.size, gt_ids.size)
    keep_p, keep_g = pred_ids > 0, gt_ids > 0
    size_p = inter.sum(1)[keep_p]  # an instance's size counts all its kept points
    size_g = inter.sum(0)[keep_g]
    return pred_ids[keep_p], gt_ids[keep_g], inter[np.ix_(keep_p, keep_g)], size_p, size_g


def average_precision(iou: np.ndarray, scores: np.ndarray, threshold: float) -> float:
    """AP of predictions (rows of ``iou``, (P, G)) ranked by ``scores`` (P,) with greedy
    matching at an IoU threshold (module docstring). NaN without ground truth."""
    n_pred, n_gt = iou.shape
    if n_gt == 0:
        return float("nan")
    if n_pred == 0:
        return 0.0
    order = np.argsort(-scores, kind="stable")
    taken = np.zeros(n_gt, bool)
    tp = np.zeros(n_pred)
    for k, i in enumerate(order):  # greedy matching is sequential by nature (P iterations)
        cand = np.where(taken, -1.0, iou[i])
        j = int(cand.argmax())
        if cand[j] >= threshold:
            taken[j] = True
            tp[k] = 1.0
    ctp = np.cumsum(tp)
    precision = ctp / np.arange(1, n_pred + 1)
    recall = ctp / n_gt
    # monotone envelope, then sum precision over recall steps
    env = np.maximum.accumulate(precision[::-1])[::-1]
    steps = np.diff(np.r_[0.0, recall])
    return float((env * steps).sum())


def instance_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    label_conf: np.ndarray | None = None,
    config: InstanceMetricsConfig | None = None,
) -> InstanceScores:
    """Instance metrics of predicted labels (N,) int against ground-truth labels (N,) int on the
    same points; label_conf: optional (N,) float per-point confidence used to rank
    predictions for AP (mean over the instance; size when None)."""
    cfg = config or InstanceMetricsConfig()
    pred, gt = np.asarray(pred), np.asarray(gt)
    check_shape("gt", gt, (None,), np.integer)
    check_shape("pred", pred, gt.shape, np.integer)
    if label_conf is not None:
        check_shape("label_conf", label_conf, gt.shape, np.floating)
    if not 0 < cfg.found_iou <= 1:
        raise InputError(f"found_iou must be in (0, 1], got {cfg.found_iou}")
    keep = gt != 0 if cfg.ignore_gt_zero else np.ones(gt.shape, bool)
    pred, gt = pred[keep].astype(np.int64), gt[keep].astype(np.int64)
    if pred.size == 0:
        raise ShapeError("instance_metrics: no annotated points",
                         fix="pass ground-truth labels with instances > 0")
    pred_ids, gt_ids, inter, size_p, size_g = _overlaps(pred, gt)
    union = size_p[:, None] + size_g[None, :] - inter
    iou = np.where(union > 0, inter / np.maximum(union, 1), 0.0)

    rows, cols = linear_sum_assignment(iou, maximize=True)
    matched = np.zeros(gt_ids.size)
    matched[cols] = iou[rows, cols]
    mean_iou = float(matched.mean()) if gt_ids.size else float("nan")
    matches = [(int(pred_ids[r]), int(gt_ids[c]), float(iou[r, c]))
               for r, c in zip(rows, cols, strict=True) if iou[r, c] > 0]

    if label_conf is not None and pred_ids.size:
        _, p_dense = np.unique(pred, return_inverse=True)
        conf_sum = np.bincount(p_dense, weights=np.asarray(label_conf, np.float64)[keep])
        n_all = np.bincount(p_dense)
        has0 = int(np.unique(pred)[0] == 0)
        scores = (conf_sum / np.maximum(n_all, 1))[has0:]
    else:
        scores = size_p.astype(np.float64)
    ap = {float(t): average_precision(iou, scores, t) for t in cfg.ap_thresholds}

    share_of_gt = inter / np.maximum(size_g[None, :], 1)  # (P, G) share of g's points in p
    found = int((iou.max(axis=0, initial=0.0) >= cfg.found_iou).sum())
    split = int(((share_of_gt >= cfg.split_frac).sum(axis=0) >= 2).sum())
    merged = int(((share_of_gt >= cfg.merge_frac).sum(axis=1) >= 2).sum())
    return InstanceScores(mean_iou, ap, int(gt_ids.size), int(pred_ids.size), found, split,
                          merged, iou, pred_ids, gt_ids, matches)
