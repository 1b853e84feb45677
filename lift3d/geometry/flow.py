"""Geometry from optical flow: the 2D path for plain video ("flow" backend).

No 3D: the pointmaps have no points (``kind == "2d"``), every pixel is valid, and dense matches
between frames come from OpenCV's DIS optical flow with a forward-backward check. A pixel p
of frame i maps to q = p + F_ij(p); going back, q + F_ji(q) should land on p again. The
distance e by which it misses gives the match confidence 1 / (1 + (e / tau)^2); matches that
leave the image or miss by more than ``max_fb_error`` are dropped (occlusions, disocclusions).

Matches between non-consecutive frames chain the consecutive flows (i -> i+1 -> ... -> j),
each step with its own check; the confidence is the product.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from lift3d.checks import with_settings
from lift3d.types import Geometry, Lazy, Matches, PointMaps, Scene


@dataclass(frozen=True)
class FlowConfig:
    """Optical-flow settings."""

    preset: str = "medium"
    """DIS preset: ultrafast, fast or medium (slower, more accurate)."""
    fb_tau: float = 1.0
    """Forward-backward error (pixels) at which the confidence is 0.5."""
    max_fb_error: float = 3.0
    """Matches whose forward-backward error exceeds this (pixels) are dropped."""
    cache_pairs: int = 64
    """How many frame pairs' flows to keep in memory."""


_PRESETS = {"ultrafast": 0, "fast": 1, "medium": 2}


def dis_flow(preset: str):
    """OpenCV's DIS optical flow at a named preset (ultrafast | fast | medium)."""
    import cv2

    return cv2.DISOpticalFlow_create(_PRESETS[preset])


class FlowMatcher:
    """Matches from DIS optical flow, forward-backward checked, chained over frame steps.

    Grey frames are read from the scene when a flow needs them; the last ``cache_pairs``
    flows are kept.
    """

    cost = "optical flow"
    """Two DIS flows (forward and backward) per frame step between i and j, unless cached."""

    def __init__(self, scene: Scene, cfg: FlowConfig) -> None:

        self.cfg = cfg
        self.scene = scene
        self._dis = dis_flow(cfg.preset)
        self._hw: tuple[int, int] | None = None
        self._flow = lru_cache(maxsize=cfg.cache_pairs)(self._calc)
        self._gray = lru_cache(maxsize=4)(self._read_gray)

    def _read_gray(self, i: int) -> np.ndarray:
        import cv2

        from lift3d.errors import InputError

        g = cv2.cvtColor(self.scene.frames[i].image, cv2.COLOR_RGB2GRAY)
        if self._hw is None:
            self._hw = g.shape
        elif g.shape != self._hw:
            raise InputError(
                f"frames differ in size ({sorted({self._hw, g.shape})}); flow needs one size",
                self.scene.source, "resize the frames to one resolution",
            )
        return g

    def _calc(self, i: int, j: int) -> np.ndarray:
        return self._dis.calc(self._gray(i), self._gray(j), None)

    def prepare(self, pairs: list[tuple[int, int]]) -> None:
        return None

    def _step(self, i: int, j: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Forward-backward checked matches of every pixel of i in j (adjacent frames)."""
        return checked_matches(self._flow(i, j), self._flow(j, i), self.cfg)

    def matches(self, i: int, j: int) -> Matches:
        if i == j:
            raise ValueError("matches of a frame with itself")
        d = 1 if j > i else -1
        src, dst, conf = self._step(i, i + d)
        h, w = self._hw
        for k in range(i + d, j, d):  # chain further steps
            s2, d2, c2 = self._step(k, k + d)
            lut = np.full(h * w, -1, np.int64)
            lut[s2[:, 1] * w + s2[:, 0]] = np.arange(len(s2))
            nxt = lut[dst[:, 1] * w + dst[:, 0]]
            ok = nxt >= 0
            src, dst, conf = src[ok], d2[nxt[ok]], conf[ok] * c2[nxt[ok]]
        return Matches(src.astype(np.int32), dst.astype(np.int32), conf.astype(np.float32))


class FlowGeometry:
    """GeometrySource from DIS optical flow between consecutive frames."""

    name = "flow"

    def __init__(self, cfg: FlowConfig | None = None, **overrides) -> None:
        self.cfg = with_settings(cfg or FlowConfig(), overrides, "flow geometry")

    def __call__(self, scene: Scene, cache_dir: Path | None = None) -> Geometry:
        """2D geometry: every pixel valid with confidence 1, frames' own K and pose (if any),
        and a :class:`FlowMatcher`. Frames are read when a pointmap or a flow needs them."""
        frames = scene.frames
        matcher = FlowMatcher(scene, self.cfg)

        def pointmap(t: int) -> PointMaps:
            f = frames[t]
            matcher._gray(t)  # checks the frame's size against the others
            hw = f.hw
            return PointMaps(points=None, conf=np.ones(hw, np.float32), valid=np.ones(hw, bool),
                             K=f.K, cam_to_world=f.cam_to_world)

        return Geometry(Lazy(len(frames), pointmap, keep=2), matcher, kind="2d")


def checked_matches(
    fwd: np.ndarray, bwd: np.ndarray, cfg: FlowConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Matches from a forward flow (H, W, 2) checked against the backward flow (H, W, 2).

    Returns xy_i (N, 2) int, xy_j (N, 2) int (the rounded target) and conf (N,) float32.
    """
    h, w = fwd.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    tx = xs + fwd[..., 0]
    ty = ys + fwd[..., 1]
    qx = np.rint(tx).astype(np.int64)
    qy = np.rint(ty).astype(np.int64)
    inside = (qx >= 0) & (qx < w) & (qy >= 0) & (qy < h)
    qxc, qyc = np.clip(qx, 0, w - 1), np.clip(qy, 0, h - 1)
    bx = tx + bwd[qyc, qxc, 0]
    by = ty + bwd[qyc, qxc, 1]
    err = np.hypot(bx - xs, by - ys)
    keep = inside & (err <= cfg.max_fb_error)
    conf = 1.0 / (1.0 + (err[keep] / cfg.fb_tau) ** 2)
    xy_i = np.stack([xs[keep], ys[keep]], 1)
    xy_j = np.stack([qx[keep], qy[keep]], 1)
    return xy_i, xy_j, conf.astype(np.float32)
