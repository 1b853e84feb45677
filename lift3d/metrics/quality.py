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


def exact_h(load: Callable[[int], tuple], n_frames: int, eps: float, config=None,
            return_maps: bool = False, block_points: int | None = None):
    """Exact H over frames ``load(i) -> (points (H,W,3), valid (H,W), outputs)`` (ID maps or
    feature maps), read one at a time: :func:`~lift3d.metrics.consistency.consistency_frames`
    (ID maps in memory bounded by ``block_points``: spatial blocks with an eps margin, the
    same H bit for bit as one run over all frames)."""
    from lift3d.metrics.consistency import consistency_frames

    return consistency_frames(load, n_frames, eps, return_maps=return_maps, config=config,
                              block_points=block_points)


def consistency_figures(geometry, outputs: Sequence[np.ndarray], cfg: MetricConfig, config=None,
                        return_maps: bool = False) -> tuple[ConsistencyFigures, object]:
    """H(I,M) of per-pixel ``outputs`` (a sequence, lazy or not: (H, W) int ID maps or
    (H, W, D) feature maps) on ``geometry``, with the radius of ``cfg``; and the
    :class:`~lift3d.metrics.consistency.ConsistencyResult` (per-pixel maps with
    ``return_maps``). ``config``: the kernel's
    :class:`~lift3d.metrics.consistency.ConsistencyConfig` (threads, feature storage)."""
    eps, units = cfg.radius(geometry)
    picks = cfg.frames(len(outputs))
    if geometry.kind == "3d":
        def load(k: int):
            pm = geometry[picks[k]]
            return pm.points, pm.valid, outputs[picks[k]]

        res = exact_h(load, len(picks), eps, config, return_maps, cfg.block_points)
    else:
        from lift3d.metrics.consistency2d import consistency_matches

        dtype = getattr(config, "feature_dtype", "float32")
        res = consistency_matches(geometry, outputs, eps, feature_dtype=dtype)
    figs = ConsistencyFigures(
        H=_num(res.H), eps=float(eps), eps_units=units, per_frame=[_num(v) for v in res.per_frame],
        pixels_with_neighbours=int(res.n_with_neighbours),
        frames=None if len(picks) == len(outputs) else picks,
    )
    return figs, res


def measure_consistency(geometry, labels: Sequence[np.ndarray], cfg: MetricConfig
                        ) -> ConsistencyFigures:
    """H(I,M) of the ID maps ``labels`` (a sequence, lazy or not) on ``geometry``, with the
    radius of ``cfg`` (what `lift3d segment` reports; `lift3d consistency` makes the same
    call through :func:`consistency_figures`)."""
    return consistency_figures(geometry, labels, cfg)[0]


def id_survival(sequence_iou: float | None, frame_iou: float | None) -> float | None:
    """ID survival: the IoU with one ID per object for the whole sequence divided by the IoU
    with the best ID in each frame (1 = every object keeps one ID; 0 = IDs never last).
    None when either is undefined or the per-frame IoU is 0."""
    if sequence_iou is None or frame_iou is None or not frame_iou > 0:
        return None
    return round(float(sequence_iou) / float(frame_iou), 6)


@dataclass
class SequenceFigures:
    """Multi-instance ID figures (:func:`lift3d.metrics.video.sequence_iou`): sequence_iou
    (one ID per instance, pooled over frames), frame_iou (best ID per frame), n_gt instances;
    per_frame_iou {"frame": [...], "sequence": [...]} and per_instance {ground-truth ID (a
    string, as JSON keys are): [sequence IoU, frame IoU, the sequence-level predicted ID]}
    (multi-instance ground truth only)."""

    sequence_iou: float | None
    frame_iou: float | None
    n_gt: int
    per_frame_iou: dict[str, list] | None = None
    per_instance: dict[str, list] | None = None


@dataclass
class MaskFigures:
    """Single-object protocol with one ID-selection rule: frame means of IoU, F1, precision,
    recall; per_frame_iou (F,); n_ids_used: distinct IDs the rule picked."""

    iou: float | None
    f1: float | None
    precision: float | None
    recall: float | None
    per_frame_iou: list[float | None]
    n_ids_used: int


