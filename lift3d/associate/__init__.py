"""Association: tracked IDs that are parts of one object become one ID.

The tracker keeps each mask's ID stable, but a segmenter splits an object into parts (a box's
faces shaded differently, a table's top and legs) and tracking never merges them. This stage
runs between tracking and fusion's final read-out, for any segmenter and geometry:

* it watches the frames stream past (:meth:`Associator.add_frame`: labels, pointmaps, image),
  keeping per-ID statistics whose size grows with the number of IDs, not of frames;
* at the end it decides (:meth:`Associator.solve`) which IDs are one object, from the fused
  cloud's votes (3D superpoints, boundary convexity), view consensus, or, on the 2D flow path,
  tracklet links;
* the pipeline applies the resulting :class:`Association` to every frame's labels, to the
  fused cloud (votes are re-counted under the merged IDs) and so to everything exported.

``AssociateConfig(method="off")`` (CLI ``--associate off``) is the paper's method as written.
"""

from lift3d.associate.base import Association, Associator, Merge, apply_mapping, groups_to_mapping
from lift3d.associate.config import AssociateConfig

__all__ = ["AssociateConfig", "Association", "Associator", "Merge", "apply_mapping",
           "build_associator", "groups_to_mapping"]


def build_associator(cfg: AssociateConfig, kind: str) -> Associator | None:
    """The associator for a run: None when off; ``auto`` is the 3D one on 3D geometry
    (``kind == "3d"``) and tracklet linking on 2D (flow) geometry."""
    method = cfg.method
    if method == "off":
        return None
    if method == "auto":
        method = "3d" if kind == "3d" else "tracklets"
    if method == "3d":
        from lift3d.associate.scene3d import SceneAssociator

        return SceneAssociator(cfg.scene3d)
    if method == "tracklets":
        from lift3d.associate.tracklets import TrackletAssociator

        return TrackletAssociator(cfg.tracklets)
    from lift3d.errors import Lift3DError

    raise Lift3DError(f"unknown association method {cfg.method!r}", fix="use auto, 3d, tracklets or off")
