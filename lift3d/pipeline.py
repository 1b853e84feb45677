"""`lift3d segment`: wire the stages over a stream of frames and write the output folder.

One pass over the frames: each is read (lazily), matched, tracked, fused into the voxel grid,
and its labels and overlay written as soon as it is done; nothing holds every frame. Then the
metric reads the frames again (pointmaps from geometry, labels from ``labels/``) and the strip
picture re-reads a few. Per-frame results are written atomically (``labels/<frame>.png`` and
the tracker state in ``cache/``), so a run that dies half-way resumes at the first frame it
had not finished, provided the scene, the configuration and the code are the same (``cache/run.json``
fingerprints them, the scene's files by content: lift3d/io/run_folder.py; when it differs the
old results are removed first); geometry backends keep their own expensive results under
``cache/`` too. ``.lift3d.lock`` keeps a second run out of the folder while one runs.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lift3d.associate import AssociateConfig, Association, apply_mapping
from lift3d.config import SegmentConfig, build_segmenter, scene_has_depth
from lift3d.errors import InputError
from lift3d.fuse import FuseAccumulator, FusedLabels, frame_normals, fuse_voxel
from lift3d.geometry.working_resolution import grow_labels, shrink_labels
from lift3d.io.atomic import remove_temporaries, write_json, write_with
from lift3d.io.outputs import read_label_png, write_cameras, write_label_png, write_ply
from lift3d.track import TrackState, independent_labels, load_state, save_state, track_sequence
from lift3d.types import Geometry, LabelledCloud, Lazy, Scene

__all__ = ["RunReport", "SegmentConfig", "Timer", "run_segment"]


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


@dataclass
class RunReport:
    """What a run reports (``report.json``; :meth:`to_json` is the one conversion)."""

    scene: str
    layout: str
    n_frames: int
    geometry: str
    segmenter: str
    mode: str
    config: dict
    n_ids: int = 0
    ids_per_frame: float = 0.0
    cloud_points: int | None = None
    consistency: dict = field(default_factory=dict)
    quality: dict | None = None
    association: dict | None = None
    instances: list | None = None
    """The fused cloud's instances, most confident first (:meth:`LabelledCloud.instances`)."""
    timings_s: dict = field(default_factory=dict)

    def to_json(self) -> dict:
        d = asdict(self)
        for k in ("cloud_points", "quality", "association", "instances"):
            if d[k] is None:
                d.pop(k)
        return d


@dataclass
class _FrameLog:
    """What the stream keeps per finished frame: small things only."""

    ids: set = field(default_factory=set)
    ids_per_frame: list = field(default_factory=list)
    sizes: list = field(default_factory=list)
    K: list = field(default_factory=list)
    poses: list = field(default_factory=list)
    paths: list = field(default_factory=list)
    no_depth: list = field(default_factory=list)
    """Names of the frames whose geometry has no valid pixel (3D geometry only)."""


def run_fingerprint(scene: Scene, cfg: SegmentConfig, segmenter_name: str) -> dict:
    """What must be equal for cached per-frame results to be reused: the scene (where, which
    frames, and what its files hold), the configuration, the segmenter and the code."""
    from lift3d.io.run_folder import code_version, inputs_digest

    config = cfg.to_json()
    config.pop("overlays")  # pictures only: they do not change the labels
    return {"scene": str(scene.source.resolve()), "frames": scene.names, "config": config,
            "segmenter": segmenter_name, "inputs": inputs_digest(scene.source),
            "code": code_version()}


