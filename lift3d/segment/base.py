"""The Segmenter interface: what the tracker needs from a 2D segmentation model.

Two operations, as SAM offers them: automatic masks for a whole image, and masks from point
prompts. Backends keep expensive per-image work (SAM's image embedding) cached for the last
image they saw, so prompting the same frame many times costs one embedding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import numpy as np


@dataclass
class Mask:
    """One mask from ``auto_masks``.

    segmentation: (H, W) bool. score: model's quality estimate in [0, 1] (SAM: predicted IoU).
    """

    segmentation: np.ndarray
    score: float

    @property
    def area(self) -> int:
        return int(self.segmentation.sum())


@runtime_checkable
class Segmenter(Protocol):
    """A 2D segmentation model.

    name: short backend name for reports (``"classical"``, ``"sam"``).
    """

    name: str

    def auto_masks(self, image: np.ndarray) -> list[Mask]:
        """All masks the model finds in ``image`` ((H, W, 3) uint8), unordered, may overlap."""
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
