"""Geometry backends: posed RGB-D, optical flow, MASt3R."""

from __future__ import annotations

from lift3d.geometry.base import GeometrySource

__all__ = ["GeometrySource", "build_geometry"]


def build_geometry(name: str, **kwargs) -> GeometrySource:
    """Construct a geometry backend by name: ``rgbd``, ``flow`` or ``mast3r``."""
    if name == "rgbd":
        from lift3d.geometry.rgbd import RGBDGeometry

        return RGBDGeometry(**kwargs)
    if name == "flow":
        from lift3d.geometry.flow import FlowGeometry

        return FlowGeometry(**kwargs)
    if name == "mast3r":
        from lift3d.geometry.mast3r import Mast3rGeometry

        return Mast3rGeometry.from_config(**kwargs)
    from lift3d.errors import Lift3DError

    raise Lift3DError(f"unknown geometry {name!r}", fix="choose 'rgbd', 'flow' or 'mast3r'")
