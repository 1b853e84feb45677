"""`lift3d eval`: run methods over a dataset and compare them (issues 5 and 13).

Methods (:data:`METHODS`), every one with the same segmenter and geometry:

* ``tracked``: the paper's method as written (IDs carried by the tracker, association off);
* ``associated``: tracked, then the association stage (``EvalConfig.associate``, ``auto`` by
  default: 3D merging on 3D geometry, tracklet linking on 2D flow), which merges tracked IDs
  that are one object;
* ``independent``: the per-frame baseline (each frame segmented alone).

For every sequence and method, :func:`~lift3d.pipeline.run_segment` writes
``OUT/<seq>/<method>/`` (cached and resumable: a finished run with the same configuration is
read back, a half-finished one resumes). Then the figures are gathered into

* ``OUT/results.json``: :class:`EvalResults` as JSON: per sequence and method the
  :class:`RunFigures` and per-frame curves, and the mean per method over sequences;
* ``OUT/results.md``: the same as markdown tables, and where tracking (or association) failed
  to raise the ID figures, AP or H over the method below it;
* ``OUT/plots/<seq>_per_frame.png`` (per-frame IoU and H), ``OUT/plots/<seq>_strip.png`` (the
  IDs of each method on a strip of frames) and ``OUT/plots/summary.png``.

Datasets (:func:`discover`): a DAVIS root (every sequence of ``JPEGImages/480p``), a folder of
scene folders with ``scene.json`` (generated synthetic scenes), or a single scene folder of any
layout :func:`~lift3d.io.load_scene` reads. Geometry ``auto`` is ``flow`` for video (DAVIS,
image folders) and ``rgbd`` for posed RGB-D (ScanNet export, 7-Scenes, TUM).

3D instance figures (class-agnostic AP averaged over IoU 0.50:0.90 as ScanNet's script does,
AP50, AP25; :mod:`lift3d.metrics.instance3d`) score each run's ``cloud.ply`` against the
sequence's labelled 3D ground truth (:func:`lift3d.io.gt3d.find_gt3d`: a ScanNet scan's
``*_vh_clean_2.ply`` + ``*.aggregation.json`` + ``*_vh_clean_2.0.010000.segs.json`` in the
scene folder, or lift3d's ``gt_cloud.ply``; ``EvalConfig.gt3d`` for a one-sequence dataset),
carried onto the cloud by nearest neighbour; where the run scored its cloud against the same
ground truth (a scene's ``gt_cloud.ply``, default scoring: :func:`scored_by_run`) its
report's figures are taken. ID survival = per-frame IoU with one ID per object
for the whole sequence / per-frame IoU with the best ID in each frame
(:meth:`lift3d.metrics.quality.QualityFigures.id_survival`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path

import numpy as np

from lift3d.errors import InputError
from lift3d.geometry.config import resolve_geometry
from lift3d.io.atomic import write_json, write_text
from lift3d.metrics.instance3d import InstanceMetricsConfig
from lift3d.metrics.quality import Instance3DFigures, QualityFigures
from lift3d.pipeline import SegmentConfig, run_segment
from lift3d.run_figures import RunFigures

METHODS = ("tracked", "associated", "independent")
VIDEO_LAYOUTS = ("davis", "images")


@dataclass(frozen=True)
class EvalConfig:
    """What `lift3d eval` runs, with its defaults."""

    methods: tuple[str, ...] = METHODS
    """Methods to compare (:data:`METHODS`): tracked, associated and/or independent."""
    segmenter: str = "classical"
    """Segmenter for every method: classical (weight-free), sam, or auto."""
    geometry: str = "auto"
    """auto (flow for DAVIS / image folders, rgbd for posed RGB-D), or rgbd | flow | mast3r."""
    associate: str = "auto"
    """Association of the ``associated`` method: auto | 3d | tracklets | off (off: the same
    runs as ``tracked``)."""
    stride: int = 1
    """Use every stride-th frame."""
    max_frames: int | None = None
    """Use at most this many frames per sequence (after stride)."""
    sequences: tuple[str, ...] | None = None
    """Only these sequences (names as :func:`discover` gives them); None = all."""
    gt3d: str | None = None
    """Labelled 3D ground truth (scan folder, ScanNet mesh or labelled PLY) of a one-sequence
    dataset; None = found in each scene folder (:func:`lift3d.io.gt3d.find_gt3d`)."""
    instances: InstanceMetricsConfig = field(default_factory=InstanceMetricsConfig)
    """How 3D instances are scored (ScanNet's protocol)."""
    strip_frames: int = 8
    """Frames in the strip of ID overlays per sequence."""
    segment: SegmentConfig = field(default_factory=lambda: SegmentConfig(overlays=False))
    """Base configuration of every run (its geometry, segmenter, mode, association, stride and
    max_frames are replaced by the fields above); no per-frame overlays: the eval draws its
    own strip."""
    progress: bool = True
    """Show progress bars."""


@dataclass(frozen=True)
class Sequence:
    """One scene folder to evaluate: its name in the results, path and layout."""

    name: str
    path: Path
    layout: str


def discover(dataset: str | Path) -> list[Sequence]:
    """The sequences of ``dataset``: a DAVIS root -> each sequence; a folder of scene folders
    with ``scene.json`` -> each; a scene folder of any readable layout -> itself."""
    from lift3d.io import davis, detect_layout, list_davis_sequences
    from lift3d.io.common import require_dir

    root = require_dir(dataset)
    if davis.is_davis_root(root):
        res = davis.DEFAULT_RESOLUTION
        if not (root / davis.IMAGES_DIR / res).is_dir():
            res = sorted(p.name for p in (root / davis.IMAGES_DIR).iterdir() if p.is_dir())[0]
        names = list_davis_sequences(root, res)
        return [Sequence(n, root / davis.IMAGES_DIR / res / n, "davis") for n in names]
    if not (root / "scene.json").is_file():
        subs = sorted(p for p in root.iterdir() if p.is_dir() and (p / "scene.json").is_file())
        if subs:
            return [Sequence(p.name, p, detect_layout(p)) for p in subs]
    return [Sequence(root.name, root, detect_layout(root))]


def select(seqs: list[Sequence], names: tuple[str, ...] | None) -> list[Sequence]:
    """The sequences named in ``names`` (all when None), in dataset order."""
    if not names:
        return seqs
    have = {s.name for s in seqs}
    unknown = [n for n in names if n not in have]
    if unknown:
        raise InputError(f"no sequence {', '.join(map(repr, unknown))} in the dataset", None,
                         f"sequences: {', '.join(s.name for s in seqs)}")
    return [s for s in seqs if s.name in names]


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}", None, f"use any of {', '.join(METHODS)}")