def run_segment(
    scene_dir: str | Path, out_dir: str | Path, cfg: SegmentConfig = SegmentConfig(),
    progress: bool = True, fresh: bool = False,
) -> dict:
    """Run the whole flow on ``scene_dir`` and write ``out_dir``; return the report dict.

    Options, checkpoints, the device and whether ``out_dir`` can be written are checked before
    anything is loaded; ``out_dir`` is locked against other runs
    (:class:`~lift3d.io.run_folder.FolderLock`) before anything is written."""
    from lift3d.geometry.working_resolution import warn_if_too_big
    from lift3d.io import load_scene
    from lift3d.io.run_folder import FolderLock, check_writable
    from lift3d.preflight import check_run

    check_run(cfg)
    check_writable(out_dir)
    timer = Timer()
    with timer("load"):
        scene = load_scene(scene_dir, stride=cfg.stride, max_frames=cfg.max_frames,
                           progress=progress, lazy=True)
    warn_if_too_big(scene, cfg.max_side)
    with FolderLock(out_dir):
        remove_temporaries(out_dir)  # left by a run killed mid-write: never results
        return _run_segment(scene, scene_dir, out_dir, cfg, progress, fresh, timer)


def _run_segment(scene: Scene, scene_dir: str | Path, out_dir: str | Path, cfg: SegmentConfig,
                 progress: bool, fresh: bool, timer: Timer) -> dict:
    from lift3d.geometry import build_geometry
    from lift3d.geometry.working_resolution import WorkingScene

    out = Path(out_dir)
    work = WorkingScene(scene, cfg.max_side)  # frames shrunk to --max-side; outputs are not
    scene = work.scene
    with timer("geometry"):
        geometry = build_geometry(cfg.geometry)(scene, cache_dir=out / "cache")
    segmenter = build_segmenter(cfg.segmenter, has_depth=scene_has_depth(scene))
    associator = None
    if cfg.mode == "tracked":
        from lift3d.associate import build_associator

        associator = build_associator(cfg.associate, geometry.kind)
    fusion = None
    if geometry.kind == "3d":
        with timer("fuse"):
            fusion = FuseAccumulator(fuse_voxel(geometry, cfg.fuse), cfg.fuse)
    log = _FrameLog()

    def finished(t: int, labels: np.ndarray) -> None:
        """A frame is done: fuse it, picture it, log what the report needs."""
        frame, pm = scene.frames[t], geometry[t]
        if geometry.kind == "3d" and not pm.valid.any():
            log.no_depth.append(frame.name)
            warnings.warn(f"{frame.path}: frame {frame.name} has no valid depth (every pixel is "
                          "0 or outside the geometry's working range): it adds nothing to the "
                          "cloud or the metric", stacklevel=2)
        normals = None
        if fusion is not None:
            with timer("fuse"):
                normals = frame_normals(pm)  # once: fusion and the 3D associator read them
                fusion.add_frame(pm, frame.image, labels, normals)
        if associator is not None:
            with timer("associate"):
                associator.add_frame(t, frame.image, labels, pm, normals)
        elif cfg.overlays:  # with association, pictures are drawn once IDs are final
            with timer("overlays"):
                _write_overlay(out / "overlays" / f"{frame.name}.png", frame.image, labels)
        ids = np.unique(labels)
        ids = ids[ids > 0]
        log.ids.update(ids.tolist())
        log.ids_per_frame.append(len(ids))
        hw, K = work.camera(t, frame.hw, pm.K)  # cameras.json: the input resolution's
        log.sizes.append(hw)
        log.K.append(K)
        log.poses.append(pm.cam_to_world)
        log.paths.append(frame.path)

    with timer("track"):
        label_frames(scene, geometry, segmenter, cfg, out, progress, fresh, finished, work)
    if geometry.kind == "3d" and len(log.no_depth) == len(scene):
        raise InputError(
            f"no frame has valid depth ({len(scene)} frames: every pixel 0 or outside the "
            "working range, e.g. 65535 or 8-bit depth)", scene.source,
            "check the depth maps: 16-bit PNGs in the layout's units (ScanNet: millimetres)")
    association = fused = None
    if associator is not None:
        with timer("associate"):
            association, fused, log.ids_per_frame, log.ids = associate_labels(
                associator, fusion, scene, geometry, out, cfg.associate,
                cfg.overlays, progress, cfg.max_side)
    cloud = None
    if fusion is not None:
        with timer("fuse"):
            cloud = fusion.cloud(labels=fused)  # the verdict the frames were given, if any
            write_ply(out / "cloud.ply", cloud)
        fusion = None  # its grid (area x IDs seen there) is in the cloud now: free it for H
    labels = _saved_labels(out, scene, cfg.max_side)
    report = RunReport(
        scene=str(Path(scene_dir).resolve()), layout=scene.layout, n_frames=len(scene),
        geometry=cfg.geometry.backend, segmenter=segmenter.name, mode=cfg.mode,
        config=cfg.to_json(), n_ids=len(log.ids),
        ids_per_frame=float(np.mean(log.ids_per_frame)) if log.ids_per_frame else 0.0,
        cloud_points=None if cloud is None else len(cloud),
        association=None if association is None else association.to_json(),
        instances=None if cloud is None else cloud.instances(),
    )
    with timer("metric"):
        from lift3d.metrics.quality import measure_consistency

        report.consistency = measure_consistency(geometry, labels, cfg.metric).to_json()
    if scene.gt_labels is not None:
        with timer("quality"):
            report.quality = _quality(scene, labels, cloud)
    write_cameras(out / "cameras.json", scene.names, log.paths, log.sizes, log.K, log.poses)
    if cfg.overlays:
        with timer("overlays"):
            _write_strip(out / "overlays" / "strip.png", scene, labels)
    report.timings_s = {k: round(v, 3) for k, v in timer.seconds.items()}
    doc = report.to_json()
    write_json(out / "report.json", doc)
    return doc


