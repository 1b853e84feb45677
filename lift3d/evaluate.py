"""`lift3d eval`: run methods over a dataset and compare them (issue 5).

For every sequence of a dataset and every method (``tracked``, the method; ``independent``,
the per-frame baseline with the same segmenter), :func:`~lift3d.pipeline.run_segment` writes
``OUT/<seq>/<method>/`` (cached and resumable: a finished run with the same configuration is
read back, a half-finished one resumes). Then the figures are gathered into

* ``OUT/results.json``: per sequence and method, and the mean per method over sequences;
* ``OUT/results.md``: the same as markdown tables, and where tracking failed to raise the
  sequence-level ID figures or H over the baseline;
* ``OUT/plots/<seq>_per_frame.png`` (per-frame IoU and H), ``OUT/plots/<seq>_strip.png`` (the
  IDs of each method on a strip of frames) and ``OUT/plots/summary.png``.

Datasets (:func:`discover`): a DAVIS root (every sequence of ``JPEGImages/480p``), a folder of
scene folders with ``scene.json`` (generated synthetic scenes), or a single scene folder of any
layout :func:`~lift3d.io.load_scene` reads. Geometry ``auto`` is ``flow`` for video (DAVIS,
image folders) and ``rgbd`` for posed RGB-D (ScanNet export, 7-Scenes, TUM).

Figure keys (flat, per sequence and method; absent when they do not apply):

* ``H``: H(I,M) of the ID maps; ``n_ids``, ``ids_per_frame``; ``s_per_frame``: labelling time.
* single-object protocol (binary ground truth, e.g. DAVIS 2016): ``JF``, ``J``, ``J_recall``,
  ``J_decay``, ``F``, ``F_recall``, ``F_decay`` (DAVIS, best ID per frame), ``iou``, ``f1``,
  ``precision``, ``recall`` (best ID per frame), and the same with the ``seq_`` prefix for the
  per-sequence-ID rule (one ID for the whole sequence: an ID switch costs).
* ``sequence_iou`` (pooled over frames, one ID per ground-truth instance) and ``frame_iou``.
* 3D (ground-truth cloud): ``inst_miou``, ``ap25``, ``ap50``, ``n_gt``, ``n_found``,
  ``n_split``, ``n_merged``, ``n_pred``.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from lift3d.errors import InputError
from lift3d.io.atomic import write_json, write_text
from lift3d.pipeline import SegmentConfig, run_segment

METHODS = ("tracked", "independent")
VIDEO_LAYOUTS = ("davis", "images")
RGBD_LAYOUTS = ("scannet", "7scenes", "tum")


@dataclass(frozen=True)
class EvalConfig:
    """What `lift3d eval` runs, with its defaults."""

    methods: tuple[str, ...] = METHODS
    """Methods to compare: tracked (the method) and/or independent (per-frame baseline)."""
    segmenter: str = "classical"
    """Segmenter for every method: classical (weight-free), sam, or auto."""
    geometry: str = "auto"
    """auto (flow for DAVIS / image folders, rgbd for posed RGB-D), or rgbd | flow | mast3r."""
    stride: int = 1
    """Use every stride-th frame."""
    max_frames: int | None = None
    """Use at most this many frames per sequence (after stride)."""
    sequences: tuple[str, ...] | None = None
    """Only these sequences (names as :func:`discover` gives them); None = all."""
    strip_frames: int = 8
    """Frames in the strip of ID overlays per sequence."""
    segment: SegmentConfig = field(default_factory=lambda: SegmentConfig(overlays=False))
    """Base configuration of every run (its geometry, segmenter, mode, stride and max_frames
    are replaced by the fields above); no per-frame overlays: the eval draws its own strip."""
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


def geometry_for(layout: str, geometry: str) -> str:
    """The geometry backend for a layout (``auto``: flow for video, rgbd for posed RGB-D)."""
    if geometry != "auto":
        return geometry
    return "rgbd" if layout in RGBD_LAYOUTS else "flow"


def run_config(seq: Sequence, method: str, cfg: EvalConfig) -> SegmentConfig:
    """The :class:`SegmentConfig` of one (sequence, method) run."""
    if method not in METHODS:
        raise InputError(f"unknown method {method!r}", None, f"use {' and/or '.join(METHODS)}")
    return replace(cfg.segment, geometry=geometry_for(seq.layout, cfg.geometry),
                   segmenter=cfg.segmenter, mode=method, stride=cfg.stride,
                   max_frames=cfg.max_frames)


def run_one(seq: Sequence, method: str, out: Path, cfg: EvalConfig) -> dict:
    """The report of one run: read back when ``out`` holds a finished run of the same
    configuration, else made (resuming cached frames) by :func:`run_segment`."""
    scfg = run_config(seq, method, cfg)
    report_path = out / "report.json"
    if report_path.is_file():
        report = json.loads(report_path.read_text())
        same = report.get("config") == json.loads(json.dumps(asdict(scfg), default=str))
        if same and report.get("scene") == str(seq.path.resolve()) and "timings_s" in report:
            return report
    return run_segment(seq.path, out, scfg, progress=cfg.progress)


def figures(report: dict) -> dict:
    """Flat figures of one run's report (keys in the module docstring)."""
    t = report.get("timings_s", {})
    lab_s = t.get("track", float("nan")) + t.get("geometry", 0.0)
    f: dict = {
        "n_frames": report["n_frames"], "n_ids": report["n_ids"],
        "ids_per_frame": report["ids_per_frame"], "H": report["consistency"]["H"],
        "s_per_frame": lab_s / max(report["n_frames"], 1),
    }
    q = report.get("quality", {})
    if "sequence" in q:
        f["sequence_iou"] = q["sequence"]["sequence_iou"]
        f["frame_iou"] = q["sequence"]["frame_iou"]
    for rule, pre in (("frame", ""), ("sequence", "seq_")):
        if "davis" in q:
            d = q["davis"][rule]
            f[f"{pre}JF"] = d["JF"]
            f[f"{pre}J"], f[f"{pre}J_recall"], f[f"{pre}J_decay"] = (
                d["J"]["mean"], d["J"]["recall"], d["J"]["decay"])
            f[f"{pre}F"], f[f"{pre}F_recall"], f[f"{pre}F_decay"] = (
                d["F"]["mean"], d["F"]["recall"], d["F"]["decay"])
        if "single_object" in q:
            s = q["single_object"][rule]
            for k in ("iou", "f1", "precision", "recall"):
                f[f"{pre}{k}"] = s[k]
    if "instances_3d" in q:
        i = q["instances_3d"]
        f.update(inst_miou=i["mean_iou"], ap25=i["ap"].get("0.25"), ap50=i["ap"].get("0.5"),
                 n_gt=i["n_gt"], n_pred=i["n_pred"], n_found=i["n_found"],
                 n_split=i["n_split"], n_merged=i["n_merged"])
    return f