@dataclass
class DavisFigures:
    """DAVIS J and F ({"mean", "recall", "decay"}) and J&F with one ID-selection rule."""

    J: dict[str, float | None]
    F: dict[str, float | None]
    JF: float | None


@dataclass
class Instance3DFigures:
    """3D instance figures of a labelled cloud (:mod:`lift3d.metrics.instance3d`, ScanNet's
    protocol): ap (mean over IoU 0.50:0.90), ap50, ap25, ap_at {"IoU": AP}, mean_iou; instance
    counts n_gt, n_pred, n_found, n_split, n_merged."""

    ap: float | None
    ap50: float | None
    ap25: float | None
    ap_at: dict[str, float | None]
    mean_iou: float | None
    n_gt: int
    n_pred: int
    n_found: int
    n_split: int
    n_merged: int

    @classmethod
    def from_scores(cls, s) -> Instance3DFigures:
        """From :class:`lift3d.metrics.instance3d.InstanceScores`."""
        return cls(ap=_num(s.ap), ap50=_num(s.ap50), ap25=_num(s.ap25),
                   ap_at={f"{t:.2f}": _num(v) for t, v in s.ap_at.items()},
                   mean_iou=_num(s.mean_iou), n_gt=s.n_gt, n_pred=s.n_pred, n_found=s.found,
                   n_split=s.split, n_merged=s.merged)


@dataclass
class QualityFigures:
    """Quality of a run against ground truth: ``sequence`` always; ``single_object`` and
    ``davis`` per rule (``frame``, ``sequence``) when the ground truth is binary (one object,
    e.g. DAVIS 2016); ``instances_3d`` with a fused cloud and a labelled ground-truth cloud.
    :meth:`to_json` is report.json's ``quality``; :meth:`from_json` reads it back."""

    sequence: SequenceFigures
    single_object: dict[str, MaskFigures] | None = None
    davis: dict[str, DavisFigures] | None = None
    instances_3d: Instance3DFigures | None = None

    def to_json(self) -> dict:
        d = asdict(self)
        for key in ("per_frame_iou", "per_instance"):
            if d["sequence"][key] is None:
                d["sequence"].pop(key)
        return {k: v for k, v in d.items() if v is not None}

    @classmethod
    def from_json(cls, doc: dict) -> QualityFigures:
        so, dv, i3 = doc.get("single_object"), doc.get("davis"), doc.get("instances_3d")
        return cls(
            sequence=SequenceFigures(**doc["sequence"]),
            single_object=None if so is None else {r: MaskFigures(**v) for r, v in so.items()},
            davis=None if dv is None else {r: DavisFigures(**v) for r, v in dv.items()},
            instances_3d=None if i3 is None else Instance3DFigures(**i3),
        )

    def id_survival(self) -> float | None:
        """:func:`id_survival` of the run, both IoUs averaged the same way (over frames, and
        objects), so that it is at most 1: on binary ground truth the single-object protocol's
        seqID IoU / IoU; on multi-instance ground truth the per-frame IoU of each instance's
        sequence-level ID (the one of :attr:`SequenceFigures.sequence_iou`) / the per-frame
        IoU of its best ID in each frame. (The pooled sequence IoU over the frame IoU mixes two
        averages and can exceed 1.)"""
        if self.single_object is not None:
            return id_survival(self.single_object["sequence"].iou, self.single_object["frame"].iou)
        pf = self.sequence.per_frame_iou or {}
        seq, frame = pf.get("sequence"), pf.get("frame")
        if not seq or not frame or None in seq or None in frame:
            return None
        return id_survival(float(np.mean(seq)), float(np.mean(frame)))


