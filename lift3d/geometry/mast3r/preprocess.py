"""Image preparation as MASt3R expects it, and the exact map back to original pixels.

An image is resized so its long side is ``long_side`` (512), then centre-cropped to
multiples of 16 (square images to 4:3 unless ``square_ok``), then mapped to [-1, 1].

Coordinates in :func:`to_network` / :func:`to_original` are continuous (x, y) with pixel
centres at integer + 0.5 (pixel ``i`` spans [i, i+1)); the ``pixel_*`` functions take and
return integer pixel indices (x, y) = (column, row).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from lift3d.checks import check_shape
from lift3d.errors import InputError


@dataclass(frozen=True)
class ImagePrep:
    """How one image became the network's input.

    orig_hw: (H, W) of the original image; resized_hw: (H, W) after the resize;
    crop_xy: (x0, y0) top-left of the crop in the resized image; net_hw: (H, W) fed to the
    network (the crop size).
    """

    orig_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    crop_xy: tuple[int, int]
    net_hw: tuple[int, int]

    @property
    def scale_xy(self) -> np.ndarray:
        """(sx, sy): resized size / original size per axis (they differ by rounding)."""
        return np.array([self.resized_hw[1] / self.orig_hw[1],
                         self.resized_hw[0] / self.orig_hw[0]])


def to_network(xy: np.ndarray, prep: ImagePrep) -> np.ndarray:
    """(..., 2) continuous original coordinates -> continuous network coordinates."""
    return np.asarray(xy, np.float64) * prep.scale_xy - np.asarray(prep.crop_xy, np.float64)


def to_original(xy: np.ndarray, prep: ImagePrep) -> np.ndarray:
    """(..., 2) continuous network coordinates -> continuous original coordinates."""
    return (np.asarray(xy, np.float64) + np.asarray(prep.crop_xy, np.float64)) / prep.scale_xy


def pixel_to_original(xy: np.ndarray, prep: ImagePrep) -> np.ndarray:
    """(..., 2) integer network pixels -> (..., 2) int32 original pixel containing its centre."""
    xy_o = np.floor(to_original(np.asarray(xy) + 0.5, prep)).astype(np.int64)
    hi = np.array([prep.orig_hw[1] - 1, prep.orig_hw[0] - 1])
    return np.clip(xy_o, 0, hi).astype(np.int32)


def pixel_to_network(xy: np.ndarray, prep: ImagePrep) -> tuple[np.ndarray, np.ndarray]:
    """(..., 2) integer original pixels -> ((..., 2) int32 network pixel containing its
    centre, (...) bool inside the crop)."""
    xy_n = np.floor(to_network(np.asarray(xy) + 0.5, prep)).astype(np.int64)
    inside = ((xy_n >= 0) & (xy_n < np.array([prep.net_hw[1], prep.net_hw[0]]))).all(-1)
    return xy_n.astype(np.int32), inside


def plan(orig_hw: tuple[int, int], long_side: int = 512, patch: int = 16,
         square_ok: bool = False) -> ImagePrep:
    """The resize and crop MASt3R applies to an image of size ``orig_hw``."""
    H, W = orig_hw
    s = long_side / max(H, W)
    rw, rh = int(round(W * s)), int(round(H * s))
    cx, cy = rw // 2, rh // 2
    half = patch // 2
    halfw = (2 * cx) // patch * half
    halfh = (2 * cy) // patch * half
    if rw == rh and not square_ok:  # square inputs run at 4:3, as the model was trained
        halfh = (3 * halfw // 4) // half * half
    if halfw == 0 or halfh == 0:
        raise InputError(f"image {W}x{H} is too small or too thin for MASt3R",
                         fix=f"its short side must reach 16 pixels at long side {long_side}")
    return ImagePrep((H, W), (rh, rw), (cx - halfw, cy - halfh), (2 * halfh, 2 * halfw))


def prepare_image(image: np.ndarray, long_side: int = 512, square_ok: bool = False
                  ) -> tuple[torch.Tensor, ImagePrep]:
    """image: (H, W, 3) uint8 RGB -> ((3, h, w) float32 in [-1, 1], ImagePrep).

    Downscaling uses Lanczos, upscaling bicubic (PIL), as the reference pipeline does.
    """
    check_shape("image", image, (None, None, 3), np.uint8)
    prep = plan(image.shape[:2], long_side, square_ok=square_ok)
    pil = Image.fromarray(image)
    rh, rw = prep.resized_hw
    resample = Image.LANCZOS if max(image.shape[:2]) > long_side else Image.BICUBIC
    pil = pil.resize((rw, rh), resample)
    x0, y0 = prep.crop_xy
    h, w = prep.net_hw
    arr = np.asarray(pil, dtype=np.float32)[y0 : y0 + h, x0 : x0 + w]
    return torch.from_numpy(arr / 127.5 - 1.0).permute(2, 0, 1).contiguous(), prep


def resample_to_original(arr: np.ndarray, prep: ImagePrep, fill=0) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-neighbour map of a network-resolution array back to the original image.

    arr: (h, w, ...) at ``prep.net_hw`` -> ((H, W, ...) at ``prep.orig_hw``, (H, W) bool
    inside the crop); pixels outside the crop get ``fill``.
    """
    H, W = prep.orig_hw
    h, w = prep.net_hw
    sx, sy = prep.scale_xy
    x0, y0 = prep.crop_xy
    cols = np.floor((np.arange(W) + 0.5) * sx - x0).astype(np.int64)
    rows = np.floor((np.arange(H) + 0.5) * sy - y0).astype(np.int64)
    cin, rin = (cols >= 0) & (cols < w), (rows >= 0) & (rows < h)
    out = arr[np.clip(rows, 0, h - 1)[:, None], np.clip(cols, 0, w - 1)[None, :]]
    inside = rin[:, None] & cin[None, :]
    out[~inside] = fill
    return out, inside