def per_frame(report: dict) -> dict[str, list]:
    """Per-frame curves of one run: H, and IoU of the chosen ID by each rule (when measured)."""
    quality = report.get("quality", {})
    if "single_object" in quality:  # the same ID choices as the table's IoU and seqID IoU
        so = quality["single_object"]
        q = {rule: so[rule]["per_frame_iou"] for rule in ("frame", "sequence")}
    else:
        q = quality.get("sequence", {}).get("per_frame_iou", {})
    return {"H": report["consistency"]["per_frame"], "iou_frame": q.get("frame"),
            "iou_sequence": q.get("sequence")}


def mean_figures(rows: list[dict]) -> dict:
    """Mean of every figure over the sequences that have it (NaN and None left out)."""
    keys = sorted({k for r in rows for k in r})
    out = {}
    for k in keys:
        vals = [r[k] for r in rows if isinstance(r.get(k), (int, float)) and not _nan(r[k])]
        out[k] = float(np.mean(vals)) if vals else None
    out["n_sequences"] = len(rows)
    return out


def _nan(v) -> bool:
    return v is None or (isinstance(v, float) and math.isnan(v))


# Higher is better for these: the ones tracking must raise over the baseline.
ID_FIGURES = ("seq_iou", "seq_JF", "sequence_iou", "inst_miou")


def verdicts(results: dict) -> list[str]:
    """One line per sequence where tracking did not raise H or a sequence-level ID figure."""
    lines = []
    for name, seq in results["sequences"].items():
        m = seq["methods"]
        if "tracked" not in m or "independent" not in m:
            continue
        t, b = m["tracked"]["figures"], m["independent"]["figures"]
        worse = [k for k in ("H", *ID_FIGURES)
                 if not _nan(t.get(k)) and not _nan(b.get(k)) and t[k] <= b[k]]
        if worse:
            lines.append(f"{name}: tracking did not raise {', '.join(worse)} "
                         f"({'; '.join(f'{k} {t[k]:.3f} vs {b[k]:.3f}' for k in worse)})")
    return lines


