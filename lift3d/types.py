"""Plain data passed between the stages (see DESIGN.md).

Conventions used everywhere in lift3d:

* Cameras are OpenCV: x right, y down, z forward. Poses are camera-to-world 4x4 matrices.
* Pixel coordinates are ``(x, y)`` = (column, row). Pixel ``(x, y)`` is the integer index of a
  pixel; where a function works with continuous coordinates whose pixel centres lie at
  integer + 0.5, its docstring says so.
* Depth is metric z (not ray length), in metres, float32, 0 where invalid.
* Label maps are int32, 0 = unlabelled; an ID names the same object in every frame.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass
class Frame:
    """One input frame.

    image: (H, W, 3) uint8 RGB.
    depth: (H, W) float32 metres (z), 0 = invalid; None when the source has no depth.
    K: (3, 3) float64 pinhole intrinsics of ``image`` (depth is registered to it); or None.
    cam_to_world: (4, 4) float64 camera-to-world pose (OpenCV axes); or None.
    name: stem used for per-frame outputs (``labels/<name>.png``).
    path: the image file it was read from, if any (exports copy or link it).
    """

    image: np.ndarray
    name: str
    depth: np.ndarray | None = None
    K: np.ndarray | None = None
    cam_to_world: np.ndarray | None = None
    path: Path | None = None

    @property
    def hw(self) -> tuple[int, int]:
        return int(self.image.shape[0]), int(self.image.shape[1])


@dataclass
class Scene:
    """An ordered list of frames and where they came from.

    source: the folder read; layout: the detected layout name (``scannet``, ``7scenes``,
    ``tum``, ``images``, ``davis``...).
    gt_labels: optional per-frame (H, W) int32 ground-truth instance IDs (0 = background).
    gt_points / gt_point_labels: optional ground-truth cloud (N, 3) float32 and (N,) int32.
    """

    frames: list[Frame]
    source: Path
    layout: str
    gt_labels: list[np.ndarray] | None = None
    gt_points: np.ndarray | None = None
    gt_point_labels: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.frames]


@dataclass
class Matches:
    """Dense pixel correspondences from frame i to frame j.

    xy_i, xy_j: (N, 2) int32 integer pixel coordinates (x, y) in frame i and frame j.
    conf: (N,) float32 in [0, 1], higher is more reliable.
    """

    xy_i: np.ndarray
    xy_j: np.ndarray
    conf: np.ndarray

    def __len__(self) -> int:
        return int(self.xy_i.shape[0])


MatchFn = Callable[[int, int], Matches]


@dataclass
class Geometry:
    """Per-frame world geometry, in one world frame shared by all frames.

    points: list of (H, W, 3) float32 world points (metres for metric sources); for 2D-only
        sources (optical flow) None.
    conf: list of (H, W) float32 confidences (>= 0; comparable within one source).
    valid: list of (H, W) bool, True where ``points`` is usable.
    K: list of (3, 3) float64 intrinsics, or None per frame when unknown.
    cam_to_world: list of (4, 4) float64 poses, or None per frame when unknown.
    match_fn: returns dense :class:`Matches` between two frames. Backends set it; see
        :meth:`matches`.
    kind: ``"3d"`` when ``points`` are world points, ``"2d"`` for flow-only geometry.
    """

    points: list[np.ndarray] | None
    conf: list[np.ndarray]
    valid: list[np.ndarray]
    K: list[np.ndarray | None]
    cam_to_world: list[np.ndarray | None]
    match_fn: MatchFn | None = field(default=None, repr=False)
    kind: str = "3d"

    def __len__(self) -> int:
        return len(self.valid)

    def matches(self, i: int, j: int) -> Matches:
        """Dense correspondences from frame ``i`` to frame ``j``."""
        if self.match_fn is None:
            raise NotImplementedError("this Geometry has no matcher")
        return self.match_fn(i, j)


@dataclass
class Labels:
    """Per-frame ID maps: list of (H, W) int32, 0 = unlabelled, IDs consistent across frames.

    scores: optional per-frame {id: score} of the mask that produced each ID there.
    """

    maps: list[np.ndarray]
    scores: list[dict[int, float]] | None = None

    def __len__(self) -> int:
        return len(self.maps)

    def ids(self) -> np.ndarray:
        """Sorted array of all IDs > 0 used in any frame."""
        if not self.maps:
            return np.zeros(0, np.int32)
        u = np.unique(np.concatenate([np.unique(m) for m in self.maps]))
        return u[u > 0].astype(np.int32)


@dataclass
class LabelledCloud:
    """A fused, labelled point cloud.

    points: (N, 3) float32 world coordinates; colors: (N, 3) uint8 RGB;
    normals: (N, 3) float32 unit normals (zeros where unknown);
    labels: (N,) int32 (0 = unlabelled); label_conf: (N,) float32 in [0, 1], the share of the
    confidence-weighted votes that the winning label got; n_obs: (N,) int32 observations fused.
    """

    points: np.ndarray
    colors: np.ndarray
    normals: np.ndarray
    labels: np.ndarray
    label_conf: np.ndarray
    n_obs: np.ndarray

    def __len__(self) -> int:
        return int(self.points.shape[0])
