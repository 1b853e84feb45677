"""ScanNet export reader, on small plane scenes the tests write (conftest.make_scannet)."""

from __future__ import annotations

import numpy as np
import pytest
from _io_scenes import PLANE_Z, backproject, make_scannet, write_matrix, write_rgb, write_u16

from lift3d.errors import InputError
from lift3d.io import detect_layout, load_scene


def test_loads_frames_in_numeric_order_with_geometry(scannet_dir):
    root, truth = scannet_dir
    assert detect_layout(root) == "scannet"
    scene = load_scene(root)
    assert scene.layout == "scannet" and scene.source == root
    assert scene.names == ["0", "1", "2", "10"]  # numeric, not "10" before "2"
    for f in scene.frames:
        i = int(f.name)
        assert f.image.shape == (48, 64, 3) and f.image.dtype == np.uint8
        assert f.depth.dtype == np.float32 and f.K.dtype == np.float64
        np.testing.assert_allclose(f.K, truth["K_color"])
        np.testing.assert_allclose(f.cam_to_world, truth["poses"][i])
        np.testing.assert_allclose(f.depth, truth["depths"][i], atol=6e-4)  # mm rounding
        # depth + K + pose put every pixel back on the plane the scene was rendered from
        pts = backproject(f.depth, f.K, f.cam_to_world)
        assert np.abs(pts[:, 2] - PLANE_Z).max() < 2e-3


def test_ground_truth_labels_and_cloud(scannet_dir):
    root, _ = scannet_dir
    scene = load_scene(root)
    assert len(scene.gt_labels) == len(scene)
    lab = scene.gt_labels[0]
    assert lab.dtype == np.int32 and lab.shape == (48, 64)
    assert set(np.unique(lab)) == {0, 7, 300}
    assert scene.gt_points.shape == (5, 3) and scene.gt_points.dtype == np.float32
    np.testing.assert_array_equal(scene.gt_point_labels, np.arange(5))


def test_no_ground_truth_when_absent(tmp_path):
    root = tmp_path / "s"
    make_scannet(root, instance=False, gt_cloud=False)
    scene = load_scene(root)
    assert scene.gt_labels is None and scene.gt_points is None


def test_colour_bigger_than_depth_is_resized_and_uses_depth_intrinsics(tmp_path):
    root = tmp_path / "s"
    truth = make_scannet(root, indices=(0, 1), color_hw=(96, 128), depth_hw=(48, 64))
    scene = load_scene(root)
    f = scene.frames[0]
    assert f.image.shape == (48, 64, 3) and f.depth.shape == (48, 64)
    np.testing.assert_allclose(f.K, truth["K_depth"])
    # area-averaged texture: the horizontal ramp survives the 2x shrink
    assert f.image[:, :, 0].mean(0)[0] < 10 and f.image[:, :, 0].mean(0)[-1] > 240
    lab = scene.gt_labels[0]
    assert lab.shape == (48, 64) and set(np.unique(lab)) == {0, 7, 300}


def test_different_aspect_ratio_is_an_error(tmp_path):
    root = tmp_path / "s"
    make_scannet(root, indices=(0,), color_hw=(48, 96), depth_hw=(48, 64))
    with pytest.raises(InputError, match="aspect"):
        load_scene(root)


def test_missing_depth_intrinsics_when_resizing(tmp_path):
    root = tmp_path / "s"
    make_scannet(root, indices=(0,), color_hw=(96, 128), depth_hw=(48, 64))
    (root / "intrinsic" / "intrinsic_depth.txt").unlink()
    with pytest.raises(InputError, match="intrinsic_depth.txt"):
        load_scene(root)


def test_invalid_pose_frames_are_skipped_with_a_warning(scannet_dir):
    root, _ = scannet_dir
    bad = np.full((4, 4), -np.inf)
    write_matrix(root / "pose" / "1.txt", bad)
    with pytest.warns(UserWarning, match="skipped 1 frame"):
        scene = load_scene(root)
    assert scene.names == ["0", "2", "10"]
    assert len(scene.gt_labels) == 3
    with pytest.warns(UserWarning, match="skipped 1 frame"):
        assert load_scene(root, max_frames=2).names == ["0", "2"]  # counts valid frames


def test_all_poses_invalid_is_an_error(tmp_path):
    root = tmp_path / "s"
    make_scannet(root, indices=(0, 1))
    for i in (0, 1):
        write_matrix(root / "pose" / f"{i}.txt", np.full((4, 4), np.nan))
    with pytest.warns(UserWarning), pytest.raises(InputError, match="invalid"):
        load_scene(root)


def test_stride_and_max_frames(scannet_dir):
    root, _ = scannet_dir
    assert load_scene(root, stride=2).names == ["0", "2"]
    assert load_scene(root, max_frames=3).names == ["0", "1", "2"]
    assert load_scene(root, stride=3, max_frames=1).names == ["0"]


@pytest.mark.parametrize("case", ["scaled", "not4x4", "text"])
def test_bad_pose_file_is_a_one_line_error_naming_it(scannet_dir, case):
    root, truth = scannet_dir
    path = root / "pose" / "2.txt"
    if case == "scaled":
        write_matrix(path, truth["poses"][2] @ np.diag([1.1, 1.1, 1.1, 1]))
    elif case == "not4x4":
        write_matrix(path, truth["poses"][2][:3])
    else:
        path.write_text("identity\n")
    with pytest.raises(InputError) as err:
        load_scene(root)
    assert str(path) in str(err.value) and "\n" not in str(err.value)