def evaluate(dataset: str | Path, out: str | Path, cfg: EvalConfig = EvalConfig(),
             ray=None) -> dict:
    """Run ``cfg.methods`` over every sequence of ``dataset``; write ``out/results.json``,
    ``out/results.md`` and ``out/plots/``; return the results dict. ``ray``: a
    :class:`lift3d.batch.BatchConfig` to run the (sequence, method) runs as Ray tasks."""
    from lift3d import plots

    out = Path(out)
    seqs = select(discover(dataset), cfg.sequences)
    if ray is not None:  # lift3d batch's fan-out; the figures and plots are made here as usual
        from lift3d.batch import eval_reports

        reports = eval_reports(seqs, out, cfg, ray)
    results: dict = {
        "dataset": str(Path(dataset).resolve()),
        "config": json.loads(json.dumps(asdict(cfg), default=str)),
        "sequences": {}, "mean": {},
    }
    for seq in seqs:
        entry = {"path": str(seq.path), "layout": seq.layout,
                 "geometry": geometry_for(seq.layout, cfg.geometry), "methods": {}}
        for method in cfg.methods:
            report = (reports[seq.name, method] if ray is not None
                      else run_one(seq, method, out / seq.name / method, cfg))
            entry["methods"][method] = {"figures": figures(report), "per_frame": per_frame(report),
                                        "segmenter": report["segmenter"]}
        results["sequences"][seq.name] = entry
        results["plots"] = results.get("plots", []) + plots.sequence_plots(
            seq, entry, out, list(cfg.methods), cfg.strip_frames)
    for method in cfg.methods:
        rows = [s["methods"][method]["figures"] for s in results["sequences"].values()]
        results["mean"][method] = mean_figures(rows)
    results["verdicts"] = verdicts(results)
    results.setdefault("plots", []).append(plots.summary_plot(results, out / "plots" / "summary.png"))
    write_json(out / "results.json", results)
    write_text(out / "results.md", markdown(results))
    return results


# ---------------------------------------------------------------------------------------------
# Markdown

COLUMNS = (
    ("n_frames", "frames", "d"), ("n_ids", "IDs", "d"), ("ids_per_frame", "IDs/frame", ".1f"),
    ("H", "H", ".3f"),
    ("JF", "J&F", ".3f"), ("J", "J", ".3f"), ("J_recall", "J rec", ".3f"),
    ("J_decay", "J decay", ".3f"), ("F", "F", ".3f"), ("F_recall", "F rec", ".3f"),
    ("F_decay", "F decay", ".3f"),
    ("iou", "IoU", ".3f"), ("f1", "F1", ".3f"), ("precision", "P", ".3f"), ("recall", "R", ".3f"),
    ("seq_JF", "seqID J&F", ".3f"), ("seq_iou", "seqID IoU", ".3f"), ("seq_f1", "seqID F1", ".3f"),
    ("seq_precision", "seqID P", ".3f"), ("seq_recall", "seqID R", ".3f"),
    ("sequence_iou", "seq IoU (pooled)", ".3f"), ("frame_iou", "frame IoU", ".3f"),
    ("inst_miou", "3D mIoU", ".3f"), ("ap25", "AP25", ".3f"), ("ap50", "AP50", ".3f"),
    ("n_gt", "GT inst", "d"), ("n_found", "found", "d"), ("n_split", "split", "d"),
    ("n_merged", "merged", "d"), ("s_per_frame", "s/frame", ".2f"),
)


def _fmt(v, spec: str) -> str:
    if _nan(v):
        return "–"
    if spec == "d":
        return f"{int(v)}" if float(v).is_integer() else f"{v:.1f}"
    return format(v, spec)


def markdown(results: dict) -> str:
    """results.md: a table of every sequence and method, the means, and the verdicts."""
    rows = [(name, m, e["figures"]) for name, s in results["sequences"].items()
            for m, e in s["methods"].items()]
    rows += [("**mean**", m, f) for m, f in results["mean"].items()]
    cols = [c for c in COLUMNS if any(not _nan(r[2].get(c[0])) for r in rows)]
    head = ["sequence", "method", *(c[1] for c in cols)]
    lines = [
        f"# lift3d eval: {results['dataset']}", "",
        f"segmenter {results['config']['segmenter']}, geometry {results['config']['geometry']}, "
        f"stride {results['config']['stride']}, max frames {results['config']['max_frames']}. "
        "seqID = one predicted ID for the whole sequence (single-object protocol); the others "
        "without the prefix take the best ID in each frame.", "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
    ]
    for name, m, f in rows:
        lines.append("| " + " | ".join([name, m, *(_fmt(f.get(k), s) for k, _, s in cols)]) + " |")
    lines += ["", "## Tracking vs the per-frame baseline", ""]
    lines += [f"- {v}" for v in results["verdicts"]] or [
        "- tracking raised H and every sequence-level ID figure on every sequence."]
    lines += ["", "## Plots", ""] + [f"![{Path(p).stem}](plots/{Path(p).name})"
                                     for p in results.get("plots", [])]
    return "\n".join(lines) + "\n"
