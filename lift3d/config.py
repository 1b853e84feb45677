"""One configuration tree for a `lift3d segment` run: every stage's frozen config, nested.

::

    SegmentConfig (alias RunConfig)
    ├── geometry: GeometryConfig      lift3d/geometry/config.py (rgbd / flow / mast3r settings)
    ├── segmenter: SegmenterConfig    here (which backend, its checkpoint / device, its settings)
    ├── track: TrackConfig            lift3d/track.py
    ├── associate: AssociateConfig    lift3d/associate/config.py (method off = the paper)
    ├── fuse: FuseConfig              lift3d/fuse.py
    └── metric: MetricConfig          lift3d/metrics/config.py (the radius of H lives there)

The CLI (``lift3d segment``) has options for the main fields, and ``--set PATH=VALUE`` for
every field (:func:`apply_settings`), the segmenter's own settings included
(:attr:`SegmenterConfig.options`). ``auto`` choices are made in one
place each: :func:`resolve_segmenter` here, :func:`~lift3d.geometry.config.resolve_geometry`
with the geometry's config.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from lift3d.associate.config import AssociateConfig
from lift3d.errors import InputError
from lift3d.fuse import FuseConfig
from lift3d.geometry.config import RGBD_LAYOUTS, GeometryConfig
from lift3d.metrics.config import MetricConfig
from lift3d.track import TrackConfig


@dataclass(frozen=True)
class SegmenterConfig:
    """Which segmenter, and what it loads (CLI: ``--segmenter``, ``--sam-checkpoint``,
    ``--sam-model-type``, ``--device``)."""

    name: str = "auto"
    """sam, geometric (weight-free, reads depth), classical (weight-free, colour), or auto
    (:func:`resolve_segmenter`)."""
    sam_checkpoint: str | None = None
    """SAM checkpoint file; None: $LIFT3D_SAM_CHECKPOINT, then the user cache."""
    sam_model_type: str | None = None
    """vit_h | vit_l | vit_b; None: read from the checkpoint."""
    device: str | None = None
    """cuda | mps | cpu; None = best available."""
    options: dict = field(default_factory=dict)
    """The backend's own settings by name: fields of
    :class:`~lift3d.segment.geometric.GeometricConfig`,
    :class:`~lift3d.segment.classical.ClassicalConfig` or
    :class:`~lift3d.segment.sam.SamConfig` (CLI: ``--set segmenter.geo_threshold=0.5``). A
    name the resolved backend does not have is an error when the segmenter is built."""


@dataclass(frozen=True)
class SegmentConfig:
    """Everything `lift3d segment` does, with its defaults.

    ``SegmentConfig(geometry="flow", segmenter="classical")`` is accepted: a backend name
    becomes that stage's config with its defaults.
    """

    geometry: GeometryConfig = field(default_factory=GeometryConfig)
    segmenter: SegmenterConfig = field(default_factory=SegmenterConfig)
    mode: str = "tracked"
    """tracked (the method) or independent (baseline: each frame on its own)."""
    stride: int = 1
    """Use every stride-th frame."""
    max_frames: int | None = None
    """Use at most this many frames (after stride)."""
    track: TrackConfig = field(default_factory=TrackConfig)
    associate: AssociateConfig = field(default_factory=AssociateConfig)
    """The association stage (lift3d/associate/config.py): merges tracked IDs that are one
    object (default ``auto``: 3D on 3D geometry, tracklet links on flow); ``method="off"`` is
    the paper's method as written."""
    fuse: FuseConfig = field(default_factory=FuseConfig)
    metric: MetricConfig = field(default_factory=MetricConfig)
    overlays: bool = True
    """Write overlay pictures of the IDs on the frames."""
    max_side: int | None = None
    """Work on frames shrunk so their long side is at most this (pixels); labels/ and
    cameras.json stay at the input resolution. None = the input resolution."""

    def __post_init__(self) -> None:
        if isinstance(self.geometry, str):
            object.__setattr__(self, "geometry", GeometryConfig(backend=self.geometry))
        if isinstance(self.segmenter, str):
            object.__setattr__(self, "segmenter", SegmenterConfig(name=self.segmenter))
        if isinstance(self.associate, str):
            object.__setattr__(self, "associate", AssociateConfig(method=self.associate))

    def to_json(self) -> dict:
        """The tree as JSON-ready nested dicts (report.json, the run fingerprint)."""
        import json

        return json.loads(json.dumps(dataclasses.asdict(self), default=str))


