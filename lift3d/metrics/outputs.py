"""Score any model's per-pixel outputs for multi-view consistency: `lift3d consistency`.

:func:`measure_outputs` is the notebook entry point and the command's whole job::

    from lift3d.metrics import measure_outputs
    doc = measure_outputs("scenes/room0", "sam2_masks/", out="scores/")
    doc["H"], doc["H_per_mask"]

The scene gives the geometry: any scene folder lift3d reads (posed RGB-D: rgbd geometry;
videos and image folders: flow), or the output folder of `lift3d segment` (its
``report.json`` names the scene, its geometry and the radius of H; its ``labels/`` are the
outputs when none are given, which reproduces the report's H exactly).

The outputs: one file per frame named by the frame's stem (``labels/<stem>.png`` style):

* ``<stem>.png``: an ID map (uint8 or uint16, one channel; 0 is a class like any other);
* ``<stem>.npy`` / ``<stem>.npz``: a feature map (H, W, D) of any real dtype (an .npz holds
  one array, or one named ``features``). ``.npy`` files are memory-mapped, read once.

Any resolution with the frame's aspect ratio: ID maps are resized to the frame by nearest
neighbour (IDs are never blended; each frame pixel takes the map pixel nearest its centre,
the rule lift3d's own ID maps follow between resolutions, not OpenCV's ``INTER_NEAREST``,
which takes the one at its top-left corner and so shifts by up to a source pixel); feature
maps bilinearly (OpenCV ``INTER_LINEAR``, pixel centres aligned, per channel), then
normalised, since H compares unit vectors (cosine);
``feature_resize="nearest"`` copies the nearest feature vector instead.

What comes out (``out``): ``consistency.json`` (the figures below) and ``heatmaps/<stem>.png``
per frame: the frame beside its per-pixel h (blue = agrees with the other views, red =
disagrees, grey = no other view sees the point within eps). On 2D (flow) geometry, where
matches between consecutive frames stand in for 3D points, there are no heat maps and no
per-mask approximation.

H of a constant map is 1: H says how much the outputs agree across views, not whether they
are right. Report it beside a quality figure (`lift3d eval`, ground truth).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lift3d.errors import InputError
from lift3d.geometry.working_resolution import sample_nearest
from lift3d.metrics.config import MetricConfig
from lift3d.types import Lazy

QUALITY_REMINDER = ("H of a constant map is 1: H measures agreement across views, not quality; "
                    "report it beside a quality figure (e.g. IoU against ground truth)")
FEATURE_RESIZE = ("bilinear", "nearest")
_ID_EXT, _FEATURE_EXT = (".png",), (".npy", ".npz")


@dataclass(frozen=True)
class OutputsConfig:
    """How `lift3d consistency` reads and scores outputs (CLI options of the same names)."""

    eps: float | None = None
    """Radius of H (scene units; pixels for flow); None = the segment run's, else
    :class:`~lift3d.metrics.config.MetricConfig`'s rule (1 % of the scene scale)."""
    geometry: str = "auto"
    """auto (rgbd for posed RGB-D layouts, flow otherwise) | rgbd | flow | mast3r; a segment
    output folder always uses its run's geometry."""
    feature_resize: str = "bilinear"
    """bilinear (then normalised) | nearest: how feature maps of another resolution reach the
    frame's. ID maps are always resized by nearest neighbour."""
    feature_dtype: str = "float32"
    """float32 | float16: storage of the unit features (float16: half the memory, H within
    :func:`~lift3d.metrics.consistency.feature_error_bound`)."""
    heatmaps: bool = True
    """Write ``heatmaps/<stem>.png`` per frame."""
    workers: int = -1
    """Threads of the neighbour kernel (-1 = all cores)."""


@dataclass
class ScoredScene:
    """What a scene argument resolves to: the frames, their geometry, the radius of H, and
    the segment run it came from (if any)."""

    scene: object  # lift3d.types.Scene
    geometry: object  # lift3d.types.Geometry
    metric: MetricConfig
    run_dir: Path | None = None
    report: dict | None = None


