"""The GeometrySource interface: turn a Scene into a Geometry (pointmaps + a matcher).

A backend returns a :class:`~lift3d.types.Geometry` whose per-frame
:class:`~lift3d.types.PointMaps` are produced when a stage asks for frame ``t`` (rgbd: from
that frame's depth; mast3r: from the cached alignment) and whose
:class:`~lift3d.types.Matcher` says what a ``matches(i, j)`` call costs. Nothing holds every
frame at once.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol, runtime_checkable

from lift3d.types import Geometry, Matcher, PointMaps, Scene

__all__ = ["GeometrySource", "Matcher", "PointMaps"]


@runtime_checkable
class GeometrySource(Protocol):
    """A geometry backend (``rgbd``, ``flow``, ``mast3r``).

    name: short backend name for reports.
    """

    name: str

    def __call__(self, scene: Scene, cache_dir: Path | None = None) -> Geometry:
        """Per-frame pointmaps (on demand) and a matcher. ``cache_dir``: where a backend
        with expensive steps (MASt3R's pair inference and alignment) keeps their results so
        a resumed run skips them; None = keep nothing on disk."""
        ...