def run_config(seq: Sequence, method: str, cfg: EvalConfig) -> SegmentConfig:
    """The :class:`SegmentConfig` of one (sequence, method) run."""
    _check_method(method)
    base = cfg.segment
    associate = replace(base.associate, method=cfg.associate if method == "associated" else "off")
    return replace(base, geometry=replace(base.geometry, backend=resolve_geometry(cfg.geometry, seq.layout)),
                   segmenter=replace(base.segmenter, name=cfg.segmenter),
                   mode="independent" if method == "independent" else "tracked",
                   associate=associate, stride=cfg.stride, max_frames=cfg.max_frames)


def run_one(seq: Sequence, method: str, out: Path, cfg: EvalConfig) -> dict:
    """The report of one run: read back when ``out`` holds a finished run of the same
    configuration, else made (resuming cached frames) by :func:`run_segment`."""
    scfg = run_config(seq, method, cfg)
    report_path = out / "report.json"
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        same = report.get("config") == scfg.to_json()
        if same and report.get("scene") == str(seq.path.resolve()) and "timings_s" in report:
            return report
    return run_segment(seq.path, out, scfg, progress=cfg.progress)


# ---------------------------------------------------------------------------------------------
# Figures (typed; turned into JSON once, in EvalResults.to_json)


@dataclass
class PerFrame:
    """Per-frame curves of one run: H, and the IoU of the chosen ID by each rule (None when
    not measured); entries are None where undefined."""

    H: list[float | None]
    iou_frame: list[float | None] | None = None
    iou_sequence: list[float | None] | None = None

    @classmethod
    def from_report(cls, report: dict) -> PerFrame:
        iou: dict = {}
        if "quality" in report:
            q = QualityFigures.from_json(report["quality"])
            if q.single_object is not None:  # the same ID choices as the table's IoU and seqID IoU
                iou = {rule: q.single_object[rule].per_frame_iou for rule in ("frame", "sequence")}
            elif q.sequence.per_frame_iou is not None:
                iou = q.sequence.per_frame_iou
        return cls(report["consistency"]["per_frame"], iou.get("frame"), iou.get("sequence"))


