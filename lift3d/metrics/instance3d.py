"""Class-agnostic 3D instance metrics, ScanNet's benchmark protocol (issues 5 and 13).

Both labellings live on the same N points: the evaluation points. :func:`score_cloud` makes
them from a fused cloud and a labelled ground truth (mesh vertices or a cloud): the ground
truth's labels are carried onto the cloud's points by nearest neighbour (a cloud point with no
ground-truth point within the radius stays unannotated), and the cloud's own labels are the
prediction. Label 0 is "no instance" on both sides: predicted 0 is not an instance; ground
truth 0 is *void* (unannotated; for a ScanNet scene also the labels the reader ignores, walls
and floors).

AP follows ScanNet's ``evaluate_semantic_instance.py`` (BenchmarkScripts/3d_evaluation), with
every instance in one class:

* Instances (predicted or ground truth) of fewer than ``min_region_size`` points (100, as
  ScanNet's vertices) are left out; a ground-truth one that small is not a target, and a
  prediction's points on it count as ignored (below).
* IoU(p, g) = |p & g| / (|p| + |g| - |p & g|), where |p| counts *all* the prediction's points,
  void ones included (a prediction that spills onto the floor loses IoU, as in ScanNet).
* At an IoU threshold t a prediction matches a ground-truth instance when IoU > t (strictly).
  Ground-truth instances are visited in ID order; each takes the not yet used predictions
  (ID order) that match it: the first is its true positive (and is used), every further one a
  false positive, the true positive keeping the highest of their confidences and the false
  positives the lower ones. An unmatched ground-truth instance is a false negative.
* A prediction that matches no ground-truth instance (of any size) is a false positive unless
  more than t of its points are ignored (void, or on a too-small instance): a prediction on
  unannotated points is ignored, not punished.
* Precision and recall at each distinct confidence, plus the point (recall 0, precision 1);
  AP = sum_k precision_k * (recall_{k-1} - recall_{k+1}) / 2 over the points in order of
  confidence (ScanNet's step widths; precision is not made monotone).
* AP (``ap``) is the mean of the APs at IoU 0.50, 0.55, ..., 0.90: ScanNet's
  ``np.arange(0.5, 0.95, 0.05)``, which stops before 0.95 (the protocol is called 0.50:0.95);
  AP50 and AP25 are the APs at 0.5 and 0.25.
* A prediction's confidence is the one given for it (``pred_conf``: lift3d's clouds rank
  their instances by :meth:`lift3d.types.LabelledCloud.instance_confidence`), else the mean
  ``label_conf`` of its points, else its size. NaN AP without ground-truth instances; 0
  with targets but no prediction.

Beside AP, on the same IoU matrix: mean IoU (Hungarian matching with scipy
``linear_sum_assignment`` maximising the total IoU; each ground-truth instance scores its
matched IoU, 0 when unmatched), found (ground-truth instances with a prediction of IoU >=
``found_iou``), split (ground-truth instances of which two or more predictions each hold >=
``split_frac`` of the points), merged (predictions holding >= ``merge_frac`` of the points
of two or more ground-truth instances).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linear_sum_assignment
from scipy.spatial import cKDTree

from lift3d.checks import check_shape
from lift3d.errors import InputError
from lift3d.metrics._dense import dense_index

OVERLAPS = tuple(round(0.5 + 0.05 * k, 2) for k in range(9))
"""IoU thresholds averaged into AP: 0.50 ... 0.90 (ScanNet's np.arange(0.5, 0.95, 0.05))."""


@dataclass(frozen=True)
class InstanceMetricsConfig:
    """How 3D instances are scored (module docstring)."""

    overlaps: tuple[float, ...] = OVERLAPS
    """IoU thresholds whose APs are averaged into AP (ScanNet: 0.50 to 0.90 by 0.05)."""
    min_region_size: int = 100
    """Instances with fewer points are left out (ScanNet: 100 mesh vertices)."""
    found_iou: float = 0.5
    """IoU at which a ground-truth instance counts as found."""
    split_frac: float = 0.25
    """Share of a ground-truth instance's points a prediction must hold to count in a split."""
    merge_frac: float = 0.5
    """Share of each of two ground-truth instances a prediction must hold to count as merged."""
    radius_spacings: float = 2.0
    """score_cloud: a cloud point takes the label of the nearest ground-truth point within this
    many point spacings (the median distance of a cloud point to its nearest neighbour, about
    the fusion voxel); farther, it stays unannotated."""

    def thresholds(self) -> tuple[float, ...]:
        """Every IoU threshold an AP is computed at: the overlaps, 0.5 and 0.25."""
        return tuple(sorted({*self.overlaps, 0.5, 0.25}))


@dataclass
class InstanceScores:
    """Scores of one labelling. ap: mean of ``ap_at`` over the config's overlaps; ap50, ap25;
    ap_at: {IoU threshold: AP}; mean_iou, found, split, merged: module docstring; n_gt /
    n_pred: instances scored (>= min_region_size points); iou: (P, G) IoU matrix of those, rows
    ``pred_ids`` (P,), columns ``gt_ids`` (G,); matches: (pred_id, gt_id, IoU) of the
    Hungarian matching."""

    ap: float
    ap50: float
    ap25: float
    ap_at: dict[float, float]
    mean_iou: float
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


def point_spacing(points: np.ndarray) -> float:
    """Median distance of a point to its nearest other point (units of the points); 0 for fewer
    than two distinct points."""
    if points.shape[0] < 2:
        return 0.0
    d, _ = cKDTree(np.asarray(points, np.float64)).query(points, k=2, workers=-1)
    return float(np.median(d[:, 1]))


def score_cloud(
    points: np.ndarray, labels: np.ndarray, label_conf: np.ndarray | None,
    gt_points: np.ndarray, gt_labels: np.ndarray, config: InstanceMetricsConfig | None = None,
    pred_conf: dict[int, float] | None = None,
) -> InstanceScores:
    """Score a labelled cloud (points (N, 3), labels (N,) int, label_conf (N,) float or None)
    against labelled ground-truth points (gt_points (M, 3), gt_labels (M,) int, 0 = void):
    the ground truth is carried onto the cloud (module docstring), then
    :func:`instance_metrics` (``pred_conf``: {label: confidence} of the predictions)."""
    cfg = config or InstanceMetricsConfig()
    check_shape("points", points, (None, 3), np.number)
    radius = cfg.radius_spacings * point_spacing(points)
    gt_on_cloud = transfer_labels(gt_points, np.asarray(gt_labels), points, radius)
    return instance_metrics(labels, gt_on_cloud, label_conf, cfg, pred_conf)


@dataclass
class _Overlaps:
    """Counts behind every figure: kept predictions (rows) against ground-truth instances."""

    pred_ids: np.ndarray  # (P,) predictions of >= min_region_size points
    gt_ids: np.ndarray  # (G,) every ground-truth instance (> 0)
    inter: np.ndarray  # (P, G) shared points
    size_p: np.ndarray  # (P,) all points of each prediction, void ones included
    size_g: np.ndarray  # (G,)
    void_p: np.ndarray  # (P,) points of each prediction on void ground truth
    target: np.ndarray  # (G,) bool: large enough to be scored

    @property
    def iou(self) -> np.ndarray:
        union = self.size_p[:, None] + self.size_g[None, :] - self.inter
        return np.where(union > 0, self.inter / np.maximum(union, 1), 0.0)

    def ignored_share(self) -> np.ndarray:
        """(P,) share of each prediction's points on void or on too-small instances."""
        small = self.inter[:, ~self.target].sum(axis=1)
        return (self.void_p + small) / np.maximum(self.size_p, 1)


def _overlaps(pred: np.ndarray, gt: np.ndarray, min_size: int) -> _Overlaps:
    p_ids, p = dense_index(pred, always=(0,))
    g_ids, g = dense_index(gt, always=(0,))
    inter = np.bincount(p * g_ids.size + g, minlength=p_ids.size * g_ids.size)
    inter = inter.reshape(p_ids.size, g_ids.size)  # row 0: predicted 0; column 0: void
    size_p, size_g = inter.sum(axis=1), inter.sum(axis=0)
    rows = np.flatnonzero((p_ids > 0) & (size_p >= min_size))
    return _Overlaps(p_ids[rows], g_ids[1:], inter[np.ix_(rows, np.arange(1, g_ids.size))],
                     size_p[rows], size_g[1:], inter[rows, 0], size_g[1:] >= min_size)


def _match(ov: _Overlaps, iou: np.ndarray, scores: np.ndarray, t: float
           ) -> tuple[np.ndarray, np.ndarray, int]:
    """ScanNet's matching at IoU threshold t: (scores of true positives, scores of false
    positives, number of false negatives)."""
    used = np.zeros(len(ov.pred_ids), bool)
    tp, fp, fn = [], [], 0
    for j in np.flatnonzero(ov.target):  # ground truth in ID order; loops over instances only
        best = None
        for i in np.flatnonzero(iou[:, j] > t):
            if used[i]:
                continue
            if best is None:
                best, used[i] = scores[i], True
            else:  # a second match of the same instance: the lower confidence is a false positive
                fp.append(min(best, scores[i]))
                best = max(best, scores[i])
        if best is None:
            fn += 1
        else:
            tp.append(best)
    unmatched = ~(iou > t).any(axis=1)
    fp.extend(scores[unmatched & (ov.ignored_share() <= t)])
    return np.asarray(tp, np.float64), np.asarray(fp, np.float64), fn


def pr_curve_ap(tp_scores: np.ndarray, fp_scores: np.ndarray, n_gt: int) -> float:
    """AP of true and false positives with their confidences against ``n_gt`` targets:
    precision and recall at every distinct confidence plus (recall 0, precision 1), each point
    weighted by half the recall gap between its neighbours (ScanNet). NaN when n_gt is 0."""
    if n_gt == 0:
        return float("nan")
    score = np.r_[tp_scores, fp_scores]
    if score.size == 0:
        return 0.0
    true = np.r_[np.ones(tp_scores.size), np.zeros(fp_scores.size)]
    order = np.argsort(score, kind="stable")
    score, true = score[order], true[order]
    _, first = np.unique(score, return_index=True)  # ascending confidences
    tp_below = np.r_[0.0, np.cumsum(true)][first]
    tp = true.sum() - tp_below  # true positives at confidence >= each threshold
    precision = np.r_[tp / (score.size - first), 1.0]
    recall = np.r_[tp / n_gt, 0.0]
    before = np.r_[recall[0], recall[:-1]]
    after = np.r_[recall[1:], 0.0]
    return float(np.dot(precision, (before - after) / 2))


def instance_metrics(
    pred: np.ndarray,
    gt: np.ndarray,
    label_conf: np.ndarray | None = None,
    config: InstanceMetricsConfig | None = None,
    pred_conf: dict[int, float] | None = None,
) -> InstanceScores:
    """Instance metrics of predicted labels (N,) int against ground-truth labels (N,) int on the
    same points (0 = no instance / void); pred_conf: optional {label: confidence} of the
    predictions (every predicted label must have one); else label_conf: optional (N,) float
    per-point confidence, a prediction's confidence being the mean over its points (its size
    when None). Without a ground-truth instance (a cloud that sees no annotated object) the
    APs and mean IoU are NaN and n_gt is 0."""
    cfg = config or InstanceMetricsConfig()
    pred, gt = np.asarray(pred), np.asarray(gt)
    check_shape("gt", gt, (None,), np.integer)
    check_shape("pred", pred, gt.shape, np.integer)
    if label_conf is not None:
        check_shape("label_conf", label_conf, gt.shape, np.floating)
    if not 0 < cfg.found_iou <= 1:
        raise InputError(f"found_iou must be in (0, 1], got {cfg.found_iou}")
    pred, gt = pred.astype(np.int64), gt.astype(np.int64)
    ov = _overlaps(pred, gt, cfg.min_region_size)
    iou = ov.iou
    if pred_conf is not None:
        missing = [int(i) for i in ov.pred_ids if int(i) not in pred_conf]
        if missing:
            raise InputError(f"pred_conf has no confidence for predicted labels {missing[:5]}")
        scores = np.array([pred_conf[int(i)] for i in ov.pred_ids], np.float64)
    elif label_conf is not None:
        p_ids, p = dense_index(pred)
        mean_conf = np.bincount(p, weights=np.asarray(label_conf, np.float64)) / np.bincount(p)
        scores = mean_conf[np.searchsorted(p_ids, ov.pred_ids)]
    else:
        scores = ov.size_p.astype(np.float64)
    n_gt = int(ov.target.sum())
    ap_at = {}
    for t in cfg.thresholds():
        if len(ov.pred_ids) == 0:
            ap_at[t] = float("nan") if n_gt == 0 else 0.0
        else:
            ap_at[t] = pr_curve_ap(*_match(ov, iou, scores, t)[:2], n_gt)

    # the other figures: on the scored ground-truth instances
    iou_t = iou[:, ov.target]
    rows, cols = linear_sum_assignment(iou_t, maximize=True)
    matched = np.zeros(n_gt)
    matched[cols] = iou_t[rows, cols]
    gt_ids = ov.gt_ids[ov.target]
    matches = [(int(ov.pred_ids[r]), int(gt_ids[c]), float(iou_t[r, c]))
               for r, c in zip(rows, cols, strict=True) if iou_t[r, c] > 0]
    share_of_gt = ov.inter[:, ov.target] / np.maximum(ov.size_g[ov.target][None, :], 1)
    return InstanceScores(
        ap=float(np.mean([ap_at[t] for t in cfg.overlaps])), ap50=ap_at[0.5], ap25=ap_at[0.25],
        ap_at=ap_at, mean_iou=float(matched.mean()) if n_gt else float("nan"), n_gt=n_gt,
        n_pred=len(ov.pred_ids), found=int((iou_t.max(axis=0, initial=0.0) >= cfg.found_iou).sum()),
        split=int(((share_of_gt >= cfg.split_frac).sum(axis=0) >= 2).sum()),
        merged=int(((share_of_gt >= cfg.merge_frac).sum(axis=1) >= 2).sum()),
        iou=iou_t, pred_ids=ov.pred_ids, gt_ids=gt_ids, matches=matches,
    )
