"""What every exporter shares: reading lift3d's output folder and converting camera conventions.

lift3d's cameras (``cameras.json``) are OpenCV: x right, y down, z forward, poses
camera-to-world, and ``K`` maps a camera point to *pixel indices* — the centre of the top-left
pixel is (0, 0). The consumers differ from that in two explicit ways:

* Pixel centres: COLMAP, gsplat and nerfstudio put the centre of the top-left pixel at
  (0.5, 0.5) (nerfstudio casts rays through ``pixel index + 0.5``), so their principal point is
  ``cx + 0.5, cy + 0.5``. Focal lengths are the same.
* Axes: COLMAP stores world-to-camera (quaternion + translation) in OpenCV axes; nerfstudio
  stores camera-to-world in OpenGL axes (x right, y up, z backward), i.e. the OpenCV pose with
  its y and z columns negated.

Each conversion is one function here, and the tests round-trip every exporter through them.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np

# camera maths has one home (lift3d/cameras.py); these are the names the exporters use
from lift3d.cameras import (  # noqa: F401
    OPENCV_TO_OPENGL,
    opencv_to_opengl_pose,
    opengl_to_opencv_pose,
)
from lift3d.cameras import invert_pose as world_to_camera  # noqa: F401
from lift3d.cameras import project_world_to_cam as project  # noqa: F401
from lift3d.cameras import quat_to_rotmat as qvec_to_rotmat  # noqa: F401
from lift3d.cameras import rotmat_to_quat as rotmat_to_qvec  # noqa: F401
from lift3d.errors import InputError
from lift3d.io.outputs import read_cameras, read_label_png, read_ply
from lift3d.types import LabelledCloud

PIXEL_CENTRE_SHIFT = 0.5
"""Add to a lift3d principal point (pixel-index convention) to get COLMAP's / nerfstudio's."""


@dataclass
class ExportFrame:
    """One posed frame of an output folder.

    name: lift3d frame name; stem: safe file stem used in the export (see :func:`safe_stem`);
    image: source image path; width, height: pixels; K: (3, 3) float64, pixel-index convention;
    cam_to_world: (4, 4) float64, OpenCV axes; labels: path of ``labels/<name>.png`` or None.
    """

    name: str
    stem: str
    image: Path
    width: int
    height: int
    K: np.ndarray
    cam_to_world: np.ndarray
    labels: Path | None


@dataclass
class OutputFolder:
    """The parts of ``lift3d segment``'s output folder that exporters read."""

    root: Path
    cloud: LabelledCloud
    frames: list[ExportFrame]


def safe_stem(name: str) -> str:
    """File stem a consumer cannot misread: dots and path separators become ``_``.

    3D Gaussian splatting and Gaussian Grouping name a view ``basename.split(".")[0]``, so a
    lift3d frame called ``frame-000000.color`` would look up ``frame-000000.png`` masks.
    """
    return re.sub(r"[^A-Za-z0-9_\-]", "_", name)


def load_output(out_dir: str | Path, need_cameras: bool = True) -> OutputFolder:
    """Read ``cloud.ply`` and ``cameras.json`` (with label paths) from an output folder.

    need_cameras: raise :class:`InputError` when a frame has no K, pose or image, since every
    multi-view export needs them.
    """
    root = Path(out_dir)
    ply = root / "cloud.ply"
    if not ply.is_file():
        raise InputError("no cloud.ply in this folder", root,
                         "pass the output folder written by `lift3d segment`")
    cloud = read_ply(ply)
    if not need_cameras:
        return OutputFolder(root, cloud, [])
    cams_path = root / "cameras.json"
    if not cams_path.is_file():
        raise InputError("no cameras.json in this folder", root,
                         "pass the output folder written by `lift3d segment`")
    frames = [_export_frame(root, cams_path, f) for f in read_cameras(cams_path)]
    stems = [f.stem for f in frames]
    if len(set(stems)) != len(stems):
        raise InputError("frame names collide once made file-safe", cams_path,
                         "rename the input frames so their names differ in letters or digits")
    return OutputFolder(root, cloud, frames)


def _export_frame(root: Path, cams_path: Path, f: dict) -> ExportFrame:
    name = f["name"]
    missing = [k for k in ("K", "cam_to_world", "image") if f.get(k) is None]
    if missing:
        raise InputError(f"frame {name!r} has no {', '.join(missing)}", cams_path,
                         "exports need posed, calibrated frames; run with a geometry backend "
                         "that estimates cameras (rgbd or mast3r)")
    image = Path(f["image"])
    if not image.is_file():
        raise InputError(f"source image of frame {name!r} is missing", image,
                         "exports copy the source images; keep the scene folder in place")
    labels = root / "labels" / f"{name}.png"
    return ExportFrame(
        name=name, stem=safe_stem(name), image=image, width=int(f["width"]),
        height=int(f["height"]), K=np.asarray(f["K"], np.float64),
        cam_to_world=rigid_pose(f["cam_to_world"]),
        labels=labels if labels.is_file() else None,
    )


def read_frame_labels(frame: ExportFrame) -> np.ndarray:
    """(H, W) int32 ID map of a frame; zeros when the folder has no label PNG for it."""
    if frame.labels is None:
        return np.zeros((frame.height, frame.width), np.int32)
    return read_label_png(frame.labels)


def copy_images(frames: list[ExportFrame], dest_dir: Path) -> list[str]:
    """Copy each frame's source image to ``dest_dir/<stem><suffix>``; returns the file names."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    names = []
    for f in frames:
        fname = f.stem + f.image.suffix.lower()
        shutil.copyfile(f.image, dest_dir / fname)
        names.append(fname)
    return names


def rigid_pose(cam_to_world: np.ndarray) -> np.ndarray:
    """The nearest rigid pose: rotation block replaced by its closest rotation (SVD).

    Poses read from text files are rotations only to their printed precision (7-Scenes':
    |R^T R - I| ~ 1e-4, 0.02 px at 585 px focal); a quaternion can only hold a rotation, so
    every exporter writes this rigid pose and its round trip is exact against it.
    """
    T = np.array(cam_to_world, np.float64)
    U, _, Vt = np.linalg.svd(T[:3, :3])
    R = U @ Vt
    if np.linalg.det(R) < 0:
        raise InputError("camera pose has a reflection (det R < 0), not a rotation")
    T[:3, :3] = R
    T[3] = [0.0, 0.0, 0.0, 1.0]
    return T


def pinhole_params(K: np.ndarray) -> tuple[float, float, float, float]:
    """lift3d K (pixel-index convention) -> (fx, fy, cx, cy) with pixel centres at +0.5."""
    K = np.asarray(K, np.float64)
    if abs(K[0, 1]) > 1e-9:
        raise InputError(f"camera has skew {K[0, 1]}; PINHOLE cameras cannot express it")
    return (float(K[0, 0]), float(K[1, 1]), float(K[0, 2]) + PIXEL_CENTRE_SHIFT,
            float(K[1, 2]) + PIXEL_CENTRE_SHIFT)
