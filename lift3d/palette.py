"""Stable, distinct colours for label IDs, shared by the viewer, renders and overlay pictures.

The colour of an ID depends on the ID alone (never on which other IDs exist), so object 7 has
the same colour in every picture, every frame and every run. IDs 1..20 take a hand-picked
table of well separated colours; larger IDs walk the hue circle by the golden ratio with
varying saturation and value. ID 0 (unlabelled) is grey.
"""

from __future__ import annotations

import numpy as np

UNLABELLED_RGB = (128, 128, 128)
"""Colour of ID 0 (and of negative IDs)."""

# Twenty distinct colours (after Sasha Trubetskoy's list), no white, black or mid grey, so
# they never collide with the background or with unlabelled points.
_TABLE = np.array([
    (230, 25, 75), (60, 180, 75), (255, 225, 25), (0, 130, 200), (245, 130, 48),
    (145, 30, 180), (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 212),
    (0, 128, 128), (220, 190, 255), (170, 110, 40), (255, 250, 200), (128, 0, 0),
    (170, 255, 195), (128, 128, 0), (255, 215, 180), (0, 0, 128), (255, 160, 0),
], dtype=np.uint8)

_GOLDEN = 0.6180339887498949


def label_colors(ids: np.ndarray) -> np.ndarray:
    """RGB colour of each ID.

    ids: (...) integer array. Returns (..., 3) uint8: grey for ids <= 0, the fixed table for
    1..20, golden-ratio hues beyond. Vectorised; the colour of an ID never changes.
    """
    ids = np.asarray(ids)
    if not np.issubdtype(ids.dtype, np.integer):
        raise TypeError(f"label IDs must be integers, got {ids.dtype}")
    if ids.size > _LUT_MIN_SIZE:
        # millions of points, few distinct IDs: colour each ID once, then gather
        lo, hi = (int(ids.min()), int(ids.max())) if ids.size else (0, 0)
        if lo >= 0 and hi < _LUT_MAX_ID:
            return _colors_flat(np.arange(hi + 1))[ids]
        uniq, inv = np.unique(ids, return_inverse=True)
        return _colors_flat(uniq)[inv.reshape(ids.shape)]
    return _colors_flat(ids.reshape(-1)).reshape(ids.shape + (3,))


_LUT_MIN_SIZE = 4096
_LUT_MAX_ID = 1 << 20


def _colors_flat(ids: np.ndarray) -> np.ndarray:
    """(N,) integer IDs -> (N, 3) uint8."""
    flat = ids.astype(np.int64)
    out = np.empty((flat.size, 3), np.uint8)
    out[:] = UNLABELLED_RGB
    in_table = (flat >= 1) & (flat <= len(_TABLE))
    out[in_table] = _TABLE[flat[in_table] - 1]
    beyond = flat > len(_TABLE)
    if beyond.any():
        out[beyond] = _golden_colors(flat[beyond])
    return out


def _golden_colors(ids: np.ndarray) -> np.ndarray:
    """(N,) int64 IDs -> (N, 3) uint8 via HSV with golden-ratio hue steps."""
    hue = np.mod(ids * _GOLDEN, 1.0)
    sat = np.array([0.85, 0.6, 0.95])[ids % 3]
    val = np.array([0.95, 0.8, 0.65])[(ids // 3) % 3]
    return (hsv_to_rgb(hue, sat, val) * 255.0 + 0.5).astype(np.uint8)


def hsv_to_rgb(h: np.ndarray, s: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Vectorised HSV -> RGB; h, s, v: (N,) in [0, 1]. Returns (N, 3) float64 in [0, 1]."""
    i = np.floor(h * 6.0).astype(np.int64) % 6
    f = h * 6.0 - np.floor(h * 6.0)
    p, q, t = v * (1 - s), v * (1 - f * s), v * (1 - (1 - f) * s)
    choices = np.stack([
        np.stack([v, t, p], -1), np.stack([q, v, p], -1), np.stack([p, v, t], -1),
        np.stack([p, q, v], -1), np.stack([t, p, v], -1), np.stack([v, p, q], -1),
    ])
    return choices[i, np.arange(h.size)]


_CANDIDATES = 2000  # colours the per-picture palette chooses from


def _greedy_order() -> np.ndarray:
    """(K, 3) uint8: the palette's colours (IDs 1..K) reordered so that each next colour is the
    one farthest, in CIE Lab, from grey and from every colour before it (max-min greedy)."""
    global _GREEDY
    if _GREEDY is None:
        import cv2

        cand = label_colors(np.arange(1, _CANDIDATES + 1))
        lab = cv2.cvtColor(cand[None].astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)[0]
        grey = cv2.cvtColor(np.array([[UNLABELLED_RGB]], np.float32) / 255.0,
                            cv2.COLOR_RGB2LAB)[0, 0]
        dist = np.linalg.norm(lab - grey, axis=1)
        order = []
        for _ in range(len(cand)):
            k = int(np.argmax(dist))
            order.append(k)
            dist = np.minimum(dist, np.linalg.norm(lab - lab[k], axis=1))
            dist[k] = -1.0
        _GREEDY = cand[order]
    return _GREEDY


_GREEDY: np.ndarray | None = None


def picture_colors(label_maps: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Colours for the IDs of one picture that shows several label maps (a strip of frames):
    ``(ids, rgb)``, the IDs (> 0) in decreasing total area and their colours.

    The ID-stable palette (:func:`label_colors`) must give hundreds of IDs colours, so two far
    apart IDs can look alike, which in a strip reads as "the same ID". Here only the IDs in
    the picture get colours, the largest first, each as far from the ones before as the
    palette allows; colours repeat only beyond 2000 IDs.
    """
    flat = np.concatenate([np.asarray(m).ravel() for m in label_maps]) if label_maps else []
    flat = np.asarray(flat, np.int64)
    flat = flat[flat > 0]
    if flat.size == 0:
        return np.zeros(0, np.int64), np.zeros((0, 3), np.uint8)
    ids, counts = np.unique(flat, return_counts=True)
    ids = ids[np.argsort(-counts, kind="stable")]
    table = _greedy_order()
    return ids, table[np.arange(ids.size) % len(table)]