@dataclass
class MethodResult:
    """One (sequence, method): its figures, per-frame curves, the segmenter that ran, and
    per ground-truth object its sequence IoU (``per_object``, {ID: IoU}; multi-instance
    ground truth only)."""

    figures: RunFigures
    per_frame: PerFrame
    segmenter: str
    per_object: dict[str, float | None] = field(default_factory=dict)


@dataclass
class SequenceResult:
    """One sequence: where it is, how it was read, its 3D ground truth, each method, and the
    kind of each ground-truth object of a generated scene (:func:`object_kinds`)."""

    path: str
    layout: str
    geometry: str
    gt3d: str | None
    methods: dict[str, MethodResult] = field(default_factory=dict)
    kinds: dict[str, str] = field(default_factory=dict)


@dataclass
class EvalResults:
    """Everything `lift3d eval` reports; :meth:`to_json` is ``results.json``."""

    dataset: str
    config: dict
    sequences: dict[str, SequenceResult] = field(default_factory=dict)
    mean: dict[str, dict[str, float | None]] = field(default_factory=dict)
    loss_by_kind: dict[str, dict[str, dict]] = field(default_factory=dict)
    verdicts: list[str] = field(default_factory=list)
    plots: list[str] = field(default_factory=list)

    def rows(self, method: str) -> list[RunFigures]:
        return [s.methods[method].figures for s in self.sequences.values()]

    def to_json(self) -> dict:
        d = asdict(self)
        for seq in d["sequences"].values():
            for m in seq["methods"].values():
                m["figures"] = {k: v for k, v in m["figures"].items() if v is not None}
        return d


def mean_figures(rows: list[RunFigures]) -> dict[str, float | None]:
    """Mean of every figure over the sequences that have it (figures none has are left out),
    and ``n_sequences``."""
    out: dict[str, float | None] = {}
    for f in fields(RunFigures):
        vals = [v for v in (getattr(r, f.name) for r in rows) if not _nan(v)]
        if vals:
            out[f.name] = float(np.mean(vals))
    out["n_sequences"] = len(rows)
    return out


def per_object(report: dict) -> dict[str, float | None]:
    """{ground-truth ID: sequence IoU} of a run's report ({} for binary ground truth, or a
    report written before lift3d recorded it)."""
    per = report.get("quality", {}).get("sequence", {}).get("per_instance") or {}
    return {g: v[0] for g, v in per.items()}


def object_kinds(path: str | Path) -> dict[str, str]:
    """{ground-truth ID: kind} of a scene made by ``lift3d make-scene`` (its ``scene.json``):
    the object's shape, then what it stands on ("box on shelf") or "against a wall"; {} for
    any other scene."""
    from lift3d.synth import generated_scene

    doc = generated_scene(path)
    if doc is None:
        return {}
    objects = {o["id"]: o for o in doc.get("objects", [])}
    kinds = {}
    for i, o in objects.items():
        kind = o["shape"]
        if o.get("support") in objects:
            kind += " on " + objects[o["support"]]["shape"]
        elif o.get("wall"):
            kind += " against a wall"
        kinds[str(i)] = kind
    return kinds


def loss_by_kind(results: EvalResults) -> dict[str, dict[str, dict]]:
    """Per method and kind of object (generated scenes only, :func:`object_kinds`): ``n``
    objects, their mean ``sequence_iou``, and ``loss``, the share of the method's mean
    sequence IoU over all these objects that the kind loses (sum of 1 - IoU over the number
    of objects): the losses of all kinds add up to 1 - the mean. Objects the runs scored no
    IoU for are left out; {} when no sequence has kinds."""
    out: dict[str, dict[str, dict]] = {}
    methods = dict.fromkeys(m for s in results.sequences.values() for m in s.methods)
    for method in methods:
        by: dict[str, list[float]] = {}
        for seq in results.sequences.values():
            m = seq.methods.get(method)
            if m is None or not seq.kinds:
                continue
            for g, iou in m.per_object.items():
                if not _nan(iou):
                    by.setdefault(seq.kinds.get(g, "other"), []).append(float(iou))
        n = sum(len(v) for v in by.values())
        if not n:
            continue
        rows = {k: {"n": len(v), "sequence_iou": float(np.mean(v)),
                    "loss": float(np.sum(1.0 - np.asarray(v)) / n)} for k, v in by.items()}
        out[method] = dict(sorted(rows.items(), key=lambda kv: (-kv[1]["loss"], kv[0])))
    return out


