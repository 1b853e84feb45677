"""The association stage's configuration: one frozen tree, nested in the run config."""

from __future__ import annotations

from dataclasses import dataclass, field

from lift3d.associate.scene3d_config import Scene3DConfig
from lift3d.associate.tracklets_config import TrackletConfig


@dataclass(frozen=True)
class AssociateConfig:
    """Which associator runs, and each one's settings (CLI: ``--associate``)."""

    method: str = "auto"
    """auto (3d on 3D geometry, tracklets on 2D flow geometry) | 3d | tracklets | off (the
    paper's method as written: tracked IDs are final)."""
    scene3d: Scene3DConfig = field(default_factory=Scene3DConfig)
    """Merging over the fused cloud: superpoints, view consensus, boundary convexity."""
    tracklets: TrackletConfig = field(default_factory=TrackletConfig)
    """Linking on the 2D path: an ID that ends and one born near it soon after."""
