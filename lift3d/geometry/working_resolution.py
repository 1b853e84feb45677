"""A working resolution for large images: frames are shrunk for the run (``--max-side``), and
what the run writes is grown back to each frame's input size.

Memory grows with the pixels of a frame (about :data:`PEAK_BYTES_PER_PIXEL` at peak), so a
6000x4000 photo set does not fit in 8 GB. With ``max_side`` the colour is shrunk with area
averaging, depth and ground truth by sampling the input pixel nearest to each working pixel's
centre (depth must not be averaged across an object's border), and K is rescaled
(:func:`~lift3d.cameras.scale_intrinsics`). ID maps go back to the input size by the
same nearest sampling, and :func:`shrink_labels` inverts :func:`grow_labels` exactly, so a
resumed run reads back the very labels it made.
"""

from __future__ import annotations

import warnings
from dataclasses import replace
from pathlib import Path

import numpy as np

from lift3d.cameras import scale_intrinsics
from lift3d.errors import ConfigError
from lift3d.io.common import resize_area
from lift3d.types import Frame, Lazy, LazyFrames, Scene

PEAK_BYTES_PER_PIXEL = 340
"""Peak resident memory of a run per pixel of a frame, beyond its fixed cost. Measured with
``/usr/bin/time`` on 3-frame generated scenes, classical segmenter: 472 MB at 640x480, 772 MB
at 1280x960, i.e. 333 bytes per extra pixel (SAM adds its model, not per-pixel cost)."""

BASE_BYTES = 400 * 2**20
"""Fixed cost of a run (interpreter, numpy, OpenCV, numba; 640x480 run minus its pixels)."""


def working_hw(hw: tuple[int, int], max_side: int | None) -> tuple[int, int]:
    """(H, W) of a frame of input size ``hw`` at the working resolution: its long side at most
    ``max_side`` (None: the input size), aspect ratio kept."""
    h, w = int(hw[0]), int(hw[1])
    if max_side is None or max(h, w) <= max_side:
        return h, w
    s = max_side / max(h, w)
    return max(1, round(h * s)), max(1, round(w * s))


def _nearest_index(n_in: int, n_out: int) -> np.ndarray:
    """For each of ``n_out`` output pixels, the input pixel nearest its centre."""
    return np.minimum(((np.arange(n_out) + 0.5) * n_in / n_out).astype(np.int64), n_in - 1)


def sample_nearest(arr: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(H', W'[, C]) of ``arr`` sampled at the input pixel nearest each output pixel's centre."""
    if tuple(arr.shape[:2]) == tuple(hw):
        return arr
    ys = _nearest_index(arr.shape[0], hw[0])
    xs = _nearest_index(arr.shape[1], hw[1])
    return arr[ys[:, None], xs[None, :]]


def grow_labels(labels: np.ndarray, input_hw: tuple[int, int]) -> np.ndarray:
    """(H, W) ID map of a working-resolution one, at the input size (nearest)."""
    return sample_nearest(labels, input_hw)


def shrink_labels(labels: np.ndarray, max_side: int | None) -> np.ndarray:
    """The working-resolution ID map of an input-size one; the exact inverse of
    :func:`grow_labels`: each working pixel takes the first input pixel that grew from it."""
    hw = working_hw(labels.shape, max_side)
    if tuple(hw) == tuple(labels.shape):
        return labels
    ys = np.searchsorted(_nearest_index(hw[0], labels.shape[0]), np.arange(hw[0]))
    xs = np.searchsorted(_nearest_index(hw[1], labels.shape[1]), np.arange(hw[1]))
    return labels[ys[:, None], xs[None, :]]


def shrink_frame(frame: Frame, max_side: int | None) -> Frame:
    """``frame`` at the working resolution (image area-averaged, depth sampled, K scaled)."""
    hw = working_hw(frame.hw, max_side)
    if hw == frame.hw:
        return frame
    return replace(
        frame, image=resize_area(frame.image, hw),
        depth=None if frame.depth is None else sample_nearest(frame.depth, hw),
        K=None if frame.K is None else scale_intrinsics(frame.K, hw[1] / frame.hw[1], hw[0] / frame.hw[0]))


class WorkingScene:
    """A scene seen at the working resolution: ``scene`` (frames shrunk when read) and, per
    frame already read, its input size and K (what ``cameras.json`` records)."""

    def __init__(self, scene: Scene, max_side: int | None) -> None:
        if max_side is not None and max_side < 16:
            raise ConfigError(f"--max-side must be at least 16 pixels, got {max_side}")
        self.max_side = max_side
        self.input_hw: dict[int, tuple[int, int]] = {}
        self.input_K: dict[int, np.ndarray | None] = {}
        if max_side is None:
            self.scene = scene
            return
        source = scene.frames

        def read(k: int) -> Frame:
            f = source[k]
            self.input_hw[k], self.input_K[k] = f.hw, f.K
            return shrink_frame(f, max_side)

        gt = scene.gt_labels
        self.scene = replace(scene, frames=LazyFrames(scene.names, read, keep=2), gt_labels=(
            None if gt is None else Lazy(len(gt), lambda k: self._shrink_gt(gt[k]), keep=0)))

    def _shrink_gt(self, g: np.ndarray | None) -> np.ndarray | None:
        return None if g is None else sample_nearest(g, working_hw(g.shape, self.max_side))

    def camera(self, t: int, hw: tuple[int, int], K: np.ndarray | None):
        """(input (H, W), input K) of frame ``t`` whose working size and K are ``hw``, ``K``:
        the frame's own K when it came with one, else the geometry's ``K`` (MASt3R's estimate
        on an image folder) scaled back to the input size."""
        if t not in self.input_hw:
            return hw, K
        in_hw, in_K = self.input_hw[t], self.input_K[t]
        if in_K is None and K is not None:
            in_K = scale_intrinsics(K, in_hw[1] / hw[1], in_hw[0] / hw[0])
        return in_hw, in_K

    def write_labels(self, t: int, labels: np.ndarray, write, path: Path) -> None:
        """``write(path, labels)`` at frame ``t``'s input size."""
        write(path, grow_labels(labels, self.input_hw[t]) if t in self.input_hw else labels)


def memory_warning(hw: tuple[int, int], available: int | None = None) -> str | None:
    """A warning when a run on frames of size ``hw`` is expected to need more memory than is
    available (``/proc/meminfo``'s MemAvailable when not given), with the ``--max-side``
    that would fit; None when it fits or nothing is known."""
    if available is None:
        available = _available_memory()
    if available is None:
        return None
    need = BASE_BYTES + PEAK_BYTES_PER_PIXEL * hw[0] * hw[1]
    if need <= available:
        return None
    budget = max(available - BASE_BYTES, 0) / PEAK_BYTES_PER_PIXEL  # pixels that fit
    side = int(max(hw) * np.sqrt(budget / (hw[0] * hw[1]))) // 8 * 8
    return (f"frames of {hw[1]}x{hw[0]} need about {need / 2**30:.1f} GiB, "
            f"{available / 2**30:.1f} GiB available: the run may run out of memory; pass "
            f"--max-side {max(side, 16)} (outputs stay at the input resolution)")


def _available_memory() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def warn_if_too_big(scene: Scene, max_side: int | None) -> None:
    """Warn (before any work) when the first frame's working size will not fit in memory."""
    if len(scene) == 0:
        return
    msg = memory_warning(working_hw(scene.frames[0].hw, max_side))
    if msg is not None:
        warnings.warn(f"{scene.source}: {msg}", stacklevel=3)
