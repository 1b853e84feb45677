"""Headless renders of a labelled cloud to PNG, for reports and tests (no display needed).

Two backends draw the same picture — the cloud coloured by label / RGB / confidence, the
frames' camera frustums, and a legend of the largest labels:

* ``open3d``: Open3D's offscreen Filament renderer. Open3D 0.20 drives Filament through
  Vulkan, so a machine with neither GPU nor display needs a software Vulkan driver: Mesa's
  lavapipe (Debian/Ubuntu packages ``libvulkan1 mesa-vulkan-drivers``, which
  ``scripts/setup.sh`` installs). Post-processing (tone mapping) is switched off so the
  palette colours come out exact.
* ``numpy``: a point splatting z-buffer in numpy: each point is a disk of ``point_size``
  pixels, nearest wins. Exact and deterministic, needs nothing but numpy; the fallback when
  Open3D cannot start a renderer (and what the picture tests check pixel for pixel).

``backend="auto"`` uses Open3D when it can start (probed once, in a child process) and numpy
otherwise, saying so on stderr; on a software Vulkan device it also takes numpy for clouds
above ``software_vulkan_max_points``, where lavapipe is several times slower.
"""

from __future__ import annotations

import functools
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lift3d.errors import BackendUnavailable
from lift3d.io.atomic import write_with
from viewers.scene import (
    ViewCamera,
    ViewScene,
    format_legend,
    frustum_depth,
    frustum_lines,
    legend,
    load_view_scene,
    overview_camera,
    point_colors,
)

BACKENDS = ("auto", "open3d", "numpy")
LEGEND_MIN_SIZE = 300
"""Smaller pictures (a frame camera of a small video) get no legend: it would hide the scene."""


@dataclass(frozen=True)
class RenderConfig:
    """How a headless render looks."""

    color_by: str = "label"
    """label (palette), rgb (the points' colours) or confidence (viridis of label_conf)."""
    point_size: float = 2.0
    """Diameter of a point on screen, pixels."""
    width: int = 960
    """Picture width for the overview camera; a frame camera keeps its own size."""
    height: int = 720
    """Picture height for the overview camera."""
    background: tuple[int, int, int] = (255, 255, 255)
    """RGB of pixels no point covers."""
    frustums: bool = True
    """Draw the frames' cameras as frustums."""
    frustum_rgb: tuple[int, int, int] = (40, 40, 40)
    """RGB of the frustum lines."""
    legend: bool = True
    """Draw a legend of the largest labels (label colouring only) in the top-left corner of
    pictures at least :data:`LEGEND_MIN_SIZE` pixels on their short side."""
    legend_rows: int = 12
    """Most labels listed in the legend."""
    backend: str = "auto"
    """auto, open3d or numpy (see the module docstring)."""
    software_vulkan_max_points: int = 1_000_000
    """auto renders bigger clouds with numpy when Open3D's Vulkan device is a CPU (lavapipe)."""


def render_scene(scene: ViewScene, camera: ViewCamera | None = None,
                 cfg: RenderConfig = RenderConfig()) -> np.ndarray:
    """Render ``scene`` from ``camera`` (default: :func:`overview_camera`).

    Returns (H, W, 3) uint8 RGB.
    """
    cam = camera if camera is not None else overview_camera(scene, cfg.width, cfg.height)
    colors = point_colors(scene.cloud, cfg.color_by)
    segments = _frustum_segments(scene, cam) if cfg.frustums else np.zeros((0, 2, 3))
    backend = cfg.backend
    if backend == "auto":
        backend = _auto_backend(len(scene.cloud), cfg)
    if backend == "open3d":
        img = render_open3d(scene.cloud.points, colors, segments, cam, cfg)
    elif backend == "numpy":
        img = render_numpy(scene.cloud.points, colors, segments, cam, cfg)
    else:
        raise ValueError(f"unknown render backend {backend!r}; use one of {BACKENDS}")
    if cfg.legend and cfg.color_by == "label" and min(img.shape[:2]) >= LEGEND_MIN_SIZE:
        draw_legend(img, scene.cloud.labels, cfg.legend_rows)
    return img


