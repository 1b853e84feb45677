"""The figures of one `lift3d segment` run, flat: what `lift3d eval` tabulates per (sequence,
method) and `lift3d batch` lists per scene (one home for both, below either)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

from lift3d.metrics.quality import Instance3DFigures, QualityFigures


@dataclass
class RunFigures:
    """The figures of one run, flat (None where they do not apply).

    Always: n_frames, n_ids, ids_per_frame, H (H(I,M)), s_per_frame (labelling seconds per
    frame). ID figures: sequence_iou (one ID per ground-truth instance, pooled over frames),
    frame_iou (best ID per frame), id_survival (per-frame IoU with one ID per object for the
    whole sequence / with the best ID in each frame, at most 1:
    :meth:`lift3d.metrics.quality.QualityFigures.id_survival`).
    Single-object protocol (binary ground truth, e.g. DAVIS 2016): JF, J, J_recall, J_decay, F,
    F_recall, F_decay (DAVIS, best ID per frame), iou, f1, precision, recall (best ID per frame)
    and the same with the ``seq_`` prefix for one ID for the whole sequence. 3D (labelled
    ground-truth cloud): ap (IoU 0.50:0.90), ap50, ap25, inst_miou, n_gt, n_pred, n_found,
    n_split, n_merged. n_merges: IDs the association merged into others.
    """

    n_frames: int
    n_ids: int
    ids_per_frame: float
    H: float | None
    s_per_frame: float
    sequence_iou: float | None = None
    frame_iou: float | None = None
    id_survival: float | None = None
    JF: float | None = None
    J: float | None = None
    J_recall: float | None = None
    J_decay: float | None = None
    F: float | None = None
    F_recall: float | None = None
    F_decay: float | None = None
    iou: float | None = None
    f1: float | None = None
    precision: float | None = None
    recall: float | None = None
    seq_JF: float | None = None
    seq_J: float | None = None
    seq_J_recall: float | None = None
    seq_J_decay: float | None = None
    seq_F: float | None = None
    seq_F_recall: float | None = None
    seq_F_decay: float | None = None
    seq_iou: float | None = None
    seq_f1: float | None = None
    seq_precision: float | None = None
    seq_recall: float | None = None
    ap: float | None = None
    ap50: float | None = None
    ap25: float | None = None
    inst_miou: float | None = None
    n_gt: int | None = None
    n_pred: int | None = None
    n_found: int | None = None
    n_split: int | None = None
    n_merged: int | None = None
    n_merges: int | None = None

    @classmethod
    def from_report(cls, report: dict, instances: Instance3DFigures | None = None) -> RunFigures:
        """The figures of a run's report.json; ``instances``: 3D figures scored by the eval
        (else the report's own, when it has them)."""
        t = report.get("timings_s", {})
        lab_s = t.get("track", float("nan")) + t.get("geometry", 0.0)
        f = cls(n_frames=report["n_frames"], n_ids=report["n_ids"],
                ids_per_frame=report["ids_per_frame"], H=report["consistency"]["H"],
                s_per_frame=lab_s / max(report["n_frames"], 1))
        if report.get("association") is not None:
            f.n_merges = report["association"]["n_merged_ids"]
        if "quality" in report:
            q = QualityFigures.from_json(report["quality"])
            f.sequence_iou, f.frame_iou = q.sequence.sequence_iou, q.sequence.frame_iou
            f.id_survival = q.id_survival()
            for rule, pre in (("frame", ""), ("sequence", "seq_")):
                if q.davis is not None:
                    d = q.davis[rule]
                    f._set(pre, JF=d.JF, J=d.J["mean"], J_recall=d.J["recall"],
                           J_decay=d.J["decay"], F=d.F["mean"], F_recall=d.F["recall"],
                           F_decay=d.F["decay"])
                if q.single_object is not None:
                    m = q.single_object[rule]
                    f._set(pre, iou=m.iou, f1=m.f1, precision=m.precision, recall=m.recall)
            instances = instances or q.instances_3d
        if instances is not None:
            i = instances
            f.ap, f.ap50, f.ap25, f.inst_miou = i.ap, i.ap50, i.ap25, i.mean_iou
            f.n_gt, f.n_pred, f.n_found = i.n_gt, i.n_pred, i.n_found
            f.n_split, f.n_merged = i.n_split, i.n_merged
        return f

    def _set(self, prefix: str, **values) -> None:
        for k, v in values.items():
            setattr(self, prefix + k, v)

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def figures(report: dict) -> dict:
    """Flat figures of one run's report as JSON (:class:`RunFigures`; `lift3d batch` lists
    them per scene)."""
    return RunFigures.from_report(report).to_json()