def test_depth_of_the_wrong_size_names_the_depth_file(scannet_dir):
    root, _ = scannet_dir
    write_u16(root / "depth" / "2.png", np.full((24, 32), 2000))
    with pytest.raises(InputError, match=r"depth/2\.png.*32x24, expected 64x48"):
        load_scene(root)


def test_all_zero_depth_names_the_file(scannet_dir):
    root, _ = scannet_dir
    write_u16(root / "depth" / "1.png", np.zeros((48, 64)))
    with pytest.raises(InputError, match=r"depth/1\.png.*no valid pixel"):
        load_scene(root)


def test_corrupt_colour_image_names_the_file(scannet_dir):
    root, _ = scannet_dir
    path = root / "color" / "2.jpg"
    path.write_bytes(path.read_bytes()[:200])
    with pytest.raises(InputError, match=r"color/2\.jpg.*cannot read image"):
        load_scene(root)


def test_missing_depth_file_is_named(scannet_dir):
    root, _ = scannet_dir
    (root / "depth" / "10.png").unlink()
    with pytest.raises(InputError, match=r"depth/10\.png.*missing depth of frame 10"):
        load_scene(root)


def test_non_positive_focal_length(scannet_dir):
    root, truth = scannet_dir
    K = np.eye(4)
    K[:3, :3] = truth["K_color"]
    K[0, 0] = -50
    write_matrix(root / "intrinsic" / "intrinsic_color.txt", K)
    with pytest.raises(InputError, match="intrinsic_color.txt.*focal lengths must be positive"):
        load_scene(root)


def test_non_numeric_frame_name(scannet_dir):
    root, _ = scannet_dir
    write_rgb(root / "color" / "frame.jpg", np.zeros((48, 64, 3), np.uint8))
    with pytest.raises(InputError, match="not a frame number"):
        load_scene(root)


# --- ScanNet's preprocessed layout: colour resized to the depth size, intrinsic_color.txt of
# the 1296x968 colour camera (issue 15, case 1)

COLOUR_CAMERA_HW = (968, 1296)
"""ScanNet's colour camera: what intrinsic_color.txt describes in the preprocessed layout."""


def _preprocessed_scannet(root, n_frames=2, hw=(120, 160)):
    """A generated scene in ScanNet's preprocessed layout: color/ and depth/ at one size,
    intrinsic_depth.txt right, intrinsic_color.txt that of a 1296x968 colour camera."""
    from lift3d.synth import render_scene, write_scene

    scene = render_scene(seed=0, n_frames=n_frames, width=hw[1], height=hw[0])
    write_scene(scene, root)
    K_color = scene.K.copy()
    K_color[0] *= COLOUR_CAMERA_HW[1] / hw[1]
    K_color[1] *= COLOUR_CAMERA_HW[0] / hw[0]
    write_matrix(root / "intrinsic" / "intrinsic_color.txt", K_color)
    return scene


def _point_error(scene, truth):
    """Largest distance (m) between the points the reader's frames back-project to and the
    rendered scene's true points, over the pixels with depth."""
    from lift3d.cameras import backproject

    worst = 0.0
    for f, depth, pose in zip(scene.frames, truth.depths, truth.poses):
        valid = depth > 0
        got = backproject(f.depth, f.K, f.cam_to_world)[valid]
        want = backproject(depth.astype(np.float32), truth.K, pose)[valid]
        worst = max(worst, float(np.linalg.norm(got - want, axis=-1).max()))
    return worst


def test_preprocessed_layout_back_projects_with_the_depth_intrinsics(tmp_path):
    root = tmp_path / "scene0000_00"
    truth = _preprocessed_scannet(root)
    with pytest.warns(UserWarning, match=r"intrinsic_color\.txt: ignored, principal point"):
        scene = load_scene(root)
    for f in scene.frames:
        np.testing.assert_allclose(f.K, truth.K, rtol=1e-6)
    assert _point_error(scene, truth) < 0.005  # mm rounding of the depth PNGs


def test_intrinsics_of_another_resolution_alone_are_an_error(tmp_path):
    root = tmp_path / "s"
    _preprocessed_scannet(root, n_frames=1)
    (root / "intrinsic" / "intrinsic_depth.txt").unlink()
    with pytest.raises(InputError, match=r"intrinsic_color\.txt: intrinsics do not fit the "
                       r"160x120 frames: principal point .* far from the centre"):
        load_scene(root)


def test_disagreeing_intrinsics_of_one_size_warn_and_use_the_depth_camera(tmp_path):
    root = tmp_path / "s"
    truth = make_scannet(root, indices=(0,))
    K = truth["K_color"].copy()
    K[0, 0] *= 1.1
    K[1, 1] *= 1.1
    write_matrix(root / "intrinsic" / "intrinsic_color.txt", K)
    with pytest.warns(UserWarning, match="disagree"):
        scene = load_scene(root)
    np.testing.assert_allclose(scene.frames[0].K, truth["K_depth"])
