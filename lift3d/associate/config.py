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
    fused_labels: bool = True
    """On 3D geometry, after the merges, every pixel with a valid 3D point takes the ID its
    voxel won in the fused cloud (over all frames' votes, merged IDs counted as one) where
    an ID won there: a frame's stray labels (a box's foot the floor took in a few frames, a
    wall strip the floor leaked into) follow what the other views saw, and frames agree with
    the cloud. Tracked labels re-associated, room preset seeds 0-2: sequence IoU 0.625 /
    0.625 / 0.612 -> 0.720 / 0.651 / 0.665; objects preset seeds 0-2: 0.930 / 0.918 / 0.922
    -> 0.965 / 0.949 / 0.956. A vote share threshold on the winner only lowered it (0.6:
    0.691 / 0.651 / 0.642). False: frames keep the tracked IDs, merged."""
    fused_min_area: float = 0.0005
    """... where the pixels a frame gives one new ID form a region of at least this share of
    the frame (4-connected): on real scans, poses off by a pixel or two put a seam's points
    in the neighbour's voxels, and every frame took specks of the IDs around it."""
