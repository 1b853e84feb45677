"""``lift3d export OUT --to nerfstudio``: transforms.json, images/ and the cloud as initial points.

nerfstudio's ``nerfstudio-data`` parser reads ``transforms.json``: per-frame ``file_path``,
``transform_matrix`` (camera-to-world, OpenGL axes: x right, y up, z backward), and
intrinsics ``fl_x, fl_y, cx, cy, w, h`` either at the top level or per frame (written per
frame here, so frames may differ); ``camera_model``; optional per-frame ``mask_path`` (pixels
that are 0 are left out of training); and ``ply_file_path``, read with Open3D as the initial
points of splatfacto. Its rays pass through ``pixel index + 0.5``, so cx, cy move by +0.5 px.

Also written: ``object_mask/<stem>.png`` ID maps (the Gaussian Grouping numbering, one table
for all views) named per frame by ``object_mask_path`` — nerfstudio ignores the key; grouping
methods built on nerfstudio read it. ``mask_path`` is written only when asked
(``masks=True``): then pixels without a label are masked out of training.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lift3d.export.base import (
    copy_images,
    load_output,
    opencv_to_opengl_pose,
    pinhole_params,
    read_frame_labels,
)
from lift3d.export.gaussian_grouping import _imwrite, write_object_masks
from lift3d.io.atomic import write_json, write_with
from lift3d.io.outputs import write_ply

PLY_NAME = "sparse_pc.ply"  # the name ns-process-data gives its initial points


def export_nerfstudio(out_dir: str | Path, dest: str | Path, masks: bool = False) -> Path:
    """Write transforms.json, images/, object_mask/ and sparse_pc.ply into ``dest``.

    masks: also write binary ``masks/<stem>.png`` (255 where a pixel is labelled) and point
    each frame's ``mask_path`` at it. Returns the path of transforms.json.
    """
    out = load_output(out_dir)
    dest = Path(dest)
    names = copy_images(out.frames, dest / "images")
    write_object_masks(out, dest)
    write_ply(dest / PLY_NAME, out.cloud)
    frames = []
    for f, name in zip(out.frames, names, strict=True):
        fx, fy, cx, cy = pinhole_params(f.K)
        entry = {
            "file_path": f"images/{name}",
            "transform_matrix": opencv_to_opengl_pose(f.cam_to_world).tolist(),
            "fl_x": fx, "fl_y": fy, "cx": cx, "cy": cy, "w": f.width, "h": f.height,
            "object_mask_path": f"object_mask/{f.stem}.png",
        }
        if masks:
            keep = np.where(read_frame_labels(f) > 0, 255, 0).astype(np.uint8)
            write_with(dest / "masks" / f"{f.stem}.png", lambda tmp, a=keep: _imwrite(tmp, a))
            entry["mask_path"] = f"masks/{f.stem}.png"
        frames.append(entry)
    doc = {"camera_model": "OPENCV", "ply_file_path": PLY_NAME, "frames": frames}
    path = dest / "transforms.json"
    write_json(path, doc)
    return path
