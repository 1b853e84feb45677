"""The Segmenter interface: what the tracker needs from a 2D segmentation model.

Two operations, as SAM offers them: automatic masks for a whole image (or only where the
caller still needs masks), and masks from point prompts. Backends keep expensive per-image
work (SAM's image embedding) cached for the last image they saw, so prompting the same frame
many times costs one embedding.

Depth: a backend that reads depth sets the class attribute ``uses_depth = True`` and takes
optional ``depth=None`` ((H, W) float32 metres, 0 invalid) and ``K=None`` ((3, 3) intrinsics of
the image, to back-project the depth; None: the backend assumes a typical field of view)
keywords on ``auto_masks`` and ``prompt``; callers pass them only to such backends
(:func:`depth_kwargs`), so backends that ignore depth keep the plain signatures below.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np

from lift3d.checks import check_shape


@dataclass
class Mask:
    """One mask from ``auto_masks``.

    segmentation: (H, W) bool. score: model's quality estimate in [0, 1] (SAM: predicted IoU).
    isolated: the model found the mask cut off from its surroundings nearly all around (the
    geometric segmenter: a compact region bounded mostly by depth jumps and concave creases,
    kept even below the size of its other masks): a whole object, which the tracker
    re-seeds even when it is smaller than its re-seeding area. False for models that do not
    judge it.
    """

    segmentation: np.ndarray
    score: float
    isolated: bool = False

    @property
    def area(self) -> int:
        return int(self.segmentation.sum())


@runtime_checkable
class Segmenter(Protocol):
    """A 2D segmentation model.

    name: short backend name for reports (``"classical"``, ``"sam"``).
    uses_depth: True if ``auto_masks`` and ``prompt`` take a ``depth=`` keyword.
    """

    name: str
    uses_depth: bool

    def auto_masks(self, image: np.ndarray, where: np.ndarray | None = None) -> list[Mask]:
        """Masks the model finds in ``image`` ((H, W, 3) uint8), unordered, may overlap.

        where: optional (H, W) bool region. Only masks that can add to it are needed: a
        backend may skip work for masks that cannot (SAM decodes only its grid points inside
        ``where``), and may still return masks outside it; callers filter. None: the whole
        image, every mask.
        """
        ...

    def prompt(
        self, image: np.ndarray, points: np.ndarray, point_labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Masks from point prompts, one per prompt set, in one batched call.

        image: (H, W, 3) uint8.
        points: (B, N, 2) float32 pixel coordinates (x, y), pixel centres at integer + 0.5.
        point_labels: (B, N) int32: 1 foreground, 0 background, -1 padding (ignored), so
            prompt sets of different sizes share one batch.
        Returns masks (B, H, W) bool and scores (B,) float32 in [0, 1] (for SAM the predicted
        IoU of the chosen multimask output).
        """
        ...


def check_where(where: np.ndarray | None, image: np.ndarray) -> np.ndarray | None:
    """``where`` checked against ``image``: None, or an (H, W) bool array (ShapeError else)."""
    if where is not None:
        check_shape("where", where, image.shape[:2], np.bool_)
    return where


def depth_kwargs(
    segmenter: object, depth: np.ndarray | None, K: np.ndarray | None = None
) -> dict:
    """``{"depth": depth, "K": K}`` for a segmenter with ``uses_depth = True`` (and a depth
    map; ``K`` only when given), else ``{}``: the keywords to add to its ``auto_masks`` /
    ``prompt`` calls."""
    if depth is None or not getattr(segmenter, "uses_depth", False):
        return {}
    return {"depth": depth} if K is None else {"depth": depth, "K": K}
