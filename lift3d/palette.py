"""Stable, distinct colours per label ID (0 = unlabelled = grey)."""

from __future__ import annotations

import numpy as np


def label_colors(ids: np.ndarray) -> np.ndarray:
    """(N,) int IDs -> (N, 3) uint8 RGB; the same ID always gets the same colour."""
    import colorsys

    ids = np.asarray(ids, np.int64)
    out = np.empty((len(ids), 3), np.uint8)
    for k, i in enumerate(ids):
        if i <= 0:
            out[k] = (128, 128, 128)
            continue
        h = (i * 0.618033988749895) % 1.0
        s = 0.65 + 0.35 * ((i * 7) % 3) / 2
        v = 0.95 - 0.25 * ((i * 5) % 2)
        out[k] = np.round(np.array(colorsys.hsv_to_rgb(h, s, v)) * 255)
    return out