def associate_labels(associator, fusion, scene: Scene, geometry: Geometry, out: Path,
                     cfg: AssociateConfig, overlays: bool, progress: bool,
                     max_side: int | None = None
                     ) -> tuple[Association, FusedLabels | None, list[int], set[int]]:
    """Solve the association (or read it back from ``cache/association.json`` when a run
    was killed after solving), then rewrite every frame's ``labels/`` (and overlay) with the
    merged IDs and, with ``cfg.fused_labels`` on 3D geometry, with the IDs the fused cloud gives
    its pixels (:meth:`~lift3d.fuse.FusedLabels.project`; the fusion's verdict is kept in
    ``cache/fused_labels.npz`` before any frame is rewritten). Object IDs are the smallest ID
    of their group, and a rerun projects the same saved verdict, so rewriting a frame twice
    changes nothing: a run killed half-way through resumes safely. Returns the association,
    the fused labels under the merges (the cloud's; None on 2D geometry), each frame's number
    of IDs after it and the IDs left in all."""
    from tqdm.auto import tqdm

    path = out / "cache" / "association.json"
    if path.is_file():
        association = Association.from_json(json.loads(path.read_text()))
    else:
        association = associator.solve(fusion)
        write_json(path, association.to_json())
    fused = to_frames = None
    if fusion is not None:
        fpath = out / "cache" / "fused_labels.npz"
        if cfg.fused_labels and fpath.is_file():  # a killed run's: frames partly projected
            fused = FusedLabels.load(fpath)
        else:
            fused = fusion.labels(association.lut(0))  # IDs beyond it keep theirs
            if cfg.fused_labels:
                fused.save(fpath)
        to_frames = fused if cfg.fused_labels else None
    ids_per_frame: list[int] = []
    all_ids: set[int] = set()
    for frame_name, t in tqdm(list(zip(scene.names, range(len(scene)))), desc="associate",
                              disable=not progress, unit="frame"):
        p = out / "labels" / f"{frame_name}.png"
        labels = read_label_png(p)
        merged = apply_mapping(labels, association)
        working = shrink_labels(merged, max_side)
        if to_frames is not None:  # at the working resolution, where the geometry is
            working = to_frames.project(working, geometry[t], cfg.fused_min_area)
            merged = grow_labels(working, merged.shape)
        if not np.array_equal(merged, labels):
            write_label_png(p, merged)
        ids = np.unique(merged)
        ids_per_frame.append(int((ids > 0).sum()))
        all_ids.update(ids[ids > 0].tolist())
        if overlays:
            _write_overlay(out / "overlays" / f"{frame_name}.png", scene.frames[t].image,
                           working)
    return association, fused, ids_per_frame, all_ids