def _auto_backend(n_points: int, cfg: RenderConfig) -> str:
    """Open3D when it can start, except for big clouds on a software Vulkan device, where the
    numpy splatter is several times faster (5M points: 4 s vs 34 s on 2 loaded CPU cores)."""
    why_not = open3d_offscreen_problem()
    if why_not is not None:
        print(f"lift3d view: Open3D offscreen rendering unavailable ({why_not}); "
              "rendering with numpy instead", file=sys.stderr)
        return "numpy"
    if n_points > cfg.software_vulkan_max_points and open3d_device_is_software():
        return "numpy"
    return "open3d"


def _frustum_segments(scene: ViewScene, cam: ViewCamera) -> np.ndarray:
    """(S, 2, 3) world segments of every frame's frustum except the one we look through."""
    depth = frustum_depth(scene)
    segs = []
    for c in scene.cameras:
        if c.name == cam.name and np.allclose(c.cam_to_world, cam.cam_to_world):
            continue
        pts, lines = frustum_lines(c, depth)
        segs.append(pts[lines])
    return np.concatenate(segs) if segs else np.zeros((0, 2, 3))


def render_numpy(points: np.ndarray, colors: np.ndarray, segments: np.ndarray,
                 cam: ViewCamera, cfg: RenderConfig) -> np.ndarray:
    """Point splatting with a z-buffer.

    points: (N, 3) world; colors: (N, 3) uint8; segments: (S, 2, 3) world line segments.
    A point whose centre projects to pixel (round(u), round(v)) covers the pixels within
    ``point_size / 2`` of it; at every pixel the nearest cover wins. Lines are sampled densely
    and drawn one pixel wide under the same depth test. Returns (H, W, 3) uint8.
    """
    w, h = cam.width, cam.height
    w2c = cam.world_to_cam
    radius = cfg.point_size / 2
    r = int(np.floor(radius))
    dy, dx = np.mgrid[-r:r + 1, -r:r + 1]
    disk = (dx ** 2 + dy ** 2) <= max(radius, 0.5) ** 2
    offsets = np.stack([dx[disk], dy[disk]], 1)

    pix, z, idx = _nearest_per_pixel(points, cam.K, w2c, w, h, margin=r)
    cand_pix = (pix[:, None, :] + offsets[None]).reshape(-1, 2)
    cand_z = np.repeat(z, len(offsets))
    cand_col = np.repeat(colors[idx], len(offsets), axis=0)

    if len(segments):
        line_pts, line_col = _sample_segments(segments, cam, cfg.frustum_rgb)
        lpix, lz, lidx = _nearest_per_pixel(line_pts, cam.K, w2c, w, h, margin=0)
        cand_pix = np.vstack([cand_pix, lpix])
        cand_z = np.concatenate([cand_z, lz])
        cand_col = np.vstack([cand_col, line_col[lidx]])

    inside = (cand_pix[:, 0] >= 0) & (cand_pix[:, 0] < w) & (cand_pix[:, 1] >= 0) \
        & (cand_pix[:, 1] < h)
    flat = cand_pix[inside, 1] * w + cand_pix[inside, 0]
    win_flat, win = _first_per_key(flat, cand_z[inside])
    img = np.empty((h * w, 3), np.uint8)
    img[:] = cfg.background
    img[win_flat] = cand_col[inside][win]
    return img.reshape(h, w, 3)


def _nearest_per_pixel(points, K, w2c, w, h, margin):
    """Project points; keep the nearest one per integer pixel (pixels up to ``margin`` outside
    the image kept too). Returns ((M, 2) int64 pixel, (M,) z, (M,) index into points)."""
    # einsum, not @: an (N, 3) x (3, 3) product gains nothing from BLAS threads, and on a
    # loaded machine their contention made it 10x slower (4 s for 5M points)
    P = np.einsum("ij,nj->ni", w2c[:3, :3], np.asarray(points, np.float64)) + w2c[:3, 3]
    z = P[:, 2]
    front = np.flatnonzero(z > 1e-6)
    q = np.einsum("ij,nj->ni", K, P[front])
    uv = np.rint(q[:, :2] / q[:, 2:3])
    ok = (uv[:, 0] >= -margin) & (uv[:, 0] < w + margin) & (uv[:, 1] >= -margin) \
        & (uv[:, 1] < h + margin)
    front, uv = front[ok], uv[ok].astype(np.int64)
    key = (uv[:, 1] + margin) * (w + 2 * margin) + (uv[:, 0] + margin)
    _, win = _first_per_key(key, z[front])
    return uv[win], z[front][win], front[win]


