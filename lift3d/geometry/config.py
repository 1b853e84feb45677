"""The geometry stage's configuration: which backend, and each backend's typed settings."""

from __future__ import annotations

from dataclasses import dataclass, field

from lift3d.geometry.flow import FlowConfig
from lift3d.geometry.mast3r.config import Mast3rConfig
from lift3d.geometry.rgbd import RGBDConfig

GEOMETRY_BACKENDS = ("rgbd", "flow", "mast3r")
RGBD_LAYOUTS = ("scannet", "7scenes", "tum")
"""Scene layouts that carry posed depth (their ``auto`` geometry is rgbd)."""


def resolve_geometry(backend: str, layout: str) -> str:
    """The geometry backend for a scene layout: ``auto`` is rgbd for posed RGB-D layouts,
    flow for videos and image folders."""
    if backend != "auto":
        return backend
    return "rgbd" if layout in RGBD_LAYOUTS else "flow"


@dataclass(frozen=True)
class GeometryConfig:
    """Geometry backend and settings (CLI: ``--geometry``, ``--mast3r-checkpoint``, ``--device``)."""

    backend: str = "rgbd"
    """rgbd (posed depth), flow (2D video), mast3r (unposed images); ``auto`` = by layout
    (:func:`resolve_geometry`)."""
    rgbd: RGBDConfig = field(default_factory=RGBDConfig)
    flow: FlowConfig = field(default_factory=FlowConfig)
    mast3r: Mast3rConfig = field(default_factory=Mast3rConfig)
    mast3r_checkpoint: str | None = None
    """MASt3R checkpoint (.pth / .safetensors); None: $LIFT3D_MAST3R_CHECKPOINT, the cache."""
    mast3r_model_args: dict | None = None
    """Architecture overrides for other checkpoints of the MASt3R family (tests: the tiny one)."""
    device: str | None = None
    """cuda | mps | cpu for network backends; None = best available."""