def _from_dict(cls, d: dict):
    """A frozen config dataclass from its ``asdict`` JSON (nested configs, tuples restored)."""
    default = cls()
    kw = {}
    for f in dataclasses.fields(cls):
        if f.name not in d:
            continue
        v, ref = d[f.name], getattr(default, f.name)
        if dataclasses.is_dataclass(ref) and isinstance(v, dict):
            v = _from_dict(type(ref), v)
        elif isinstance(ref, tuple) and isinstance(v, list):
            v = tuple(v)
        kw[f.name] = v
    return cls(**kw)


def is_run_dir(path: Path) -> bool:
    """True for the output folder of `lift3d segment` (report.json, cameras.json, labels/)."""
    return (path / "report.json").is_file() and (path / "labels").is_dir()


def resolve_scene(path: str | Path, cfg: OutputsConfig = OutputsConfig()) -> ScoredScene:
    """The scene, geometry and radius of H that ``path`` names (a scene folder or a segment
    output folder; see the module docstring)."""
    from lift3d.geometry import build_geometry
    from lift3d.geometry.config import GeometryConfig, resolve_geometry
    from lift3d.io import load_scene

    path = Path(path)
    if not path.exists():
        raise InputError("no such scene or output folder", path)
    if is_run_dir(path):
        report = json.loads((path / "report.json").read_text())
        conf = report.get("config", {})
        scene = load_scene(report["scene"], stride=int(conf.get("stride", 1)),
                           max_frames=conf.get("max_frames"), lazy=True)
        _check_run_frames(path, scene)
        geo_cfg = _from_dict(GeometryConfig, conf.get("geometry", {}))
        metric = _from_dict(MetricConfig, conf.get("metric", {}))
        if cfg.eps is not None:
            metric = dataclasses.replace(metric, eps=cfg.eps)
        geometry = build_geometry(geo_cfg)(scene, cache_dir=path / "cache")
        return ScoredScene(scene, geometry, metric, path, report)
    scene = load_scene(path, lazy=True)
    backend = resolve_geometry(cfg.geometry, scene.layout)
    geometry = build_geometry(GeometryConfig(backend=backend))(scene, cache_dir=None)
    return ScoredScene(scene, geometry, MetricConfig(eps=cfg.eps))


def _check_run_frames(run: Path, scene) -> None:
    cams = run / "cameras.json"
    if not cams.is_file():
        return
    from lift3d.io.outputs import read_cameras

    names = [f["name"] for f in read_cameras(cams)]
    if names != scene.names:
        raise InputError(
            f"the run's frames ({len(names)}, cameras.json) are not the scene's now "
            f"({len(scene)}, {scene.source})", run,
            "the scene folder changed since `lift3d segment`; rerun it, or pass the scene folder")


# ---------------------------------------------------------------------------------------------
# Reading outputs


def find_outputs(folder: str | Path, names: list[str]) -> tuple[list[Path], str]:
    """Per frame name the file ``folder/<name>.{png,npy,npz}``, and the kind (``ids`` or
    ``features``). Every frame needs one; files of other frames are ignored."""
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError("outputs folder not found", folder,
                         "pass a folder with one <frame stem>.png / .npy / .npz per frame")
    paths, missing, kinds = [], [], set()
    for n in names:
        hits = [folder / f"{n}{e}" for e in _ID_EXT + _FEATURE_EXT if (folder / f"{n}{e}").is_file()]
        if not hits:
            missing.append(n)
            continue
        if len(hits) > 1:
            raise InputError(f"frame {n!r} has {len(hits)} output files "
                             f"({', '.join(h.name for h in hits)})", folder, "keep one per frame")
        paths.append(hits[0])
        kinds.add("ids" if hits[0].suffix in _ID_EXT else "features")
    if missing:
        shown = ", ".join(missing[:3]) + (", ..." if len(missing) > 3 else "")
        raise InputError(f"no output for {len(missing)} of {len(names)} frames ({shown})", folder,
                         "name each file by its frame's stem, e.g. "
                         f"{names[0]}.png (ID map) or {names[0]}.npy (features)")
    if len(kinds) > 1:
        raise InputError("mixes ID maps (.png) and feature maps (.npy/.npz)", folder,
                         "score one kind of output at a time")
    return paths, kinds.pop()