def _first_per_key(key: np.ndarray, z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """For each distinct key (0 <= key < 2**31), the position of its smallest z (z > 0).

    One argsort of ``key << 32 | bits(float32 z)``: the bit pattern of a positive float32
    grows with its value, so this orders by key then depth, 3-4x faster than np.lexsort on
    millions of points. Returns (keys, positions).
    """
    zbits = np.asarray(z, np.float32).view(np.uint32).astype(np.int64)
    order = np.argsort((np.asarray(key, np.int64) << 32) | zbits)
    k = key[order]
    first = np.ones(len(k), bool)
    first[1:] = k[1:] != k[:-1]
    return k[first], order[first]


def _sample_segments(segments: np.ndarray, cam: ViewCamera, rgb) -> tuple[np.ndarray,
                                                                         np.ndarray]:
    """Points along each segment, about two per pixel of its on-screen length."""
    n = max(2, int(2 * (cam.width + cam.height)))
    t = np.linspace(0.0, 1.0, n)[None, :, None]
    pts = (segments[:, :1] * (1 - t) + segments[:, 1:] * t).reshape(-1, 3)
    return pts, np.tile(np.asarray(rgb, np.uint8), (len(pts), 1))


_PROBE = """
import open3d.visualization.rendering as r
r.OffscreenRenderer(16, 16).render_to_image()
"""


def open3d_offscreen_problem() -> str | None:
    """None when Open3D can render offscreen here, else why not (one line); see
    :func:`_probe_open3d`."""
    return _probe_open3d()[0]


def open3d_device_is_software() -> bool:
    """True when Open3D's renderer runs on a CPU Vulkan device (Mesa llvmpipe / lavapipe)."""
    return _probe_open3d()[1]


@functools.lru_cache(maxsize=1)
def _probe_open3d() -> tuple[str | None, bool]:
    """(why Open3D cannot render offscreen here or None, whether its device is software).

    Probed in a child process: where a Vulkan loader exists but no driver works, Filament
    aborts the whole process (uncatchable ``utils::PostconditionPanic``), so the first try
    must not be ours. Costs one or two seconds, once per process.
    """
    try:
        res = subprocess.run([sys.executable, "-c", _PROBE], capture_output=True, text=True,
                             timeout=120)
    except subprocess.TimeoutExpired:
        return "the renderer did not start within 120 s", False
    log = (res.stdout or "") + (res.stderr or "")
    if res.returncode == 0:
        return None, "llvmpipe" in log or "lavapipe" in log
    lines = [ln for ln in (res.stderr or "").splitlines() if ln.strip()]
    reason = next((ln for ln in lines if "reason" in ln or "Error" in ln), None)
    reason = reason or (lines[-1] if lines else f"exit code {res.returncode}")
    return (f"{reason.strip()[:200]}; install a software Vulkan driver: apt-get install "
            "libvulkan1 mesa-vulkan-drivers (scripts/setup.sh does)"), False


def render_open3d(points: np.ndarray, colors: np.ndarray, segments: np.ndarray,
                  cam: ViewCamera, cfg: RenderConfig) -> np.ndarray:
    """The same picture with Open3D's offscreen renderer. Raises
    :class:`BackendUnavailable` when :func:`open3d_offscreen_problem` finds it cannot start
    (starting it anyway could abort the process)."""
    import open3d as o3d

    problem = open3d_offscreen_problem()
    if problem is not None:
        raise BackendUnavailable(f"Open3D offscreen renderer unavailable: {problem}")
    rendering = o3d.visualization.rendering
    renderer = rendering.OffscreenRenderer(cam.width, cam.height)
    scene = renderer.scene
    scene.set_background([*(np.asarray(cfg.background) / 255.0), 1.0])
    scene.view.set_post_processing(False)  # no tone mapping: palette colours stay exact
    pc = o3d.geometry.PointCloud(o3d.utility.Vector3dVector(np.asarray(points, np.float64)))
    pc.colors = o3d.utility.Vector3dVector(colors.astype(np.float64) / 255.0)
    mat = rendering.MaterialRecord()
    mat.shader = "defaultUnlit"
    mat.point_size = float(cfg.point_size)
    scene.add_geometry("cloud", pc, mat)
    if len(segments):
        ls = o3d.geometry.LineSet(
            o3d.utility.Vector3dVector(segments.reshape(-1, 3)),
            o3d.utility.Vector2iVector(np.arange(2 * len(segments)).reshape(-1, 2)))
        ls.paint_uniform_color(np.asarray(cfg.frustum_rgb) / 255.0)
        lmat = rendering.MaterialRecord()
        lmat.shader = "unlitLine"
        lmat.line_width = 1.0
        scene.add_geometry("frustums", ls, lmat)
    # Open3D builds its projection from K with OpenGL pixel centres (top-left at 0.5, 0.5);
    # lift3d's K puts it at (0, 0). Without the shift every point lands half a pixel off
    # (checked on real 7-Scenes frames: 60% of pixels right without it, 100% with it).
    K_gl = np.array(cam.K, np.float64)
    K_gl[:2, 2] += 0.5
    near, far = _depth_range(points, cam)
    renderer.setup_camera(K_gl, cam.world_to_cam, cam.width, cam.height)
    scene.camera.set_projection(K_gl, near, far, cam.width, cam.height)
    img = np.asarray(renderer.render_to_image()).copy()
    del renderer
    return img[:, :, :3]


def _depth_range(points: np.ndarray, cam: ViewCamera) -> tuple[float, float]:
    """Near and far planes that hold the whole cloud in front of the camera."""
    w2c = cam.world_to_cam
    z = np.asarray(points[::max(1, len(points) // 100_000)], np.float64) @ w2c[2, :3] + w2c[2, 3]
    z = z[z > 0]
    far = float(z.max() * 2) if len(z) else 100.0
    return max(far * 1e-4, 1e-3), far


def draw_legend(img: np.ndarray, labels: np.ndarray, rows: int) -> None:
    """Draw swatches with 'ID: count' for the ``rows`` largest labels in the top-left corner."""
    import cv2

    entries = [e for e in legend(labels) if e.label > 0][:rows]
    if not entries:
        return
    scale, step, box_w = _legend_metrics(img.shape)
    box = ((4, 4), (4 + box_w, 8 + step * len(entries)))
    cv2.rectangle(img, *box, (255, 255, 255), -1)
    cv2.rectangle(img, *box, (120, 120, 120), 1)
    for i, e in enumerate(entries):
        y = 8 + i * step
        cv2.rectangle(img, (10, y + 2), (10 + step - 6, y + step - 4), e.rgb, -1)
        cv2.putText(img, f"{e.label}: {e.count:,}", (10 + step, y + step - 6),
                    cv2.FONT_HERSHEY_SIMPLEX, scale, (0, 0, 0), 1, cv2.LINE_AA)


def _legend_metrics(shape: tuple[int, ...]) -> tuple[float, int, int]:
    """(font scale, row height px, box width px) for a picture of this shape."""
    scale = max(0.35, shape[0] / 1400)
    return scale, int(44 * scale), int(380 * scale)


def legend_box(img_shape: tuple[int, ...], n_rows: int) -> tuple[int, int]:
    """(width, height) in pixels of what :func:`draw_legend` covers with ``n_rows`` rows."""
    _, step, box_w = _legend_metrics(img_shape)
    return 5 + box_w, 9 + step * n_rows


def save_png(path: str | Path, img: np.ndarray) -> Path:
    """Write an (H, W, 3) uint8 RGB picture as PNG, atomically."""
    import cv2

    def _write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(img[:, :, ::-1])):
            raise OSError(f"could not write {tmp}")

    path = Path(path)
    write_with(path, _write)
    return path


def render_png(path_in: str | Path, dest: str | Path, camera: str | None = None,
               cfg: RenderConfig = RenderConfig()) -> Path:
    """Render an output folder (or .ply) to ``dest`` PNG, from frame ``camera`` or an overview.

    Prints the legend to stdout. Returns ``dest``.
    """
    scene = load_view_scene(path_in)
    cam = scene.camera(camera) if camera else None
    img = render_scene(scene, cam, cfg)
    if cfg.color_by == "label":
        print(format_legend(legend(scene.cloud.labels), limit=cfg.legend_rows))
    return save_png(dest, img)
