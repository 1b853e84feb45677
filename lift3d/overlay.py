"""Pictures of ID maps: colours blended over the frame, contours, and strips of frames."""

from __future__ import annotations

import numpy as np

from lift3d.palette import label_colors


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5) -> np.ndarray:
    """(H, W, 3) uint8: ``image`` with each ID's palette colour blended in and its contour
    drawn; unlabelled pixels keep the image."""
    import cv2

    ids = np.unique(labels)
    lut = np.zeros((int(ids.max()) + 1, 3), np.uint8)
    lut[ids] = label_colors(ids)
    col = lut[labels]
    lab = labels > 0
    out = image.astype(np.float32)
    out[lab] = (1 - alpha) * out[lab] + alpha * col[lab]
    out = out.astype(np.uint8)
    edges = np.zeros(labels.shape, bool)
    edges[:, 1:] |= labels[:, 1:] != labels[:, :-1]
    edges[1:, :] |= labels[1:, :] != labels[:-1, :]
    edges = cv2.dilate(edges.astype(np.uint8), np.ones((2, 2), np.uint8)).astype(bool)
    out[edges & lab] = col[edges & lab]
    return out


def strip(
    images: list[np.ndarray], labels: list[np.ndarray], names: list[str], n: int = 6,
    height: int = 180,
) -> np.ndarray:
    """A row of ``n`` evenly spaced overlays, each captioned with its frame name, so a person
    sees at a glance whether IDs (colours) stay put or flicker."""
    import cv2

    picks = np.unique(np.linspace(0, len(images) - 1, min(n, len(images))).round().astype(int))
    tiles = []
    for k in picks:
        o = overlay(images[k], labels[k])
        w = int(round(o.shape[1] * height / o.shape[0]))
        o = cv2.resize(o, (w, height), interpolation=cv2.INTER_NEAREST)
        cv2.putText(o, names[k], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 3)
        cv2.putText(o, names[k], (4, 16), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (255, 255, 255), 1)
        tiles.append(o)
        tiles.append(np.full((height, 4, 3), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)