def _check_aspect(a_hw: tuple[int, int], hw: tuple[int, int], path: Path, shape) -> None:
    """A map of another resolution must keep the frame's aspect ratio (within a pixel's
    rounding): anything else is a crop or a transposed array, never silently stretched."""
    (ha, wa), (h, w) = a_hw, hw
    if (ha, wa) == (h, w):
        return
    if abs(ha * w - wa * h) > max(h, w, ha, wa):
        hint = "resize or pad it to the frame's aspect ratio"
        if len(shape) == 3 and abs(shape[1] * w - shape[2] * h) <= max(h, w):
            hint = "it looks channel-first (D, H, W): save np.moveaxis(a, 0, -1)"
        raise InputError(f"output {tuple(shape)} does not match the frame's {h}x{w} (H x W) "
                         "aspect ratio", path, hint)


def read_id_map(path: Path, hw: tuple[int, int]) -> np.ndarray:
    """(H, W) int32 IDs of a PNG (uint8 / uint16), nearest-neighbour resized to ``hw``."""
    import cv2

    a = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise InputError("cannot read the ID map", path, "write a one-channel uint8/uint16 PNG")
    if a.ndim != 2:
        raise InputError(f"ID map has {a.shape[2]} channels, expected one", path,
                         "write IDs as a one-channel uint8/uint16 PNG (not a colour picture)")
    _check_aspect(a.shape, hw, path, a.shape)
    return sample_nearest(a, hw).astype(np.int32)


def read_feature_map(path: Path, hw: tuple[int, int], resize: str = "bilinear") -> np.ndarray:
    """(H, W, D) feature map of a .npy (memory-mapped) or .npz, resized to ``hw`` by
    ``resize`` (bilinear: float32, per channel; nearest: the original dtype)."""
    import cv2

    if resize not in FEATURE_RESIZE:
        raise InputError(f"feature resize {resize!r} is not one of {FEATURE_RESIZE}")
    try:
        if path.suffix == ".npy":
            a = np.load(path, mmap_mode="r")
        else:
            with np.load(path) as z:
                keys = list(z.keys())
                key = "features" if "features" in keys else keys[0] if len(keys) == 1 else None
                if key is None:
                    raise InputError(f"the .npz holds {keys}", path,
                                     "store one array, or name the feature map 'features'")
                a = z[key]
    except (OSError, ValueError) as err:
        raise InputError(f"cannot read the feature map ({err})", path) from err
    if a.ndim != 3 or not np.issubdtype(a.dtype, np.number) or np.iscomplexobj(a):
        raise InputError(f"feature map has shape {a.shape} and dtype {a.dtype}", path,
                         "save a real (H, W, D) array (an ID map goes in a PNG)")
    _check_aspect(a.shape[:2], hw, path, a.shape)
    if a.shape[:2] == tuple(hw):
        return a
    h, w = hw
    if resize == "nearest":
        return np.asarray(sample_nearest(a, hw))
    out = np.empty((h, w, a.shape[2]), np.float32)
    for c in range(0, a.shape[2], 256):  # OpenCV takes at most 512 channels at a time
        block = np.ascontiguousarray(a[:, :, c:c + 256], np.float32)
        r = cv2.resize(block, (w, h), interpolation=cv2.INTER_LINEAR)
        out[:, :, c:c + 256] = r.reshape(h, w, -1)
    return out


def read_outputs(folder: str | Path, scene, resize: str = "bilinear") -> tuple[Lazy, str]:
    """The outputs of every frame of ``scene`` as a lazy sequence (read and resized when
    asked), and their kind (``ids`` / ``features``)."""
    paths, kind = find_outputs(folder, scene.names)

    def make(t: int):
        hw = scene.frames[t].hw
        return read_id_map(paths[t], hw) if kind == "ids" else read_feature_map(paths[t], hw, resize)

    return Lazy(len(paths), make, keep=1), kind


# ---------------------------------------------------------------------------------------------
# Scoring