def _nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


# Higher is better for these: the ones tracking must raise over the baseline, and association
# over tracking.
ID_FIGURES = ("seq_iou", "seq_JF", "sequence_iou", "id_survival", "inst_miou", "ap")
COMPARISONS = (("tracked", "independent", "tracking"), ("associated", "tracked", "association"))


def verdicts(results: EvalResults, associate: str) -> list[str]:
    """One line per sequence where tracking did not raise H or an ID figure over the per-frame
    baseline, or association (when on) did not raise an ID figure over tracking."""
    lines = []
    for name, seq in results.sequences.items():
        for upper, lower, what in COMPARISONS:
            if upper not in seq.methods or lower not in seq.methods:
                continue
            if upper == "associated" and associate == "off":
                continue
            t, b = seq.methods[upper].figures, seq.methods[lower].figures
            keys = ID_FIGURES if upper == "associated" else ("H", *ID_FIGURES)
            worse = [k for k in keys if not _nan(getattr(t, k)) and not _nan(getattr(b, k))
                     and getattr(t, k) <= getattr(b, k)]
            if worse:
                vs = "; ".join(f"{k} {getattr(t, k):.3f} vs {getattr(b, k):.3f}" for k in worse)
                lines.append(f"{name}: {what} did not raise {', '.join(worse)} ({vs})")
    return lines


def score_instances(run_dir: Path, gt, cfg: InstanceMetricsConfig) -> Instance3DFigures | None:
    """3D figures of a run's ``cloud.ply`` against labelled ground truth (None without a
    cloud: 2D geometry)."""
    from lift3d.io.outputs import read_ply
    from lift3d.metrics.instance3d import score_cloud

    path = run_dir / "cloud.ply"
    if gt is None or not path.is_file():
        return None
    cloud = read_ply(path)
    if len(cloud) == 0:
        return None
    s = score_cloud(cloud.points, cloud.labels, cloud.label_conf, gt.points, gt.labels, cfg,
                    cloud.instance_confidence())
    return Instance3DFigures.from_scores(s)


def scored_by_run(report: dict, gt, cfg: InstanceMetricsConfig) -> bool:
    """Whether the run's report.json already holds the 3D figures :func:`score_instances`
    would give: `lift3d segment` scores its cloud against the ``gt_cloud.ply`` of a ScanNet-
    layout scene (its ``label`` property, :func:`lift3d.io.scannet.load_scannet`) with the
    default :class:`InstanceMetricsConfig`; the same file, property and config here mean the
    same inputs (the report's cloud is the ``cloud.ply`` it wrote)."""
    from lift3d.io.scannet import GT_CLOUD

    if gt is None or "instances_3d" not in report.get("quality", {}):
        return False
    return (report.get("layout") == "scannet" and gt.prop == "label"
            and cfg == InstanceMetricsConfig()
            and Path(gt.source).resolve() == (Path(report["scene"]) / GT_CLOUD).resolve())


def ground_truth_3d(seq: Sequence, cfg: EvalConfig, n_sequences: int):
    """The sequence's labelled 3D ground truth (:class:`lift3d.io.gt3d.GroundTruth3D`) or
    None: ``cfg.gt3d`` (one-sequence datasets only), else what its folder holds."""
    from lift3d.io.gt3d import find_gt3d, load_gt3d

    if cfg.gt3d is not None:
        if n_sequences != 1:
            raise InputError(f"--gt3d names one scene's ground truth but the dataset has "
                             f"{n_sequences} sequences", cfg.gt3d,
                             "evaluate that scene alone, or put each scene's ground truth in "
                             "its folder")
        return load_gt3d(cfg.gt3d)
    return find_gt3d(seq.path)


