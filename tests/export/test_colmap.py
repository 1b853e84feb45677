"""COLMAP export read back in COLMAP's conventions: the cloud re-projects onto the same pixels."""

import cv2
import numpy as np
from _colmap_reader import (
    colmap_project,
    read_cameras_txt,
    read_images_txt,
    read_points3d_txt,
)
from _reference import reference_pixels
from plyfile import PlyData

from lift3d.export import export


def check_colmap_model(dest, synthetic_out):
    """Shared with the Gaussian Grouping test: layout, cameras, round trip of every point."""
    sparse = dest / "sparse" / "0"
    cams = read_cameras_txt(sparse / "cameras.txt")
    imgs = read_images_txt(sparse / "images.txt")
    assert len(imgs) == len(synthetic_out.names) == len(cams)
    pts = synthetic_out.cloud.points.astype(np.float64)
    by_name = {}
    for img, name, pose in zip(
            sorted(imgs.values(), key=lambda m: m["name"]), synthetic_out.names,
            synthetic_out.poses, strict=True):
        cam = cams[img["camera_id"]]
        assert cam["model"] == "PINHOLE"
        assert (cam["width"], cam["height"]) == (synthetic_out.width, synthetic_out.height)
        assert img["name"] == name.replace(".", "_") + ".png"
        picture = cv2.imread(str(dest / "images" / img["name"]))
        assert picture is not None and picture.shape == (synthetic_out.height,
                                                         synthetic_out.width, 3)
        uv_colmap, z = colmap_project(pts, cam, img)
        uv_ref, z_ref = reference_pixels(pts, synthetic_out.K, pose)
        # COLMAP's top-left pixel centre is (0.5, 0.5); lift3d's is (0, 0)
        assert np.abs(uv_colmap - 0.5 - uv_ref).max() < 1e-3
        np.testing.assert_allclose(z, z_ref, atol=1e-9)
        by_name[img["name"]] = img
    return sparse, by_name


def test_colmap_round_trip(synthetic_out, tmp_path):
    sparse = export(synthetic_out.root, "colmap", tmp_path / "colmap")
    assert sparse == tmp_path / "colmap" / "sparse" / "0"
    check_colmap_model(tmp_path / "colmap", synthetic_out)

    xyz, rgb = read_points3d_txt(sparse / "points3D.txt")
    np.testing.assert_allclose(xyz, synthetic_out.cloud.points, atol=1e-6)
    np.testing.assert_array_equal(rgb, synthetic_out.cloud.colors)
    # 3DGS loads sparse/0/points3D.ply first when it exists
    v = PlyData.read(str(sparse / "points3D.ply"))["vertex"]
    np.testing.assert_array_equal(v["label"], synthetic_out.cloud.labels)


def test_export_cmd_notes_off_centre_principal_points(synthetic_out, tmp_path, capsys):
    from lift3d.export import export_cmd, principal_point_offset

    # synthetic K: cx = 81.3 in a 160-wide image (centre 79.5), cy = 58.7 (centre 59.5)
    assert abs(principal_point_offset(synthetic_out.root / "cameras.json")
               - np.hypot(1.8, 0.8)) < 1e-9
    export_cmd(synthetic_out.root, "colmap", tmp_path / "c")
    printed = capsys.readouterr().out
    assert "wrote colmap" in printed and "2.0 px off the image centre" in printed
