"""`lift3d segment`: read a scene, build geometry, track, fuse, measure, write the output folder.

A thin shell over the stages. Per-frame results are written as they are made
(``labels/<frame>.png`` and the tracker state in ``cache/``, both atomically), so a run that
dies half-way resumes at the first frame it had not finished, provided the scene and the
configuration are the same (``cache/run.json`` records both).
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lift3d.fuse import FuseConfig, fuse
from lift3d.io.atomic import write_json, write_with
from lift3d.io.outputs import read_label_png, write_cameras, write_label_png, write_ply
from lift3d.track import (
    TrackConfig,
    TrackState,
    independent_labels,
    load_state,
    save_state,
    scene_scale,
    track_sequence,
)
from lift3d.types import Geometry, Labels, Scene


@dataclass(frozen=True)
class SegmentConfig:
    """Everything `lift3d segment` does, with its defaults."""

    geometry: str = "rgbd"
    """Geometry backend: rgbd (posed depth), flow (2D video), mast3r (unposed images)."""
    segmenter: str = "auto"
    """Segmenter: sam, classical, or auto (sam when a checkpoint is found, else classical)."""
    mode: str = "tracked"
    """tracked (the method) or independent (baseline: each frame on its own)."""
    eps: float | None = None
    """Radius of H(I,M) in scene units (pixels for flow); None = eps_rel x scene scale."""
    eps_rel: float = 0.01
    """Radius of H relative to the scene scale (median depth), when eps is None."""
    flow_eps_px: float = 1.0
    """Radius of H in pixels for 2D (flow) geometry, when eps is None."""
    stride: int = 1
    """Use every stride-th frame."""
    max_frames: int | None = None
    """Use at most this many frames (after stride)."""
    track: TrackConfig = field(default_factory=TrackConfig)
    fuse: FuseConfig = field(default_factory=FuseConfig)
    segmenter_args: dict = field(default_factory=dict)
    """Backend options (sam: checkpoint, model_type, device...)."""
    geometry_args: dict = field(default_factory=dict)
    """Backend options (mast3r: checkpoint, device...)."""
    overlays: bool = True
    """Write overlay pictures of the IDs on the frames."""


class Timer:
    """Wall-clock seconds per named stage."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[name] = self.seconds.get(name, 0.0) + time.perf_counter() - t0


def choose_segmenter(cfg: SegmentConfig):
    """Build the configured segmenter (``auto``: SAM if a checkpoint is on this machine).

    ``auto`` decides by looking for the file only; a checkpoint that is found but damaged
    still raises its CheckpointError rather than silently falling back to another model.
    """
    from lift3d.info import default_segmenter
    from lift3d.segment import build_segmenter

    name = cfg.segmenter
    if name == "auto":
        name = default_segmenter(cfg.segmenter_args.get("checkpoint"))
    if name == "classical":
        return build_segmenter("classical")
    return build_segmenter(name, **cfg.segmenter_args)


def run_fingerprint(scene: Scene, cfg: SegmentConfig, segmenter_name: str) -> dict:
    """What must be equal for cached per-frame results to be reused."""
    config = json.loads(json.dumps(asdict(cfg), default=str))
    config.pop("overlays")  # pictures only: they do not change the labels
    return {"scene": str(scene.source.resolve()), "frames": scene.names, "config": config,
            "segmenter": segmenter_name}