def evaluate(dataset: str | Path, out: str | Path, cfg: EvalConfig = EvalConfig(),
             ray=None) -> EvalResults:
    """Run ``cfg.methods`` over every sequence of ``dataset``; write ``out/results.json``,
    ``out/results.md`` and ``out/plots/``; return the results. ``ray``: a
    :class:`lift3d.batch.BatchConfig` to run the (sequence, method) runs as Ray tasks."""
    from lift3d import plots

    out = Path(out)
    seqs = select(discover(dataset), cfg.sequences)
    for m in cfg.methods:
        _check_method(m)
    if ray is not None:  # lift3d batch's fan-out; the figures and plots are made here as usual

        reports = eval_reports(seqs, out, cfg, ray)
    results = EvalResults(str(Path(dataset).resolve()),
                          json.loads(json.dumps(asdict(cfg), default=str)))
    for seq in seqs:
        gt = ground_truth_3d(seq, cfg, len(seqs))
        entry = SequenceResult(str(seq.path), seq.layout, resolve_geometry(cfg.geometry, seq.layout),
                               None if gt is None else str(gt.source), kinds=object_kinds(seq.path))
        for method in cfg.methods:
            run_dir = out / seq.name / method
            report = (reports[seq.name, method] if ray is not None
                      else run_one(seq, method, run_dir, cfg))
            # None: the run scored its cloud against this ground truth (RunFigures reads it)
            inst = (None if scored_by_run(report, gt, cfg.instances)
                    else score_instances(run_dir, gt, cfg.instances))
            entry.methods[method] = MethodResult(RunFigures.from_report(report, inst),
                                                 PerFrame.from_report(report), report["segmenter"],
                                                 per_object(report))
        results.sequences[seq.name] = entry
        results.plots += plots.sequence_plots(seq, entry, out, list(cfg.methods), cfg.strip_frames)
    for method in cfg.methods:
        results.mean[method] = mean_figures(results.rows(method))
    results.loss_by_kind = loss_by_kind(results)
    results.verdicts = verdicts(results, cfg.associate)
    results.plots.append(plots.summary_plot(results, out / "plots" / "summary.png"))
    write_json(out / "results.json", results.to_json())
    write_text(out / "results.md", markdown(results))
    return results


# ---------------------------------------------------------------------------------------------
# Markdown

COLUMNS = (
    ("n_frames", "frames", "d"), ("n_ids", "IDs", "d"), ("ids_per_frame", "IDs/frame", ".1f"),
    ("n_merges", "merged IDs", "d"), ("H", "H", ".3f"),
    ("ap", "AP", ".3f"), ("ap50", "AP50", ".3f"), ("ap25", "AP25", ".3f"),
    ("id_survival", "ID survival", ".3f"),
    ("sequence_iou", "seq IoU (pooled)", ".3f"), ("frame_iou", "frame IoU", ".3f"),
    ("JF", "J&F", ".3f"), ("J", "J", ".3f"), ("J_recall", "J rec", ".3f"),
    ("J_decay", "J decay", ".3f"), ("F", "F", ".3f"), ("F_recall", "F rec", ".3f"),
    ("F_decay", "F decay", ".3f"),
    ("iou", "IoU", ".3f"), ("f1", "F1", ".3f"), ("precision", "P", ".3f"), ("recall", "R", ".3f"),
    ("seq_JF", "seqID J&F", ".3f"), ("seq_iou", "seqID IoU", ".3f"), ("seq_f1", "seqID F1", ".3f"),
    ("seq_precision", "seqID P", ".3f"), ("seq_recall", "seqID R", ".3f"),
    ("inst_miou", "3D mIoU", ".3f"),
    ("n_gt", "GT inst", "d"), ("n_pred", "pred inst", "d"), ("n_found", "found", "d"),
    ("n_split", "split", "d"), ("n_merged", "merged", "d"), ("s_per_frame", "s/frame", ".2f"),
)


def _fmt(v, spec: str) -> str:
    if _nan(v):
        return "–"
    if spec == "d":
        return f"{int(v)}" if float(v).is_integer() else f"{v:.1f}"
    return format(v, spec)


