"""One configuration tree for a `lift3d segment` run: every stage's frozen config, nested.

::

    SegmentConfig (alias RunConfig)
    ├── geometry: GeometryConfig      lift3d/geometry/config.py (rgbd / flow / mast3r settings)
    ├── segmenter: SegmenterConfig    here (which backend and its checkpoint / device)
    ├── track: TrackConfig            lift3d/track.py
    ├── associate: AssociateConfig    lift3d/associate/config.py (method off = the paper)
    ├── fuse: FuseConfig              lift3d/fuse.py
    └── metric: MetricConfig          lift3d/metrics/config.py (the radius of H lives there)

The CLI (``lift3d segment``) mirrors it field by field. ``auto`` choices are made in one
place each: :func:`resolve_segmenter` here, :func:`~lift3d.geometry.config.resolve_geometry`
with the geometry's config.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

from lift3d.associate.config import AssociateConfig
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
        return build(name)
    kwargs = {k: v for k, v in (("checkpoint", cfg.sam_checkpoint),
                                ("model_type", cfg.sam_model_type), ("device", cfg.device))
              if v is not None}
    return build("sam", **kwargs)