def measure_outputs(scene: str | Path, outputs: str | Path | None = None,
                    out: str | Path | None = None, config: OutputsConfig = OutputsConfig()
                    ) -> dict:
    """H(I,M) of a model's per-pixel outputs on a scene (the module docstring says what each
    argument may be), with the per-mask approximation beside it for ID maps.

    scene: a scene folder or a `lift3d segment` output folder. outputs: the outputs folder
    (None: the segment folder's ``labels/``). out: where ``consistency.json`` and
    ``heatmaps/`` go (None: write nothing). Returns the ``consistency.json`` document: ``H``,
    ``H_per_mask`` (ID maps on 3D geometry; else None), ``eps`` and ``eps_units``,
    ``per_frame`` (h per frame), ``frames`` (names), ``pixels`` and
    ``pixels_with_neighbours``, ``kind``, ``n_ids`` (ID maps), ``constant`` (one ID, or one
    feature direction, everywhere), ``resize``, ``feature_dtype`` and ``feature_error_bound``
    (features), ``note`` (the quality reminder), ``run_H`` (a segment folder's reported H).
    """
    from lift3d.metrics.consistency import ConsistencyConfig, feature_error_bound
    from lift3d.metrics.quality import consistency_figures

    ss = resolve_scene(scene, config)
    if outputs is None:
        if ss.run_dir is None:
            raise InputError("no outputs given", scene,
                             "pass -m OUTPUTS_DIR (one file per frame), or a `lift3d segment` "
                             "output folder as the scene to score its labels/")
        outputs = ss.run_dir / "labels"
    outs, kind = read_outputs(outputs, ss.scene, config.feature_resize)
    watch = _Watch(outs, kind)
    kcfg = ConsistencyConfig(workers=config.workers, feature_dtype=config.feature_dtype)
    figs, res = consistency_figures(ss.geometry, watch, ss.metric, kcfg,
                                    return_maps=config.heatmaps and ss.geometry.kind == "3d")
    picks = figs.frames if figs.frames is not None else list(range(len(outs)))
    per_mask = None
    if kind == "ids" and ss.geometry.kind == "3d":
        from lift3d.metrics.consistency import consistency_per_mask_frames

        def load(k: int):
            pm = ss.geometry[picks[k]]
            return pm.points, pm.valid, outs[picks[k]]

        per_mask = consistency_per_mask_frames(load, len(picks), figs.eps).H
    names = ss.scene.names
    doc = {
        "scene": str(ss.scene.source), "outputs": str(Path(outputs)), "kind": kind,
        "geometry": ss.geometry.kind, "H": figs.H,
        "H_per_mask": None if per_mask is None or np.isnan(per_mask) else round(float(per_mask), 6),
        "eps": figs.eps, "eps_units": figs.eps_units,
        "frames": [names[k] for k in picks], "per_frame": figs.per_frame,
        "pixels": int(res.n_pixels), "pixels_with_neighbours": figs.pixels_with_neighbours,
        "constant": watch.constant(),
        "note": QUALITY_REMINDER,
    }
    if kind == "ids":
        doc["n_ids"] = len(watch.ids)
        doc["resize"] = "nearest"
    else:
        doc["resize"] = config.feature_resize
        doc["feature_dim"] = watch.dim
        doc["feature_dtype"] = config.feature_dtype
        doc["feature_error_bound"] = feature_error_bound(config.feature_dtype, watch.dim)
    if ss.report is not None:
        doc["run"] = str(ss.run_dir)
        doc["run_H"] = ss.report.get("consistency", {}).get("H")
    if out is not None:
        write_results(out, doc, ss.scene, picks, res.maps)
    return doc


class _Watch(Lazy):
    """The outputs as the metric reads them, noting on the way what the reminder needs:
    the IDs seen, or whether every feature vector points the same way."""

    def __init__(self, outs: Lazy, kind: str) -> None:
        super().__init__(len(outs), self._read, keep=3)
        self._outs, self.kind = outs, kind
        self.ids: set[int] = set()
        self.dim = 0
        self._dir: np.ndarray | None = None
        self._same_dir = True

    def _read(self, t: int):
        o = self._outs[t]
        if self.kind == "ids":
            self.ids.update(np.unique(o).tolist())
            return o
        self.dim = int(o.shape[2])
        if self._same_dir:
            v = np.asarray(o, np.float64).reshape(-1, self.dim)
            n = np.linalg.norm(v, axis=1)
            v = v[n > 0] / n[n > 0, None]
            if v.size:
                ref = v[0] if self._dir is None else self._dir
                self._dir = ref
                self._same_dir = bool(np.all(v @ ref > 1 - 1e-9))
        return o

    def constant(self) -> bool:
        return len(self.ids) == 1 if self.kind == "ids" else self._same_dir