def markdown(results: EvalResults) -> str:
    """results.md: a table of every sequence and method, the means, the loss by kind of
    object (generated scenes), and the verdicts."""
    rows = [(name, m, e.figures.to_json()) for name, s in results.sequences.items()
            for m, e in s.methods.items()]
    rows += [("**mean**", m, f) for m, f in results.mean.items()]
    cols = [c for c in COLUMNS if any(not _nan(r[2].get(c[0])) for r in rows)]
    head = ["sequence", "method", *(c[1] for c in cols)]
    c = results.config
    gts = sorted({s.gt3d for s in results.sequences.values() if s.gt3d})
    lines = [
        f"# lift3d eval: {results.dataset}", "",
        f"segmenter {c['segmenter']}, geometry {c['geometry']}, association of `associated` "
        f"{c['associate']}, stride {c['stride']}, max frames {c['max_frames']}. "
        "AP: class-agnostic 3D AP, ScanNet's protocol (mean over IoU 0.50:0.90 as its script "
        "computes it; AP50, AP25 at one threshold; unannotated points ignored; instances ranked "
        "by mean vote share x log(1 + observations)). ID survival: "
        "per-frame IoU with one ID per object for the whole sequence / with the best ID in each "
        "frame (at most 1). "
        "seqID = one predicted ID for the whole sequence (single-object protocol); the others "
        "without the prefix take the best ID in each frame. Means are over sequences.", "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
    ]
    for name, m, f in rows:
        lines.append("| " + " | ".join([name, m, *(_fmt(f.get(k), s) for k, _, s in cols)]) + " |")
    if gts:
        lines += ["", "3D ground truth: " + ", ".join(f"`{g}`" for g in gts)]
    lines += _kinds_table(results)
    lines += ["", "## Tracking vs the per-frame baseline, association vs tracking", ""]
    lines += [f"- {v}" for v in results.verdicts] or [
        "- every method raised H and the ID figures over the one below it on every sequence."]
    lines += ["", "## Plots", ""] + [f"![{Path(p).stem}](plots/{Path(p).name})"
                                     for p in results.plots]
    return "\n".join(lines) + "\n"


def _kinds_table(results: EvalResults) -> list[str]:
    """results.md's lines on where the sequence IoU is lost, by kind of object ([] when the
    dataset has no generated scene)."""
    by = results.loss_by_kind
    if not by:
        return []
    methods = list(by)
    first = by[methods[0]]
    kinds = list(first) + sorted({k for m in methods for k in by[m]} - set(first))
    lines = ["", "## Where the sequence IoU is lost, by kind of object", "",
             "Generated scenes: per kind, its objects' mean sequence IoU and, in brackets, the "
             "share of all objects' mean that the kind loses (the brackets of a method add up "
             "to 1 minus its mean over the objects).", "",
             "| kind | objects | " + " | ".join(methods) + " |", "|" + "---|" * (2 + len(methods))]
    for k in kinds:
        n = next(by[m][k]["n"] for m in methods if k in by[m])
        cells = [f"{by[m][k]['sequence_iou']:.3f} ({by[m][k]['loss']:.3f})" if k in by[m] else "-"
                 for m in methods]
        lines.append(f"| {k} | {n} | " + " | ".join(cells) + " |")
    return lines


# ---------------------------------------------------------------------------------------------
# `lift3d eval --ray`: `lift3d batch`'s fan-out over (sequence, method) runs


def eval_run(seq, method: str, out: str, cfg) -> dict:
    """One run of `lift3d eval` inside a Ray task (:func:`run_one`)."""
    return {"status": "done", "report": run_one(seq, method, Path(out), cfg)}


def eval_reports(seqs: list, out: Path, cfg, opts) -> dict[tuple[str, str], dict]:
    """Every (sequence, method) report of an evaluation, one Ray task each; the first failure
    raises its one-line error after the others have finished."""
    from lift3d.batch import fan_out
    from lift3d.errors import Lift3DError

    quiet = replace(cfg, progress=False)
    calls = {f"{s.name}/{m}": (s, m, str(out / s.name / m), quiet) for s in seqs for m in cfg.methods}
    recs: dict[str, dict] = {}
    fan_out(eval_run, calls, opts, recs.__setitem__)
    failed = [k for k in calls if recs[k]["status"] == "failed"]
    if failed:
        raise Lift3DError(f"{len(failed)} run(s) failed, first {failed[0]}: {recs[failed[0]]['error']}")
    return {tuple(k.split("/", 1)): recs[k]["report"] for k in calls}
