"""Settings of the 3D associator (lift3d/associate/scene3d.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Scene3DConfig:
    """Merging tracked IDs over the fused cloud. Fields are added with the associator."""