def summary_lines(doc: dict) -> list[str]:
    """What the CLI prints: H, the per-mask approximation, and the quality reminder."""
    h = "n/a" if doc["H"] is None else f"{doc['H']:.4f}"
    lines = [f"H(I,M) = {h} (exact; eps {doc['eps']:.4g} {doc['eps_units']}, {len(doc['frames'])} "
             f"frames, {doc['pixels_with_neighbours']:,} of {doc['pixels']:,} pixels seen by "
             f"another view, {doc['kind']})"]
    if doc["kind"] == "ids":
        pm = "n/a (needs 3D points)" if doc["H_per_mask"] is None else f"{doc['H_per_mask']:.4f}"
        lines.append(f"per-mask approximation = {pm} (each mask scored as a unit, voxels of eps)")
    else:
        lines.append(f"per-mask approximation = n/a (feature maps have no masks); features "
                     f"{doc['feature_dim']}-dim, stored {doc['feature_dtype']} (H within "
                     f"{doc['feature_error_bound']:.1e})")
    if doc.get("run_H") is not None:
        lines.append(f"(the segment run's report: H = {doc['run_H']:.4f} for its own labels)")
    if doc["constant"]:
        what = "one ID" if doc["kind"] == "ids" else "one feature direction"
        lines.append(f"note: these outputs are constant ({what} everywhere): H = 1 here says "
                     "nothing about quality")
    lines.append(f"note: {QUALITY_REMINDER}")
    return lines


# ---------------------------------------------------------------------------------------------
# Writing


def write_results(out: str | Path, doc: dict, scene, picks: list[int], maps) -> None:
    """``out/consistency.json`` and, with per-pixel maps, ``out/heatmaps/<stem>.png``."""
    from lift3d.io.atomic import write_json

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_json(out / "consistency.json", doc)
    if maps is None:
        return
    (out / "heatmaps").mkdir(exist_ok=True)
    for k, t in enumerate(picks):
        frame = scene.frames[t]
        _write_png(out / "heatmaps" / f"{frame.name}.png", heatmap(frame.image, maps[k]))


def heatmap(image: np.ndarray, h: np.ndarray) -> np.ndarray:
    """(H + bar, 2W, 3) uint8 RGB picture: the frame, beside its per-pixel h coloured blue
    (h = 1: the other views agree) to red (h <= 0: they disagree), grey where undefined (no
    other view sees the point); a colour bar with its scale below."""
    import cv2

    hh, ww = h.shape
    v = np.nan_to_num(np.clip(h, 0.0, 1.0), nan=0.0)
    colour = _turbo(1.0 - v)
    colour[np.isnan(h)] = 128
    scale = max(0.3, min(0.6, ww / 640))
    (_, th), _ = cv2.getTextSize("h", cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    bar_h = th + 8
    bar = np.full((bar_h, 2 * ww, 3), 255, np.uint8)
    bar[:, ww:] = _turbo(1.0 - np.linspace(0.0, 1.0, ww))[None]
    labels = [("grey: no other view", 2, (90, 90, 90)),
              ("h = 0: disagrees", ww + 3, (255, 255, 255)),
              ("1: agrees", None, (255, 255, 255))]
    for text, x, rgb in labels:
        if x is None:  # right-aligned
            x = 2 * ww - cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)[0][0] - 3
        cv2.putText(bar, text, (x, bar_h - 4), cv2.FONT_HERSHEY_SIMPLEX, scale, rgb, 1, cv2.LINE_AA)
    top = np.concatenate([np.asarray(image, np.uint8), colour], axis=1)
    return np.concatenate([top, bar], axis=0)


def _turbo(x: np.ndarray) -> np.ndarray:
    """RGB uint8 of the turbo colour map at x in [0, 1] (blue -> green -> red), its dark ends
    left out so that both ends read as colours."""
    import cv2

    lut = cv2.applyColorMap(np.arange(256, dtype=np.uint8)[:, None], cv2.COLORMAP_TURBO)[:, 0, ::-1]
    return lut[np.clip(np.round((0.1 + 0.8 * x) * 255), 0, 255).astype(np.uint8)]


def _write_png(path: Path, rgb: np.ndarray) -> None:
    import cv2

    from lift3d.io.atomic import write_with

    def save(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(rgb[..., ::-1])):
            raise OSError(f"could not write {tmp}")

    write_with(path, save)
