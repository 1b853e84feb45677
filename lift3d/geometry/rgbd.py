"""Geometry from posed depth (the ``rgbd`` backend).

Every frame's depth map is back-projected into world points with its intrinsics and
camera-to-world pose; pixels are valid where the depth is finite, inside the working range
and not on a depth discontinuity; dense matches between two frames come from projecting the
world points of frame i into frame j and keeping the pixels whose depth agrees there (the
occlusion test).

Conventions (lift3d/types.py): OpenCV camera, pixel (x, y) is the integer index of a pixel and
back-projects along ``K^-1 [x, y, 1]``; depth is metric z; poses are camera-to-world.

Confidence of a valid pixel (all factors in (0, 1]; 0 where invalid)::

    conf = c_depth * c_tilt * c_edge
    c_depth = 1 / (1 + (z / conf_depth_half)^2)       # Kinect-style noise grows ~ z^2
    c_tilt  = 1 / (1 + (tilt / edge_max_tan)^2)       # grazing surfaces are less reliable
    c_edge  = edge_near_conf within edge_margin px of a discontinuity, else 1

where ``tilt = (max - min of z over the 3x3 neighbourhood) / z * fx / 2``: on a plane it is
about the tangent of the angle between the surface and the image plane; across an object
border it is large. Pixels with ``tilt > edge_max_tan`` are depth discontinuities (flying
pixels between a foreground border and the background) and are dropped when ``drop_edges``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lift3d.cameras import backproject, project
from lift3d.checks import check_shape, with_settings
from lift3d.errors import InputError, ShapeError
from lift3d.types import Frame, Geometry, Lazy, Matches, PointMaps, Scene

__all__ = ["RGBDConfig", "RGBDGeometry", "ReprojectionMatcher", "backproject", "depth_validity",
           "pointmaps_from_depth", "project", "reproject_matches"]


@dataclass(frozen=True)
class RGBDConfig:
    """Settings of the ``rgbd`` geometry backend (depths in metres)."""

    min_depth: float = 0.1
    """Depths below this are invalid (sensor minimum range; also rejects noise near 0)."""
    max_depth: float = 10.0
    """Depths above this are invalid (structured-light/ToF noise is too large beyond)."""
    drop_edges: bool = True
    """Drop depth-discontinuity pixels (flying pixels at object borders) from ``valid``."""
    edge_max_tan: float = 10.0
    """A pixel is a discontinuity where its 3x3 relative depth range, scaled by fx / 2, exceeds
    this: tan of about 84 degrees between surface and image plane. On 640x480 Kinect depth
    (fx = 585) that is a 3.4% depth jump between neighbours, well above the sensor noise."""
    edge_margin: int = 2
    """Pixels within this many pixels of a discontinuity get the ``edge_near_conf`` factor."""
    edge_near_conf: float = 0.5
    """Confidence factor of pixels near a discontinuity (depth/colour misregistration)."""
    conf_depth_half: float = 3.0
    """Depth (m) at which the depth factor of the confidence is 0.5."""
    depth_tol_rel: float = 0.02
    """Depth test of matches: |z_proj - depth_j| <= depth_tol_rel * z_proj + depth_tol_abs."""
    depth_tol_abs: float = 0.02
    """Absolute part of the depth test (m): pose error and depth noise at short range."""


def depth_validity(depth: np.ndarray, K: np.ndarray, cfg: RGBDConfig = RGBDConfig()):
    """Validity and confidence of a depth map (formula in the module docstring).

    depth: (H, W) metres, 0 / non-finite = invalid; K: (3, 3).
    Returns valid (H, W) bool, conf (H, W) float32 in [0, 1] (0 where invalid), and the
    cleaned depth (H, W) float32 (0 where not valid).
    """
    check_shape("depth", depth, (None, None))
    z = np.asarray(depth, np.float32)
    ok = np.isfinite(z) & (z > 0) & (z >= cfg.min_depth) & (z <= cfg.max_depth)
    z = np.where(ok, z, 0.0).astype(np.float32)
    tilt = _tilt(z, ok, float(K[0, 0]))
    edge = ok & (tilt > cfg.edge_max_tan)
    valid = ok & ~edge if cfg.drop_edges else ok
    size = 2 * cfg.edge_margin + 1
    near = cv2.dilate(edge.astype(np.uint8), np.ones((size, size), np.uint8)) > 0
    conf = 1.0 / (1.0 + (z / cfg.conf_depth_half) ** 2)
    conf *= 1.0 / (1.0 + (np.minimum(tilt, 1e6) / cfg.edge_max_tan) ** 2)
    conf *= np.where(near, cfg.edge_near_conf, 1.0)
    conf = np.where(valid, conf, 0.0).astype(np.float32)
    return valid, conf, np.where(valid, z, 0.0).astype(np.float32)


def _tilt(z: np.ndarray, ok: np.ndarray, fx: float) -> np.ndarray:
    """(max - min of valid z in the 3x3 neighbourhood) / z * fx / 2; 0 where z is invalid."""
    k = np.ones((3, 3), np.uint8)
    zmax = cv2.dilate(z, k)  # invalid pixels are 0 and never win the max
    zmin = -cv2.dilate(np.where(ok, -z, -np.inf).astype(np.float32), k)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = (zmax - zmin) / z * (0.5 * fx)
    return np.where(ok, t, 0.0).astype(np.float32)


def reproject_matches(
    points_i: np.ndarray,
    valid_i: np.ndarray,
    depth_j: np.ndarray,
    K_j: np.ndarray,
    pose_j: np.ndarray,
    valid_j: np.ndarray,
    cfg: RGBDConfig = RGBDConfig(),
    conf_i: np.ndarray | None = None,
    conf_j: np.ndarray | None = None,
) -> Matches:
    """Dense matches from frame i to frame j by reprojection with a depth (occlusion) test.

    points_i: (H_i, W_i, 3) world points of frame i; valid_i: (H_i, W_i) bool.
    depth_j: (H_j, W_j) metres; K_j: (3, 3); pose_j: (4, 4) camera-to-world; valid_j: (H_j, W_j).
    conf_i, conf_j: optional per-pixel confidences in [0, 1] (1 when absent).
    A valid pixel xy_i matches xy_j = round(project(point)) when xy_j is inside frame j, valid
    there, and ``|z_proj - depth_j[xy_j]| <= depth_tol_rel * z_proj + depth_tol_abs`` (a pixel
    hidden behind something nearer in frame j fails this test). Several pixels of i may match
    the same pixel of j. conf = sqrt(conf_i * conf_j) * (1 - 0.5 * |dz| / tol).
    """
    hi, wi = valid_i.shape
    check_shape("points_i", points_i, (hi, wi, 3))
    check_shape("depth_j", depth_j, (None, None))
    hj, wj = depth_j.shape
    check_shape("valid_j", valid_j, (hj, wj))
    ys, xs = np.nonzero(valid_i)
    uv, z = project(points_i[ys, xs], K_j, pose_j)
    front = z > 0
    with np.errstate(invalid="ignore"):
        u = np.where(front, np.rint(uv[:, 0]), -1).astype(np.int64)
        v = np.where(front, np.rint(uv[:, 1]), -1).astype(np.int64)
    keep = front & (u >= 0) & (u < wj) & (v >= 0) & (v < hj)
    xs, ys, u, v, z = xs[keep], ys[keep], u[keep], v[keep], z[keep]
    keep = valid_j[v, u]
    xs, ys, u, v, z = xs[keep], ys[keep], u[keep], v[keep], z[keep]
    dz = np.abs(z - depth_j[v, u])
    tol = cfg.depth_tol_rel * z + cfg.depth_tol_abs
    keep = dz <= tol
    xs, ys, u, v = xs[keep], ys[keep], u[keep], v[keep]
    conf = 1.0 - 0.5 * dz[keep] / tol[keep]
    pair = np.ones_like(conf)
    if conf_i is not None:
        pair = pair * conf_i[ys, xs]
    if conf_j is not None:
        pair = pair * conf_j[v, u]
    conf = (np.sqrt(pair) * conf).astype(np.float32)
    return Matches(
        xy_i=np.stack([xs, ys], 1).astype(np.int32),
        xy_j=np.stack([u, v], 1).astype(np.int32),
        conf=conf,
    )


def pointmaps_from_depth(frame: Frame, cfg: RGBDConfig = RGBDConfig(),
                         source: Path | None = None) -> PointMaps:
    """One frame's PointMaps from its posed depth: world points, validity, confidence and the
    cleaned depth (the matcher's occlusion test reads it)."""
    d, K, pose = _posed_depth(frame, source)
    v, c, z = depth_validity(d, K, cfg)
    return PointMaps(points=backproject(z, K, pose), conf=c, valid=v, K=K, cam_to_world=pose,
                     depth=z)


class ReprojectionMatcher:
    """Matches by reprojection with a depth test (:func:`reproject_matches`) between two
    frames' PointMaps, read from ``pointmaps`` when asked."""

    cost = "reprojection"
    """One projection of frame i's valid points into frame j; no state, nothing to prepare."""

    def __init__(self, pointmaps, cfg: RGBDConfig = RGBDConfig()) -> None:
        self.pointmaps = pointmaps
        self.cfg = cfg

    def prepare(self, pairs: list[tuple[int, int]]) -> None:
        return None

    def matches(self, i: int, j: int) -> Matches:
        a, b = self.pointmaps[i], self.pointmaps[j]
        return reproject_matches(a.points, a.valid, b.depth, b.K, b.cam_to_world, b.valid,
                                 self.cfg, a.conf, b.conf)


class RGBDGeometry:
    """Geometry source for posed RGB-D scenes: ``RGBDGeometry(cfg)(scene) -> Geometry``.

    Each frame's PointMaps is computed from its depth when a stage asks for it (the last
    ``keep`` are kept), so memory does not grow with the number of frames.
    """

    name = "rgbd"
    keep = 3
    """PointMaps kept in memory: the tracker's frames t-1 and t, and one spare."""

    def __init__(self, cfg: RGBDConfig = RGBDConfig(), **overrides):
        # build_geometry("rgbd", depth_tol_rel=0.03) passes config fields as keywords.
        self.cfg = with_settings(cfg, overrides, "rgbd geometry")

    def __call__(self, scene: Scene, cache_dir: Path | None = None) -> Geometry:
        """Per-frame world points, validity and confidence (on demand) and a reprojection
        matcher. Nothing is cached on disk: back-projection costs less than reading it."""
        cfg, frames, source = self.cfg, scene.frames, scene.source
        # Fail before any work: every frame when they are in memory, else the first one
        # (a lazy scene's later frames are checked when read).
        for f in frames if isinstance(frames, list) else frames[:1]:
            _posed_depth(f, source)
        pointmaps = Lazy(len(frames), lambda t: pointmaps_from_depth(frames[t], cfg, source),
                         keep=self.keep)
        return Geometry(pointmaps, ReprojectionMatcher(pointmaps, cfg), kind="3d")


def _posed_depth(frame: Frame, source: Path | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The frame's depth, K and pose, or an InputError naming the frame and the fix."""
    missing = [
        n for n, a in (("depth", frame.depth), ("K", frame.K), ("pose", frame.cam_to_world))
        if a is None
    ]
    if missing:
        raise InputError(
            f"frame {frame.name!r} has no {', '.join(missing)}; the rgbd geometry needs "
            "posed depth (depth, intrinsics and camera-to-world pose) for every frame",
            path=source,
            fix="use --geometry flow or --geometry mast3r for scenes without posed depth",
        )
    depth = np.asarray(frame.depth)
    if depth.shape != frame.hw:
        raise ShapeError(
            f"frame {frame.name!r}: depth {depth.shape} is not registered to the image "
            f"{frame.hw}; resize the depth to the image (and scale K) when reading the scene"
        )
    K = np.asarray(frame.K, np.float64)
    pose = np.asarray(frame.cam_to_world, np.float64)
    check_shape(f"frame {frame.name!r} K", K, (3, 3))
    check_shape(f"frame {frame.name!r} cam_to_world", pose, (4, 4))
    return depth, K, pose
