"""What the viewer and the headless renderer show, as plain arrays (no window, no GL).

A :class:`ViewScene` is a labelled cloud plus the cameras of the frames it came from. The
functions here colour it (by label, RGB or label confidence), list its labels with point
counts, build camera frustums, pick a camera that frames the whole cloud, and keep the state
of the interactive viewer's keys — all testable without a display.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lift3d.errors import InputError
from lift3d.io.outputs import read_cameras, read_ply
from lift3d.palette import UNLABELLED_RGB, label_colors
from lift3d.types import LabelledCloud

COLOR_MODES = ("label", "rgb", "confidence")


@dataclass
class ViewCamera:
    """A pinhole camera: K (3, 3) pixel-index convention, cam_to_world (4, 4) OpenCV axes."""

    name: str
    K: np.ndarray
    cam_to_world: np.ndarray
    width: int
    height: int

    @property
    def world_to_cam(self) -> np.ndarray:
        R, t = self.cam_to_world[:3, :3], self.cam_to_world[:3, 3]
        out = np.eye(4)
        out[:3, :3], out[:3, 3] = R.T, -R.T @ t
        return out


@dataclass
class ViewScene:
    """A labelled cloud and the posed cameras of its frames (empty when only a PLY is given)."""

    cloud: LabelledCloud
    cameras: list[ViewCamera] = field(default_factory=list)
    source: Path | None = None

    def camera(self, name: str) -> ViewCamera:
        """The frame camera called ``name``; :class:`InputError` listing the names otherwise."""
        for cam in self.cameras:
            if cam.name == name:
                return cam
        names = ", ".join(c.name for c in self.cameras[:8]) or "none"
        raise InputError(f"no camera named {name!r}", self.source,
                         f"cameras.json has: {names}{' ...' if len(self.cameras) > 8 else ''}")


def load_view_scene(path: str | Path) -> ViewScene:
    """Read an output folder (cloud.ply + cameras.json) or a bare ``.ply``."""
    path = Path(path)
    if path.is_dir():
        ply = path / "cloud.ply"
        if not ply.is_file():
            raise InputError("no cloud.ply in this folder", path,
                             "pass an output folder of `lift3d segment` or a .ply file")
        cams = path / "cameras.json"
        cameras = _posed_cameras(read_cameras(cams)) if cams.is_file() else []
        return ViewScene(read_ply(ply), cameras, path)
    if path.suffix.lower() == ".ply" and path.is_file():
        return ViewScene(read_ply(path), [], path)
    raise InputError("not an output folder or a .ply file", path,
                     "pass an output folder of `lift3d segment` or a .ply file")


def _posed_cameras(frames: list[dict]) -> list[ViewCamera]:
    return [
        ViewCamera(f["name"], f["K"], f["cam_to_world"], int(f["width"]), int(f["height"]))
        for f in frames if f["K"] is not None and f["cam_to_world"] is not None
    ]


def point_colors(cloud: LabelledCloud, mode: str = "label") -> np.ndarray:
    """(N, 3) uint8 colour of each point: palette by label, the points' RGB, or confidence.

    confidence: viridis of ``label_conf`` in [0, 1]; unlabelled points stay grey.
    """
    if mode == "label":
        return label_colors(cloud.labels)
    if mode == "rgb":
        return np.ascontiguousarray(cloud.colors, dtype=np.uint8)
    if mode == "confidence":
        from matplotlib import colormaps

        lut = (colormaps["viridis"](np.linspace(0, 1, 256))[:, :3] * 255 + 0.5).astype(np.uint8)
        idx = np.clip(np.rint(cloud.label_conf * 255), 0, 255).astype(np.int64)
        out = lut[idx]
        out[cloud.labels <= 0] = UNLABELLED_RGB
        return out
    raise InputError(f"unknown colouring {mode!r}", fix=f"use one of {', '.join(COLOR_MODES)}")


@dataclass
class LegendEntry:
    label: int
    count: int
    rgb: tuple[int, int, int]


def legend(labels: np.ndarray) -> list[LegendEntry]:
    """Label IDs with their point counts and palette colours, most points first (0 last)."""
    ids, counts = np.unique(labels, return_counts=True)
    order = np.lexsort((ids, -counts, ids <= 0))
    cols = label_colors(ids)
    return [LegendEntry(int(ids[i]), int(counts[i]), tuple(int(c) for c in cols[i]))
            for i in order]


def format_legend(entries: list[LegendEntry], limit: int = 40) -> str:
    """Legend as terminal lines: a 24-bit coloured swatch, the ID and its point count."""
    lines = []
    for e in entries[:limit]:
        r, g, b = e.rgb
        name = "unlabelled" if e.label <= 0 else f"ID {e.label}"
        lines.append(f"\x1b[48;2;{r};{g};{b}m  \x1b[0m {name:>12} {e.count:>10,d} points")
    if len(entries) > limit:
        lines.append(f"  ... and {len(entries) - limit} more labels")
    return "\n".join(lines)


def frustum_lines(cam: ViewCamera, depth: float) -> tuple[np.ndarray, np.ndarray]:
    """A camera's frustum as line segments: ((5, 3) world points, (8, 2) int index pairs).

    Point 0 is the camera centre; points 1-4 are the image corners (pixel edges, -0.5 and
    W - 0.5 in the pixel-index convention) on the plane z = ``depth`` in front of it.
    """
    w, h = cam.width, cam.height
    corners = np.array([[-0.5, -0.5, 1], [w - 0.5, -0.5, 1], [w - 0.5, h - 0.5, 1],
                        [-0.5, h - 0.5, 1]], np.float64)
    rays = corners @ np.linalg.inv(cam.K).T * depth  # camera frame, z = depth
    pts_cam = np.vstack([np.zeros(3), rays])
    pts = pts_cam @ cam.cam_to_world[:3, :3].T + cam.cam_to_world[:3, 3]
    lines = np.array([[0, 1], [0, 2], [0, 3], [0, 4], [1, 2], [2, 3], [3, 4], [4, 1]])
    return pts, lines


def frustum_depth(scene: ViewScene) -> float:
    """A frustum size that reads well: a tenth of the extent of the cloud (1st-99th
    percentile box) and the camera centres together."""
    parts = [c.cam_to_world[None, :3, 3] for c in scene.cameras]
    if len(scene.cloud.points):
        parts.append(np.percentile(_sample(scene.cloud.points), [1, 99], axis=0))
    if not parts:
        return 0.1
    box = np.vstack(parts)
    return float(max(np.linalg.norm(box.max(0) - box.min(0)), 1e-6) * 0.1)


def _sample(points: np.ndarray, n: int = 200_000) -> np.ndarray:
    """At most n points, evenly strided, for robust statistics of big clouds."""
    step = max(1, len(points) // n)
    return points[::step]


def overview_camera(scene: ViewScene, width: int = 960, height: int = 720,
                    fov_deg: float = 50.0) -> ViewCamera:
    """A camera that frames the whole cloud.

    It looks along the frames' mean viewing direction (so the picture resembles the input
    views), with their mean up, from far enough that a sphere around the cloud's robust
    bounding box (1st-99th percentile) fits the field of view. Without frame cameras it looks
    along +z with -y up (OpenCV's identity orientation).
    """
    pts = _sample(scene.cloud.points.astype(np.float64))
    if len(pts) == 0:
        lo = hi = np.zeros(3)
    else:
        lo, hi = np.percentile(pts, [1, 99], axis=0)
    centre, radius = (lo + hi) / 2, max(np.linalg.norm(hi - lo) / 2, 1e-3)
    forward, down = np.array([0.0, 0, 1]), np.array([0.0, 1, 0])
    if scene.cameras:
        f = np.mean([c.cam_to_world[:3, 2] for c in scene.cameras], axis=0)
        d = np.mean([c.cam_to_world[:3, 1] for c in scene.cameras], axis=0)
        if np.linalg.norm(f) > 1e-6:
            forward = f / np.linalg.norm(f)
            down = d - forward * (d @ forward)
            if np.linalg.norm(down) < 1e-6:
                down = np.cross(forward, [1.0, 0, 0])
            down /= np.linalg.norm(down)
    right = np.cross(down, forward)
    focal = 0.5 * height / np.tan(np.radians(fov_deg) / 2)
    half_fov = np.arctan(0.5 * min(width, height) / focal)
    eye = centre - forward * radius / np.sin(half_fov)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = right, down, forward, eye
    K = np.array([[focal, 0, (width - 1) / 2], [0, focal, (height - 1) / 2], [0, 0, 1]])
    return ViewCamera("overview", K, c2w, width, height)


@dataclass
class ViewerState:
    """What the interactive viewer's keys change; the window only reads it.

    ids: sorted label IDs in the cloud (0 included when present); current: index into ids of
    the label that N/P step through; hidden: IDs not drawn; isolate: draw only the current one.
    """

    ids: np.ndarray
    mode: str = "label"
    current: int = 0
    hidden: set[int] = field(default_factory=set)
    isolate: bool = False
    point_size: float = 2.0

    @classmethod
    def for_cloud(cls, cloud: LabelledCloud, mode: str = "label",
                  point_size: float = 2.0) -> ViewerState:
        return cls(np.unique(cloud.labels), mode=mode, point_size=point_size)

    @property
    def current_id(self) -> int | None:
        return int(self.ids[self.current]) if len(self.ids) else None

    def cycle_mode(self) -> str:
        self.mode = COLOR_MODES[(COLOR_MODES.index(self.mode) + 1) % len(COLOR_MODES)]
        return self.mode

    def step(self, delta: int) -> int | None:
        if len(self.ids):
            self.current = (self.current + delta) % len(self.ids)
        return self.current_id

    def toggle_hidden(self) -> None:
        cid = self.current_id
        if cid is not None:
            self.hidden ^= {cid}

    def toggle_isolate(self) -> None:
        self.isolate = not self.isolate

    def show_all(self) -> None:
        self.hidden.clear()
        self.isolate = False

    def grow_points(self, factor: float) -> float:
        self.point_size = float(np.clip(self.point_size * factor, 1.0, 20.0))
        return self.point_size

    def visible(self, labels: np.ndarray) -> np.ndarray:
        """(N,) bool: which points the current state draws."""
        if self.isolate and self.current_id is not None:
            return labels == self.current_id
        if not self.hidden:
            return np.ones(labels.shape, bool)
        return ~np.isin(labels, np.fromiter(self.hidden, np.int64))
