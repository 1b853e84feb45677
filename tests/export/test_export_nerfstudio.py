"""nerfstudio export read back in nerfstudio's conventions (OpenGL camera-to-world, rays
through pixel index + 0.5): the cloud re-projects onto the same pixels."""

import json

import cv2
import numpy as np
import open3d as o3d
from _export_helpers import nerfstudio_project, reference_pixels

from lift3d.export import export
from lift3d.export.nerfstudio import export_nerfstudio
from lift3d.io.outputs import read_label_png


def test_nerfstudio_round_trip(synthetic_out, tmp_path):
    dest = tmp_path / "ns"
    path = export(synthetic_out.root, "nerfstudio", dest)
    doc = json.loads(path.read_text())
    assert doc["camera_model"] == "OPENCV"
    frames = sorted(doc["frames"], key=lambda f: f["file_path"])
    pts = synthetic_out.cloud.points.astype(np.float64)
    for f, pose in zip(frames, synthetic_out.poses, strict=True):
        assert (f["w"], f["h"]) == (synthetic_out.width, synthetic_out.height)
        assert cv2.imread(str(dest / f["file_path"])) is not None
        assert "mask_path" not in f
        uv, depth = nerfstudio_project(pts, f)
        uv_ref, z_ref = reference_pixels(pts, synthetic_out.K, pose)
        assert np.abs(uv - 0.5 - uv_ref).max() < 1e-3
        np.testing.assert_allclose(depth, z_ref, atol=1e-9)
        assert cv2.imread(str(dest / f["object_mask_path"]), cv2.IMREAD_UNCHANGED) is not None
    pc = o3d.io.read_point_cloud(str(dest / doc["ply_file_path"]))
    np.testing.assert_allclose(np.asarray(pc.points), synthetic_out.cloud.points, atol=1e-6)
    np.testing.assert_allclose(np.asarray(pc.colors) * 255, synthetic_out.cloud.colors, atol=1e-3)


def test_nerfstudio_masks_keep_labelled_pixels(synthetic_out, tmp_path):
    path = export_nerfstudio(synthetic_out.root, tmp_path / "ns", masks=True)
    doc = json.loads(path.read_text())
    for f, name in zip(sorted(doc["frames"], key=lambda f: f["file_path"]),
                       synthetic_out.names, strict=True):
        mask = cv2.imread(str(path.parent / f["mask_path"]), cv2.IMREAD_UNCHANGED)
        labels = read_label_png(synthetic_out.root / "labels" / f"{name}.png")
        np.testing.assert_array_equal(mask > 0, labels > 0)
        assert set(np.unique(mask)) <= {0, 255}
