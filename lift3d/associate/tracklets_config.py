"""Settings of the 2D tracklet linker (lift3d/associate/tracklets.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrackletConfig:
    """Linking tracklets on the 2D (flow) path. Fields are added with the linker."""