RunConfig = SegmentConfig


def resolve_segmenter(cfg: SegmenterConfig, has_depth: bool = False) -> str:
    """The segmenter a config names: ``auto`` is sam when a SAM checkpoint is given or found on
    this machine (and segment-anything is installed), else geometric when the scene has depth
    (``has_depth``: :func:`scene_has_depth`), else classical.

    Decides by looking for the file only; a checkpoint that is found but damaged still raises
    its CheckpointError when loaded rather than silently falling back to another model.
    """
    if cfg.name != "auto":
        return cfg.name
    if cfg.sam_checkpoint is not None:
        return "sam"
    from lift3d.info import default_segmenter

    name = default_segmenter(None)
    return "geometric" if name == "classical" and has_depth else name


def scene_has_depth(scene) -> bool:
    """Whether a :class:`~lift3d.types.Scene` has depth: a posed RGB-D layout, or frames that
    carry depth maps (the first frame is read to tell)."""
    if scene.layout in RGBD_LAYOUTS:
        return True
    return len(scene) > 0 and scene.frames[0].depth is not None


def build_segmenter(cfg: SegmenterConfig, has_depth: bool = False):
    """The configured segmenter (``auto`` resolved by :func:`resolve_segmenter`)."""
    from lift3d.segment import build_segmenter as build

    name = resolve_segmenter(cfg, has_depth)
    if name != "sam":
        return build(name, **cfg.options)
    kwargs = {k: v for k, v in (("checkpoint", cfg.sam_checkpoint),
                                ("model_type", cfg.sam_model_type), ("device", cfg.device))
              if v is not None}
    return build("sam", **{**cfg.options, **kwargs})


def apply_settings(cfg: SegmentConfig, items: Sequence[str]) -> SegmentConfig:
    """``cfg`` with ``--set`` items applied in order: ``PATH=VALUE``, PATH the dotted field
    names down the tree (``track.min_support``, ``associate.scene3d.shared_share``,
    ``geometry.rgbd.max_depth``, ``stride``). Under ``segmenter.`` a name that is not one of
    :class:`SegmenterConfig`'s is a backend setting (:attr:`SegmenterConfig.options`).
    VALUE is read as the field's type (``none`` clears an optional field). A path that names
    no setting raises an :class:`~lift3d.errors.InputError` listing those there."""
    for item in items:
        path, sep, value = item.partition("=")
        keys = [k.strip() for k in path.split(".")]
        if not sep or not all(keys):
            raise InputError(f"--set {item!r}: expected NAME=VALUE",
                             fix="for example --set track.min_support=0.6")
        cfg = _set_path(cfg, keys, value.strip(), item)
    return cfg


def _set_path(node, keys: list[str], value: str, item: str):
    from lift3d.checks import coerce_setting

    name, rest = keys[0], keys[1:]
    fields = {f.name: f for f in dataclasses.fields(node)}
    if isinstance(node, SegmenterConfig) and name not in fields and not rest:
        return dataclasses.replace(node, options={**node.options, name: _literal(value)})
    if name not in fields:
        raise InputError(f"--set {item!r}: no setting {name!r} here",
                         fix=f"settings here: {', '.join(sorted(fields))}")
    current = getattr(node, name)
    if rest:
        if not dataclasses.is_dataclass(current):
            raise InputError(f"--set {item!r}: {name!r} has no settings under it")
        return dataclasses.replace(node, **{name: _set_path(current, rest, value, item)})
    if dataclasses.is_dataclass(current):
        sub = sorted(f.name for f in dataclasses.fields(current))
        raise InputError(f"--set {item!r}: {name!r} is a group of settings",
                         fix=f"set one of {name}.{{{', '.join(sub)}}}")
    if value.lower() == "none":
        if fields[name].default is not None and current is not None:
            raise InputError(f"--set {item!r}: {name!r} cannot be none",
                             fix=f"give a value like its default, {current!r}")
        return dataclasses.replace(node, **{name: None})
    if isinstance(current, dict):
        raise InputError(f"--set {item!r}: {name!r} takes one setting at a time",
                         fix="--set segmenter.NAME=VALUE, once per setting")
    new = _literal(value) if current is None else coerce_setting(value, current, f"--set {item!r}")
    return dataclasses.replace(node, **{name: new})


def _literal(text: str):
    """``text`` as a bool, int, float or None where it reads as one, else the text."""
    low = text.lower()
    if low in ("true", "false"):
        return low == "true"
    if low == "none":
        return None
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text
