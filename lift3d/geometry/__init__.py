"""Geometry backends: posed RGB-D, optical flow, MASt3R."""

from __future__ import annotations

from lift3d.geometry.base import GeometrySource

__all__ = ["GeometrySource", "build_geometry"]


def build_geometry(cfg, **kwargs) -> GeometrySource:
    """Construct a geometry backend from its :class:`~lift3d.geometry.config.GeometryConfig`
    (or by name, ``rgbd`` / ``flow`` / ``mast3r``, with the backend's config fields as
    keywords)."""
    from lift3d.geometry.config import GeometryConfig

    if isinstance(cfg, GeometryConfig):
        return _from_config(cfg)
    name = cfg
    if name == "rgbd":
        from lift3d.geometry.rgbd import RGBDGeometry

        return RGBDGeometry(**kwargs)
    if name == "flow":
        from lift3d.geometry.flow import FlowGeometry

        return FlowGeometry(**kwargs)
    if name == "mast3r":
        from lift3d.geometry.mast3r.backend import Mast3rGeometry

        return Mast3rGeometry.from_config(**kwargs)
    _unknown(name)


def _from_config(cfg) -> GeometrySource:
    if cfg.backend == "rgbd":
        from lift3d.geometry.rgbd import RGBDGeometry

        return RGBDGeometry(cfg.rgbd)
    if cfg.backend == "flow":
        from lift3d.geometry.flow import FlowGeometry

        return FlowGeometry(cfg.flow)
    if cfg.backend == "mast3r":
        from lift3d.geometry.mast3r.backend import Mast3rGeometry

        return Mast3rGeometry.from_settings(cfg.mast3r, cfg.mast3r_checkpoint, cfg.device,
                                            cfg.mast3r_model_args)
    _unknown(cfg.backend)


def _unknown(name: str):
    from lift3d.errors import Lift3DError

    raise Lift3DError(f"unknown geometry {name!r}", fix="choose 'rgbd', 'flow' or 'mast3r'")
