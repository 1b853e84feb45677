"""The GeometrySource interface: turn a Scene into a Geometry."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from lift3d.types import Geometry, Scene


@runtime_checkable
class GeometrySource(Protocol):
    """A geometry backend (``rgbd``, ``flow``, ``mast3r``).

    name: short backend name for reports.
    """

    name: str

    def __call__(self, scene: Scene) -> Geometry:
        """Per-frame world pointmaps, confidences, validity, cameras and a matcher."""
        ...
