"""2D segmenters behind one interface; each backend imports its heavy dependency itself."""

from __future__ import annotations

from lift3d.segment.base import Mask, Segmenter

__all__ = ["Mask", "Segmenter", "build_segmenter"]


def build_segmenter(name: str, **kwargs) -> Segmenter:
    """Construct a segmenter backend by name: ``classical``, ``geometric`` (reads depth) or
    ``sam``."""
    if name == "classical":
        from lift3d.segment.classical import ClassicalSegmenter

        return ClassicalSegmenter(**kwargs)
    if name == "geometric":
        from lift3d.segment.geometric import GeometricSegmenter

        return GeometricSegmenter(**kwargs)
    if name == "sam":
        from lift3d.segment.sam import SamSegmenter

        return SamSegmenter.from_config(**kwargs)
    from lift3d.errors import Lift3DError

    raise Lift3DError(f"unknown segmenter {name!r}", fix="choose 'classical', 'geometric' or 'sam'")
