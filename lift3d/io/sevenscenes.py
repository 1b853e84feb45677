"""Reader of the Microsoft 7-Scenes layout.

::

    sequence/
      camera-intrinsics.txt            optional 3x3 K (default fx = fy = 585, cx = 320, cy = 240)
      frames/frame-NNNNNN.color.jpg    colour (.png in the original release), 640x480
      frames/frame-NNNNNN.depth.png    uint16 depth, millimetres; 0 and 65535 = invalid
      frames/frame-NNNNNN.pose.txt     4x4 camera-to-world (OpenCV axes)

The reader accepts the sequence folder, the ``frames/`` folder itself, or an original 7-Scenes
``seq-XX/`` folder whose frame files sit directly inside it. ``camera-intrinsics.txt`` is
looked for beside the frames and one level up. Depth and colour come from different Kinect
sensors and are only approximately registered; they are used as if registered, as 7-Scenes
tools do.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lift3d.errors import InputError
from lift3d.io.common import (
    intrinsics_matrix,
    natural_key,
    progress_bar,
    read_intrinsics,
    read_pose,
    read_rgbd,
    require_dir,
    require_file,
    select_frames,
)
from lift3d.types import Frame, LazyFrames, Scene

DEPTH_SCALE = 1000.0
"""Raw depth units per metre (millimetres)."""

INVALID_DEPTH = (0, 65535)
"""Raw depth values that mean "no measurement"."""

DEFAULT_K = (585.0, 585.0, 320.0, 240.0)
"""(fx, fy, cx, cy) the 7-Scenes release documents for its 640x480 frames."""

INTRINSICS_FILE = "camera-intrinsics.txt"
COLOR_GLOBS = ("frame-*.color.jpg", "frame-*.color.png")


def frames_dir(path: Path) -> Path | None:
    """The folder that holds ``frame-*.color.*`` files: ``path/frames`` or ``path``; None if
    neither does."""
    for cand in (path / "frames", path):
        if cand.is_dir() and any(next(cand.glob(g), None) for g in COLOR_GLOBS):
            return cand
    return None


def load_sevenscenes(path: str | Path, stride: int = 1, max_frames: int | None = None,
                     progress: bool = False, lazy: bool = False) -> Scene:
    """Load a 7-Scenes sequence (layout in the module docstring) as a :class:`Scene` with
    layout ``"7scenes"``; frame names are ``frame-NNNNNN``; every ``stride``-th frame, at most
    ``max_frames``."""
    root = require_dir(path)
    fdir = frames_dir(root)
    if fdir is None:
        raise InputError("no frames/frame-*.color.jpg", root, "point at a 7-Scenes sequence")
    colors = sorted((p for g in COLOR_GLOBS for p in fdir.glob(g)),
                    key=lambda p: natural_key(p.name))
    K = _intrinsics(fdir)
    picked = select_frames(colors, stride, max_frames)

    def read(k: int) -> Frame:
        color_path = picked[k]
        name = color_path.name.split(".")[0]
        depth_path = require_file(fdir / f"{name}.depth.png", f"depth of {name}",
                                  "every frame needs its .depth.png")
        pose_path = require_file(fdir / f"{name}.pose.txt", f"pose of {name}",
                                 "every frame needs its .pose.txt")
        pose = read_pose(pose_path)
        if not np.isfinite(pose).all():
            raise InputError("pose holds NaN or inf", pose_path, "remove the frame")
        image, depth = read_rgbd(color_path, depth_path, DEPTH_SCALE, INVALID_DEPTH)
        return Frame(image=image, name=name, depth=depth, K=K.copy(), cam_to_world=pose,
                     path=color_path)

    if lazy:  # streamed: each frame read when a stage asks for it
        frames = LazyFrames([p.name.split(".")[0] for p in picked], read)
    else:
        frames = [read(k) for k in progress_bar(range(len(picked)), progress,
                                                f"reading {root.name}", len(picked))]
    return Scene(frames=frames, source=root, layout="7scenes")


def _intrinsics(fdir: Path) -> np.ndarray:
    """K from ``camera-intrinsics.txt`` beside the frames or one level up, else the default."""
    for cand in (fdir / INTRINSICS_FILE, fdir.parent / INTRINSICS_FILE):
        if cand.is_file():
            return read_intrinsics(cand)
    return intrinsics_matrix(*DEFAULT_K)
