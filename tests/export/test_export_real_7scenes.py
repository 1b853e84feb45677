"""COLMAP and nerfstudio exports of real 7-Scenes cameras round-trip to the same pixels."""

import json

import numpy as np
from _export_helpers import (
    colmap_project,
    nerfstudio_project,
    read_cameras_txt,
    read_images_txt,
    reference_pixels,
)

from lift3d.export import export
from lift3d.export.base import rigid_pose


def test_real_cameras_round_trip(real_out, tmp_path):
    out, cloud, K, poses, names, rgb, valid = real_out
    pts = cloud.points[::50].astype(np.float64)
    sparse = export(out, "colmap", tmp_path / "colmap")
    cams = read_cameras_txt(sparse / "cameras.txt")
    imgs = sorted(read_images_txt(sparse / "images.txt").values(), key=lambda m: m["name"])
    assert [m["name"] for m in imgs] == ["frame-000000_color.jpg", "frame-000025_color.jpg"]
    doc = json.loads(export(out, "nerfstudio", tmp_path / "ns").read_text())
    frames = sorted(doc["frames"], key=lambda f: f["file_path"])
    for img, frame, pose in zip(imgs, frames, poses, strict=True):
        # 7-Scenes rotations are orthonormal to ~1e-4 only: exact against the nearest rigid
        # pose (what any quaternion-based consumer can hold), within 0.05 px of the raw one
        ref, _ = reference_pixels(pts, K, rigid_pose(pose))
        raw, _ = reference_pixels(pts, K, pose)
        for uv in (colmap_project(pts, cams[img["camera_id"]], img)[0],
                   nerfstudio_project(pts, frame)[0]):
            assert np.abs(uv - 0.5 - ref).max() < 1e-3
            assert np.abs(uv - 0.5 - raw).max() < 0.05
    # frame 0's own points land on the pixels they came from
    v, u = np.nonzero(valid)
    uv, _ = colmap_project(cloud.points.astype(np.float64), cams[imgs[0]["camera_id"]], imgs[0])
    assert np.abs(uv - 0.5 - np.stack([u, v], 1)).max() < 0.05
