"""The figures `lift3d segment` reports: H(I,M) of its ID maps (always) and, where the scene
has ground truth, quality against it. Frames are read through callables / lazy sequences,
so a long sequence is measured without holding it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

import numpy as np

from lift3d.metrics.config import MetricConfig


def _num(v) -> float | None:
    v = float(v)
    return None if np.isnan(v) else round(v, 6)


@dataclass
class ConsistencyFigures:
    """H(I,M) of a run: H, its radius and units, per-frame h, pixels with a neighbour, and
    the frames measured (all of them unless ``MetricConfig.max_frames``)."""

    H: float | None
    eps: float
    eps_units: str
    per_frame: list[float | None]
    pixels_with_neighbours: int
    frames: list[int] | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        if d["frames"] is None:
            d.pop("frames")
        return d


def exact_h(load: Callable[[int], tuple], n_frames: int, eps: float,
            block_points: int | None = None):
    """Exact H over frames ``load(i) -> (points (H,W,3), valid (H,W), labels (H,W))``, in
    memory bounded by ``block_points`` (:func:`lift3d.metrics.consistency.consistency_frames`:
    spatial blocks with an eps margin; the same H, bit for bit, as one run over all frames)."""
    from lift3d.metrics.config import BLOCK_POINTS
    from lift3d.metrics.consistency import consistency_frames

    return consistency_frames(load, n_frames, eps,
                              block_points=BLOCK_POINTS if block_points is None else block_points)


def measure_consistency(geometry, labels: Sequence[np.ndarray], cfg: MetricConfig
                        ) -> ConsistencyFigures:
    """H(I,M) of the ID maps ``labels`` (a sequence, lazy or not) on ``geometry``, with the
    radius of ``cfg``."""
    eps, units = cfg.radius(geometry)
    picks = cfg.frames(len(labels))
    if geometry.kind == "3d":
        def load(k: int):
            pm = geometry[picks[k]]
            return pm.points, pm.valid, labels[picks[k]]

        res = exact_h(load, len(picks), eps, cfg.block_points)
    else:
        from lift3d.metrics.consistency2d import consistency_matches

        res = consistency_matches(geometry, labels, eps)
    return ConsistencyFigures(
        H=_num(res.H), eps=float(eps), eps_units=units, per_frame=[_num(v) for v in res.per_frame],
        pixels_with_neighbours=int(res.n_with_neighbours),
        frames=None if len(picks) == len(labels) else picks,
    )


def measure_quality(labels: Sequence[np.ndarray], gt: Sequence[np.ndarray], cloud=None,
                    gt_points: np.ndarray | None = None,
                    gt_point_labels: np.ndarray | None = None) -> dict:
    """Quality of the ID maps against the scene's ground truth.

    Always ``sequence``: the sequence-level IoU of multi-instance ground truth (one predicted
    ID per instance, pixels pooled over frames) beside the per-frame best-ID IoU. When the
    ground truth is binary (one object, e.g. DAVIS 2016), the single-object protocol too:
    ``single_object[rule]`` (IoU, F1, precision, recall averaged over frames, and the
    per-frame IoU) and ``davis[rule]`` (J and F mean / recall / decay, J&F), for the rules
    ``frame`` (best ID in each frame) and ``sequence`` (one ID for the whole sequence). With
    a fused cloud and a ground-truth cloud: ``instances_3d`` (mean IoU, AP, found / split /
    merged counts) after carrying the cloud's labels onto the ground-truth points.
    labels, gt: per-frame (H, W) int maps (sequences; lazy ones are read frame by frame).
    """
    from lift3d.metrics import instance3d, video

    conf = video.confusion(labels, gt)
    seq = video.sequence_iou(labels, gt, conf=conf)
    q: dict = {"sequence": {"sequence_iou": _num(seq.sequence_iou), "frame_iou": _num(seq.frame_iou),
                            "n_gt": len(seq.per_instance)}}
    if conf.gt_ids.max(initial=0) > 1:  # binary masks get theirs in single_object
        q["sequence"]["per_frame_iou"] = _per_frame_iou(conf, seq)
    else:
        masks = [g > 0 for g in gt]
        q["single_object"], q["davis"] = {}, {}
        for rule in video.SELECTION_RULES:
            s = video.single_object_scores(labels, masks, rule)
            q["single_object"][rule] = {
                "iou": _num(s.iou), "f1": _num(s.f1), "precision": _num(s.precision),
                "recall": _num(s.recall), "per_frame_iou": [_num(v) for v in s.per_frame["iou"]],
                "n_ids_used": int(len(np.unique(s.ids[s.ids > 0]))),
            }
            d = video.davis_scores(labels, masks, rule)
            q["davis"][rule] = {
                "J": {k: _num(v) for k, v in d.J.items()}, "F": {k: _num(v) for k, v in d.F.items()},
                "JF": _num(d.JF),
            }
    if cloud is not None and gt_points is not None and len(cloud):
        pred = instance3d.transfer_labels(
            cloud.points, cloud.labels, gt_points, max_dist=transfer_radius(cloud)
        )
        s3 = instance3d.instance_metrics(pred, gt_point_labels)
        q["instances_3d"] = {
            "mean_iou": _num(s3.mean_iou), "ap": {str(k): _num(v) for k, v in s3.ap.items()},
            "n_gt": s3.n_gt, "n_pred": s3.n_pred, "n_found": s3.found, "n_split": s3.split,
            "n_merged": s3.merged,
        }
    return q


def _per_frame_iou(conf, seq) -> dict[str, list]:
    """Per frame, the mean over ground-truth instances of the IoU of the chosen ID: the best
    one in that frame (``frame``) or the sequence-level one (``sequence``)."""
    from lift3d.metrics import video

    n = conf.inter.shape[0]
    iou = conf.iou()  # (F, P, G)
    if conf.gt_ids.size < 2:
        return {"frame": [None] * n, "sequence": [None] * n}
    by_frame = np.take_along_axis(iou, video.select_ids(conf, "frame")[:, None, :], 1)[:, 0, 1:]
    pos = {int(p): k for k, p in enumerate(conf.pred_ids)}
    cols = np.array([pos[seq.per_instance[int(g)][2]] for g in conf.gt_ids[1:]])
    by_seq = iou[:, cols, np.arange(1, conf.gt_ids.size)]
    return {"frame": [_num(v) for v in by_frame.mean(1)], "sequence": [_num(v) for v in by_seq.mean(1)]}


def transfer_radius(cloud) -> float:
    """Distance within which a ground-truth point takes a fused point's label: 2% of the
    cloud's largest extent."""
    extent = np.ptp(cloud.points, axis=0).max() if len(cloud) else 1.0
    return float(0.02 * extent)