def _saved_labels(out: Path, scene: Scene, max_side: int | None = None) -> Lazy:
    """The run's ID maps, read back from ``labels/`` (at the working resolution) when asked."""
    names = scene.names
    return Lazy(len(names), lambda t: shrink_labels(
        read_label_png(out / "labels" / f"{names[t]}.png"), max_side), keep=2)


def _quality(scene: Scene, labels, cloud: LabelledCloud | None) -> dict:
    from lift3d.metrics.quality import measure_quality

    gt, pred = scene.gt_labels, labels
    have = [t for t in range(len(gt)) if gt[t] is not None]  # a reader's None: no GT there
    if len(have) < len(gt):
        pred = Lazy(len(have), lambda k: labels[have[k]], keep=0)
        gt = Lazy(len(have), lambda k: scene.gt_labels[have[k]], keep=0)
    return measure_quality(pred, gt, cloud, scene.gt_points, scene.gt_point_labels)


def label_frames(
    scene: Scene, geometry: Geometry, segmenter, cfg: SegmentConfig, out: Path, progress: bool,
    fresh: bool, finished=None, work=None,
) -> None:
    """Track (or label independently) every frame, writing each result as it is made; resume
    if possible. ``finished(t, labels)`` is called once per frame in order (also for the
    frames a resumed run reads back), for the stages that consume frames as they finish."""
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
    else:  # another run's results (or none): none of them may survive into this one
        from lift3d.io.run_folder import clear_results

        clear_results(out)
        write_json(run_json, fingerprint)
    names = scene.names
    for t in range(done):  # finished by an earlier run: read back for the later stages
        if finished is not None:
            finished(t, shrink_labels(read_label_png(out / "labels" / f"{names[t]}.png"),
                                      cfg.max_side))
    images = Lazy(len(scene), lambda t: scene.frames[t].image, keep=0)
    bar = tqdm(total=len(scene), initial=done, desc=f"{cfg.mode} labels", disable=not progress,
               unit="frame")

    def on_frame(t, lab, scores, st):
        path = out / "labels" / f"{names[t]}.png"
        if work is None:
            write_label_png(path, lab)
        else:  # at the frame's input resolution
            work.write_labels(t, lab, write_label_png, path)
        if st is not None:
            save_state(state_path, st)
        if finished is not None:
            finished(t, lab)
        bar.update(1)

    if done < len(scene):
        if cfg.mode == "independent":
            independent_labels(images, segmenter, cfg.track, on_frame, first=done, collect=False,
                               geometry=geometry)
        elif cfg.mode == "tracked":
            track_sequence(images, geometry, segmenter, cfg.track, state, on_frame, collect=False)
        else:
            from lift3d.errors import Lift3DError

            raise Lift3DError(f"unknown mode {cfg.mode!r}", fix="use 'tracked' or 'independent'")
    bar.close()


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


def _write_overlay(path: Path, image: np.ndarray, labels: np.ndarray) -> None:
    from lift3d.overlay import overlay

    _write_png(path, overlay(image, labels))


def _write_strip(path: Path, scene: Scene, labels) -> None:
    """``strip.png``: a row of evenly spaced frames, re-read from the scene and ``labels/``."""
    from lift3d.overlay import strip

    images = Lazy(len(scene), lambda t: scene.frames[t].image, keep=0)
    _write_png(path, strip(images, labels, scene.names))


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    bgr = np.ascontiguousarray(rgb[..., ::-1])
    def write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), bgr):
            raise OSError(f"could not write {tmp}")

    write_with(path, write)