def quality_figures(labels: Sequence[np.ndarray], gt: Sequence[np.ndarray], cloud=None,
                    gt_points: np.ndarray | None = None,
                    gt_point_labels: np.ndarray | None = None) -> QualityFigures:
    """Quality of the ID maps against the scene's ground truth (:class:`QualityFigures`).

    Always the sequence-level IoU of multi-instance ground truth (one predicted ID per
    instance, pixels pooled over frames) beside the per-frame best-ID IoU. When the ground
    truth is binary, the single-object protocol too (IoU, F1, precision, recall and DAVIS J, F,
    J&F) for the rules ``frame`` (best ID in each frame) and ``sequence`` (one ID for the whole
    sequence). With a fused cloud and a labelled ground-truth cloud: 3D instance figures
    (:func:`lift3d.metrics.instance3d.score_cloud`). labels, gt: per-frame (H, W) int maps
    (sequences; lazy ones are read frame by frame).
    """
    from lift3d.metrics import instance3d, video

    conf = video.confusion(labels, gt)
    seq = video.sequence_iou(labels, gt, conf=conf)
    q = QualityFigures(SequenceFigures(_num(seq.sequence_iou), _num(seq.frame_iou),
                                       len(seq.per_instance)))
    if conf.gt_ids.max(initial=0) > 1:  # binary masks get theirs in single_object
        q.sequence.per_frame_iou = _per_frame_iou(conf, seq)
        q.sequence.per_instance = {str(g): [_num(a), _num(b), p]
                                   for g, (a, b, p) in seq.per_instance.items()}
    else:
        from lift3d.types import Lazy

        masks = Lazy(len(gt), lambda f: np.asarray(gt[f]) > 0, keep=0)  # read when measured
        # ground truth of IDs 0 and 1 is its own masks: one confusion serves every rule (else,
        # e.g. with negative IDs, the masks' is counted once)
        mconf = conf if conf.gt_ids.min(initial=0) >= 0 else video.confusion(labels, masks)
        q.single_object, q.davis = {}, {}
        for rule in video.SELECTION_RULES:
            s = video.single_object_scores(labels, masks, rule, conf=mconf)
            q.single_object[rule] = MaskFigures(
                iou=_num(s.iou), f1=_num(s.f1), precision=_num(s.precision), recall=_num(s.recall),
                per_frame_iou=[_num(v) for v in s.per_frame["iou"]],
                n_ids_used=int(len(np.unique(s.ids[s.ids > 0]))))
            d = video.davis_scores(labels, masks, rule, conf=mconf)
            q.davis[rule] = DavisFigures(J={k: _num(v) for k, v in d.J.items()},
                                         F={k: _num(v) for k, v in d.F.items()}, JF=_num(d.JF))
    if cloud is not None and gt_points is not None and len(cloud):
        s3 = instance3d.score_cloud(cloud.points, cloud.labels, cloud.label_conf, gt_points,
                                    gt_point_labels, pred_conf=cloud.instance_confidence())
        q.instances_3d = Instance3DFigures.from_scores(s3)
    return q


def measure_quality(labels: Sequence[np.ndarray], gt: Sequence[np.ndarray], cloud=None,
                    gt_points: np.ndarray | None = None,
                    gt_point_labels: np.ndarray | None = None) -> dict:
    """:func:`quality_figures` as report.json's ``quality`` (its JSON)."""
    return quality_figures(labels, gt, cloud, gt_points, gt_point_labels).to_json()


def _per_frame_iou(conf, seq) -> dict[str, list]:
    """Per frame, the mean over ground-truth instances of the IoU of the chosen ID: the best
    one in that frame (``frame``) or the sequence-level one (``sequence``)."""
    from lift3d.metrics import video

    n = conf.n_frames
    if conf.gt_ids.size < 2:
        return {"frame": [None] * n, "sequence": [None] * n}
    by_frame = conf.iou_at(video.select_ids(conf, "frame"))[:, 1:]
    pos = {int(p): k for k, p in enumerate(conf.pred_ids)}
    cols = np.array([0] + [pos[seq.per_instance[int(g)][2]] for g in conf.gt_ids[1:]])
    by_seq = conf.iou_at(np.broadcast_to(cols, conf.gt_area.shape))[:, 1:]
    return {"frame": [_num(v) for v in by_frame.mean(1)], "sequence": [_num(v) for v in by_seq.mean(1)]}