def run_segment(
    scene_dir: str | Path, out_dir: str | Path, cfg: SegmentConfig = SegmentConfig(),
    progress: bool = True, fresh: bool = False,
) -> dict:
    """Run the whole flow on ``scene_dir`` and write ``out_dir``; return the report dict."""
    from lift3d.geometry import build_geometry
    from lift3d.io import load_scene

    out = Path(out_dir)
    timer = Timer()
    with timer("load"):
        scene = load_scene(scene_dir, stride=cfg.stride, max_frames=cfg.max_frames, progress=progress)
    with timer("geometry"):
        geometry = build_geometry(cfg.geometry, **cfg.geometry_args)(scene)
    segmenter = choose_segmenter(cfg)
    with timer("track"):
        labels = label_frames(scene, geometry, segmenter, cfg, out, progress, fresh)
    report = {
        "scene": str(Path(scene_dir).resolve()), "layout": scene.layout, "n_frames": len(scene),
        "geometry": cfg.geometry, "segmenter": segmenter.name, "mode": cfg.mode,
        "config": json.loads(json.dumps(asdict(cfg), default=str)),
    }
    report["n_ids"] = int(len(Labels(labels).ids()))
    report["ids_per_frame"] = float(np.mean([len(np.unique(m[m > 0])) for m in labels]))
    if geometry.kind == "3d":
        with timer("fuse"):
            cloud = fuse(geometry, [f.image for f in scene.frames], labels, cfg.fuse)
            write_ply(out / "cloud.ply", cloud)
        report["cloud_points"] = len(cloud)
    else:
        cloud = None
    with timer("metric"):
        report["consistency"] = measure_consistency(geometry, labels, cfg)
    if scene.gt_labels is not None:
        with timer("quality"):
            report["quality"] = measure_quality(scene, labels, cloud)
    write_cameras(
        out / "cameras.json", scene.names, [f.path for f in scene.frames],
        [f.hw for f in scene.frames], geometry.K, geometry.cam_to_world,
    )
    if cfg.overlays:
        with timer("overlays"):
            write_overlays(out / "overlays", scene, labels)
    report["timings_s"] = {k: round(v, 3) for k, v in timer.seconds.items()}
    write_json(out / "report.json", report)
    return report


def label_frames(
    scene: Scene, geometry: Geometry, segmenter, cfg: SegmentConfig, out: Path, progress: bool,
    fresh: bool,
) -> list[np.ndarray]:
    """Track (or label independently) every frame, caching each result; resume if possible."""
    from tqdm.auto import tqdm

    cache = out / "cache"
    state_path = cache / "track_state.npz"
    fingerprint = run_fingerprint(scene, cfg, segmenter.name)
    done = 0
    state: TrackState | None = None
    run_json = cache / "run.json"
    if not fresh and run_json.is_file() and json.loads(run_json.read_text()) == fingerprint:
        done = _frames_done(out, scene, cfg, state_path)
        if cfg.mode == "tracked" and done > 0:
            state = load_state(state_path)
    else:
        write_json(run_json, fingerprint)
    images = [f.image for f in scene.frames]
    labels = [read_label_png(out / "labels" / f"{n}.png") for n in scene.names[:done]]
    bar = tqdm(total=len(scene), initial=done, desc=f"{cfg.mode} labels", disable=not progress,
               unit="frame")

    def on_frame(t, lab, scores, st):
        write_label_png(out / "labels" / f"{scene.names[t]}.png", lab)
        if st is not None:
            save_state(state_path, st)
        labels.append(lab)
        bar.update(1)

    if done < len(scene):
        if cfg.mode == "independent":
            rest = independent_labels(images[done:], segmenter, cfg.track)
            for k, lab in enumerate(rest):
                on_frame(done + k, lab, {}, None)
        elif cfg.mode == "tracked":
            track_sequence(images, geometry, segmenter, cfg.track, state, on_frame)
        else:
            from lift3d.errors import Lift3DError

            raise Lift3DError(f"unknown mode {cfg.mode!r}", fix="use 'tracked' or 'independent'")
    bar.close()
    return labels


def _frames_done(out: Path, scene: Scene, cfg: SegmentConfig, state_path: Path) -> int:
    """How many leading frames have finished results in the output folder."""
    if cfg.mode == "tracked":
        if not state_path.is_file():
            return 0
        return load_state(state_path).frame + 1
    done = 0
    for n in scene.names:
        if not (out / "labels" / f"{n}.png").is_file():
            break
        done += 1
    return done


def measure_consistency(geometry: Geometry, labels: list[np.ndarray], cfg: SegmentConfig) -> dict:
    """H(I,M) of the ID maps, with the radius used."""
    from lift3d.metrics.consistency import consistency

    if geometry.kind == "3d":
        eps = cfg.eps if cfg.eps is not None else cfg.eps_rel * max(scene_scale(geometry), 1e-9)
        res = consistency(geometry.points, geometry.valid, labels, eps)
        units = "scene units"
    else:
        from lift3d.metrics.consistency2d import consistency_matches

        eps = cfg.eps if cfg.eps is not None else cfg.flow_eps_px
        res = consistency_matches(geometry, labels, eps)
        units = "pixels"
    return {
        "H": _num(res.H), "eps": float(eps), "eps_units": units,
        "per_frame": [_num(v) for v in res.per_frame],
        "pixels_with_neighbours": int(res.n_with_neighbours),
    }


