"""The COLMAP export read by COLMAP itself (pycolmap, the official bindings), when installed:
its own projection of the cloud lands on lift3d's pixels, half a pixel apart by convention."""

import numpy as np
import pytest
from _export_helpers import reference_pixels

from lift3d.export import export

pycolmap = pytest.importorskip("pycolmap", reason="pycolmap (dev extra) reads COLMAP models")


def test_pycolmap_reads_the_model_and_projects_onto_the_same_pixels(synthetic_out, tmp_path):
    sparse = export(synthetic_out.root, "colmap", tmp_path / "colmap")
    rec = pycolmap.Reconstruction(str(sparse))
    assert len(rec.images) == len(synthetic_out.names)
    assert len(rec.points3D) == len(synthetic_out.cloud)
    pts = synthetic_out.cloud.points[::20].astype(np.float64)
    by_name = {img.name: img for img in rec.images.values()}
    for name, pose in zip(synthetic_out.names, synthetic_out.poses, strict=True):
        img = by_name[name.replace(".", "_") + ".png"]
        cam = rec.cameras[img.camera_id]
        assert cam.model_name == "PINHOLE"
        # a property up to pycolmap 3.11, a method since the rigs/frames API (3.12+)
        cfw = img.cam_from_world() if callable(img.cam_from_world) else img.cam_from_world
        M = cfw.matrix()
        uv = cam.img_from_cam(pts @ M[:, :3].T + M[:, 3])
        ref, _ = reference_pixels(pts, synthetic_out.K, pose)
        assert np.abs(uv - 0.5 - ref).max() < 1e-3
        np.testing.assert_allclose(img.projection_center(), pose[:3, 3], atol=1e-9)
    p = rec.points3D[1]
    np.testing.assert_allclose(p.xyz, synthetic_out.cloud.points[0], atol=1e-6)
    np.testing.assert_array_equal(p.color, synthetic_out.cloud.colors[0])
