"""Pictures of ID maps: colours blended over the frame, contours, and strips of frames."""

from __future__ import annotations

import numpy as np

from lift3d.palette import UNLABELLED_RGB, label_colors, picture_colors


def overlay(image: np.ndarray, labels: np.ndarray, alpha: float = 0.5,
            colors: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    """(H, W, 3) uint8: ``image`` with each ID's colour blended in and its contour drawn;
    unlabelled pixels keep the image. Colours: the ID-stable palette, or ``colors`` = (ids,
    rgb) for a picture of its own (:func:`lift3d.palette.picture_colors`; IDs missing there
    are grey)."""
    import cv2

    ids = np.unique(labels)
    lut = np.zeros((int(ids.max()) + 1, 3), np.uint8)
    if colors is None:
        lut[ids] = label_colors(ids)
    else:
        lut[:] = UNLABELLED_RGB
        known = colors[0] <= ids.max()
        lut[colors[0][known]] = colors[1][known]
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


def id_anchors(labels: np.ndarray, max_n: int = 8, min_frac: float = 0.01
               ) -> list[tuple[int, int, int]]:
    """Where to write the ID on the largest segments of an ID map: ``(id, x, y)`` for up to
    ``max_n`` IDs (> 0) covering at least ``min_frac`` of the pixels, at each one's most
    interior pixel (the maximum of its distance transform)."""
    import cv2

    ids, counts = np.unique(labels[labels > 0], return_counts=True)
    keep = np.argsort(-counts, kind="stable")[:max_n]
    keep = keep[counts[keep] >= min_frac * labels.size]
    out = []
    for i in ids[keep]:
        mask = np.pad(labels == i, 1).astype(np.uint8)  # the border counts as outside
        d = cv2.distanceTransform(mask, cv2.DIST_L2, 3)
        y, x = np.unravel_index(int(np.argmax(d)), d.shape)
        out.append((int(i), int(x) - 1, int(y) - 1))
    return out


def _text(img: np.ndarray, text: str, xy: tuple[int, int], scale: float, center=False) -> None:
    """White text with a black outline, readable on any colour."""
    import cv2

    x, y = xy
    (tw, th), base = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
    if center:
        x, y = x - tw // 2, y + th // 2
    # the outline is the glyphs grown by a pixel: OpenCV advances each character by the
    # stroke thickness, so text drawn thick (the old outline) ran off its thin copy by up
    # to 9 px at the strip's captions ("frame-000240" read as "frame-0002400")
    pad = 2
    y0, x0 = y - th - pad, x - pad
    glyphs = np.zeros((th + base + 2 * pad + 1, tw + 2 * pad + 1), np.uint8)
    cv2.putText(glyphs, text, (pad, th + pad), cv2.FONT_HERSHEY_SIMPLEX, scale, 255, 1)
    outline = cv2.dilate(glyphs, np.ones((3, 3), np.uint8))
    hh, ww = img.shape[:2]
    ys, xs = slice(max(y0, 0), min(y0 + glyphs.shape[0], hh)), slice(max(x0, 0),
                                                                      min(x0 + glyphs.shape[1], ww))
    if ys.start >= ys.stop or xs.start >= xs.stop:
        return
    crop = (slice(ys.start - y0, ys.stop - y0), slice(xs.start - x0, xs.stop - x0))
    region = img[ys, xs]
    region[outline[crop] > 0] = 0
    region[glyphs[crop] > 0] = 255


def strip(
    images: list[np.ndarray], labels: list[np.ndarray], names: list[str], n: int = 6,
    height: int = 180,
) -> np.ndarray:
    """A row of ``n`` evenly spaced overlays, each captioned with its frame name, so a person
    sees at a glance whether IDs stay put or flicker. The strip's IDs get colours of their own
    (largest most distinct: :func:`lift3d.palette.picture_colors`), and the largest segments
    carry their ID number: same colour and number, same ID."""
    import cv2

    picks = np.unique(np.linspace(0, len(images) - 1, min(n, len(images))).round().astype(int))
    colors = picture_colors([labels[k] for k in picks])
    tiles = []
    for k in picks:
        o = overlay(images[k], labels[k], colors=colors)
        w = int(round(o.shape[1] * height / o.shape[0]))
        o = cv2.resize(o, (w, height), interpolation=cv2.INTER_NEAREST)
        small = cv2.resize(labels[k], (w, height), interpolation=cv2.INTER_NEAREST)
        for i, x, y in id_anchors(small):
            _text(o, str(i), (x, y), 0.4, center=True)
        _text(o, names[k], (4, 16), 0.5)
        tiles.append(o)
        tiles.append(np.full((height, 4, 3), 255, np.uint8))
    return np.concatenate(tiles[:-1], axis=1)