def _num(v) -> float | None:
    v = float(v)
    return None if np.isnan(v) else round(v, 6)


def measure_quality(scene: Scene, labels: list[np.ndarray], cloud) -> dict:
    """Quality of the ID maps against the scene's ground truth.

    Always ``sequence``: the sequence-level IoU of multi-instance ground truth (one predicted
    ID per instance, pixels pooled over frames) beside the per-frame best-ID IoU. When the
    ground truth is binary (one object, e.g. DAVIS 2016), the single-object protocol too:
    ``single_object[rule]`` (IoU, F1, precision, recall averaged over frames, and the
    per-frame IoU) and ``davis[rule]`` (J and F mean / recall / decay, J&F), for the rules
    ``frame`` (best ID in each frame) and ``sequence`` (one ID for the whole sequence). With
    a fused cloud and a ground-truth cloud: ``instances_3d`` (mean IoU, AP, found / split /
    merged counts) after carrying the cloud's labels onto the ground-truth points.
    """
    from lift3d.metrics import instance3d, video

    gt = scene.gt_labels
    seq = video.sequence_iou(labels, gt)
    q: dict = {"sequence": {"sequence_iou": _num(seq.sequence_iou), "frame_iou": _num(seq.frame_iou),
                            "n_gt": len(seq.per_instance)}}
    if max(int(g.max(initial=0)) for g in gt) > 1:  # binary masks get theirs in single_object
        q["sequence"]["per_frame_iou"] = _per_frame_iou(labels, gt, seq)
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
    if cloud is not None and scene.gt_points is not None and len(cloud):
        pred = instance3d.transfer_labels(
            cloud.points, cloud.labels, scene.gt_points, max_dist=_transfer_radius(cloud)
        )
        s3 = instance3d.instance_metrics(pred, scene.gt_point_labels)
        q["instances_3d"] = {
            "mean_iou": _num(s3.mean_iou), "ap": {str(k): _num(v) for k, v in s3.ap.items()},
            "n_gt": s3.n_gt, "n_pred": s3.n_pred, "n_found": s3.found, "n_split": s3.split,
            "n_merged": s3.merged,
        }
    return q


def _per_frame_iou(labels: list[np.ndarray], gt: list[np.ndarray], seq) -> dict[str, list]:
    """Per frame, the mean over ground-truth instances of the IoU of the chosen ID: the best
    one in that frame (``frame``) or the sequence-level one (``sequence``)."""
    from lift3d.metrics import video

    conf = video.confusion(labels, gt)
    iou = conf.iou()  # (F, P, G)
    if conf.gt_ids.size < 2:
        return {"frame": [None] * len(labels), "sequence": [None] * len(labels)}
    by_frame = np.take_along_axis(iou, video.select_ids(conf, "frame")[:, None, :], 1)[:, 0, 1:]
    pos = {int(p): k for k, p in enumerate(conf.pred_ids)}
    cols = np.array([pos[seq.per_instance[int(g)][2]] for g in conf.gt_ids[1:]])
    by_seq = iou[:, cols, np.arange(1, conf.gt_ids.size)]
    return {"frame": [_num(v) for v in by_frame.mean(1)], "sequence": [_num(v) for v in by_seq.mean(1)]}


def _transfer_radius(cloud) -> float:
    extent = np.ptp(cloud.points, axis=0).max() if len(cloud) else 1.0
    return float(0.02 * extent)


def write_overlays(folder: Path, scene: Scene, labels: list[np.ndarray]) -> None:
    """One overlay per frame, and ``strip.png``: a row of evenly spaced frames."""
    from lift3d.overlay import overlay, strip

    for frame, lab in zip(scene.frames, labels):
        _write_png(folder / f"{frame.name}.png", overlay(frame.image, lab))
    _write_png(folder / "strip.png", strip([f.image for f in scene.frames], labels, scene.names))


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    bgr = np.ascontiguousarray(rgb[..., ::-1])
    write_with(path, lambda tmp: cv2.imwrite(str(tmp), bgr))

