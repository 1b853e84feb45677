"""TUM RGB-D reader, on a small TUM-format folder the test renders from a known plane and a
known continuous trajectory (no TUM sequence is available offline)."""

from __future__ import annotations

import numpy as np
import pytest
from _io_scenes import PLANE_Z, backproject, plane_depth, texture, write_rgb, write_u16
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation, Slerp

from lift3d.cameras import slerp
from lift3d.errors import InputError
from lift3d.io import detect_layout, load_scene
from lift3d.io.tum import (
    MAX_DIFFERENCE,
    ROS_DEFAULT_INTRINSICS,
    SENSOR_INTRINSICS,
    associate,
    interpolate_poses,
)

T0 = 1305031102.0
HW = (120, 160)
"""Small frames keep the test fast; K stays the 640x480 one (the geometry is still exact)."""


def trajectory(t: np.ndarray) -> np.ndarray:
    """(N, 4, 4) camera-to-world poses of a camera that translates at constant velocity and
    turns about y at constant rate: linear + slerp interpolation reproduce it exactly."""
    s = np.asarray(t, np.float64) - T0
    T = np.tile(np.eye(4), (s.size, 1, 1))
    T[:, :3, :3] = Rotation.from_rotvec(np.outer(0.3 * s, [0, 1, 0])).as_matrix()
    T[:, :3, 3] = np.stack([0.2 * s, 0.1 * s, 0.1 * s], -1)
    return T


def K_of(params) -> np.ndarray:
    fx, fy, cx, cy = params
    return np.array([[fx, 0, cx], [0, fy, cy], [0, 0, 1]], np.float64)


def make_tum(root, sensor_params=SENSOR_INTRINSICS["freiburg1"], groundtruth=True):
    """Write a TUM folder; returns the rgb stamps that should survive association."""
    gt_t = T0 + np.arange(0, 101) * 0.01  # 100 Hz, 1 s
    kept = T0 + np.array([0.033, 0.066, 0.1, 0.1331, 0.1667])
    rgb_t = np.concatenate([[T0 - 0.05], kept, [T0 + 0.5]])  # before trajectory; no depth
    depth_t = np.concatenate([[T0 - 0.046], kept + 0.004])
    K = K_of(sensor_params)
    rgb_lines = ["# color images", "# file: 'synthetic.bag'", "# timestamp filename"]
    depth_lines = ["# depth maps", "# timestamp filename"]
    poses = trajectory(rgb_t)
    for k, t in enumerate(rgb_t):
        name = f"{t:.6f}"
        write_rgb(root / "rgb" / f"{name}.png", texture(HW, k))
        rgb_lines.append(f"{name} rgb/{name}.png")
    for k, t in enumerate(depth_t):
        name = f"{t:.6f}"
        # rendered at the paired rgb stamp's pose: the check below is then exact
        depth = plane_depth(K, poses[k], HW)
        write_u16(root / "depth" / f"{name}.png", np.round(depth * 5000))
        depth_lines.append(f"{name}\tdepth/{name}.png")  # tabs count as spaces
    (root / "rgb.txt").write_text("\n".join(rgb_lines) + "\n")
    (root / "depth.txt").write_text("\n".join(depth_lines) + "\n")
    if groundtruth:
        gt = trajectory(gt_t)
        q = Rotation.from_matrix(gt[:, :3, :3]).as_quat()  # x, y, z, w
        lines = ["# ground truth trajectory", "# timestamp tx ty tz qx qy qz qw"]
        lines += [f"{t:.4f} " + " ".join(f"{v:.9f}" for v in (*T[:3, 3], *qq))
                  for t, T, qq in zip(gt_t, gt, q, strict=True)]
        (root / "groundtruth.txt").write_text("\n".join(lines) + "\n")
    return kept


@pytest.fixture
def tum_dir(tmp_path):
    root = tmp_path / "rgbd_dataset_freiburg1_plane"
    return root, make_tum(root)


def test_association_poses_depth_and_intrinsics(tum_dir):
    root, kept = tum_dir
    assert detect_layout(root) == "tum"
    with pytest.warns(UserWarning, match="1 without depth, 1 outside the ground-truth"):
        scene = load_scene(root)
    assert scene.layout == "tum"
    assert scene.names == [f"{t:.6f}" for t in kept]
    np.testing.assert_allclose(scene.frames[0].K, K_of(SENSOR_INTRINSICS["freiburg1"]))
    truth = trajectory(kept)
    for f, T in zip(scene.frames, truth, strict=True):
        assert f.image.shape == (*HW, 3) and f.depth.dtype == np.float32
        np.testing.assert_allclose(f.cam_to_world, T, atol=1e-7)  # interpolated, not snapped
        pts = backproject(f.depth, f.K, f.cam_to_world)
        assert np.abs(pts[:, 2] - PLANE_Z).max() < 1e-3  # depth / 5000 = metres


def test_stride_and_max_frames_apply_to_associated_frames(tum_dir):
    root, kept = tum_dir
    with pytest.warns(UserWarning):
        scene = load_scene(root, stride=2, max_frames=2)
    assert scene.names == [f"{kept[0]:.6f}", f"{kept[2]:.6f}"]


@pytest.mark.parametrize("sensor", ["freiburg2", "freiburg3"])
def test_intrinsics_by_sensor_in_folder_name(tmp_path, sensor):
    root = tmp_path / f"rgbd_dataset_{sensor}_x"
    make_tum(root, SENSOR_INTRINSICS[sensor])
    with pytest.warns(UserWarning):
        scene = load_scene(root, max_frames=1)
    np.testing.assert_allclose(scene.frames[0].K, K_of(SENSOR_INTRINSICS[sensor]))


def test_ros_default_intrinsics_and_override_files(tmp_path):
    root = tmp_path / "my_recording"
    make_tum(root, ROS_DEFAULT_INTRINSICS)
    with pytest.warns(UserWarning):
        K = load_scene(root, max_frames=1).frames[0].K
    np.testing.assert_allclose(K, K_of(ROS_DEFAULT_INTRINSICS))
    (root / "intrinsics.txt").write_text("# fx fy cx cy d0 d1 d2 d3 d4\n"
                                         "500 501 320.5 240.5 0.1 0 0 0 0\n")
    with pytest.warns(UserWarning):
        K = load_scene(root, max_frames=1).frames[0].K
    np.testing.assert_allclose(K, K_of((500, 501, 320.5, 240.5)))
    (root / "intrinsics.txt").unlink()
    np.savetxt(root / "camera.txt", K_of((510, 511, 300, 200)))
    with pytest.warns(UserWarning):
        K = load_scene(root, max_frames=1).frames[0].K
    np.testing.assert_allclose(K, K_of((510, 511, 300, 200)))
    (root / "camera.txt").write_text("500 501\n")
    with pytest.raises(InputError, match=r"camera\.txt.*fx fy cx cy"):
        load_scene(root)


def test_without_groundtruth_frames_have_no_pose(tmp_path):
    root = tmp_path / "rgbd_dataset_freiburg1_nogt"
    make_tum(root, groundtruth=False)
    with pytest.warns(UserWarning, match="no groundtruth.txt"), \
            pytest.warns(UserWarning, match="1 without depth"):
        scene = load_scene(root)
    assert len(scene) == 6  # the pre-trajectory frame is kept: nothing to drop it for
    assert all(f.cam_to_world is None and f.K is not None for f in scene.frames)


def test_non_unit_quaternion_is_an_error(tum_dir):
    root, _ = tum_dir
    gt = root / "groundtruth.txt"
    lines = gt.read_text().splitlines()
    fields = lines[10].split()
    fields[-1] = "3.0"
    lines[10] = " ".join(fields)
    gt.write_text("\n".join(lines))
    with pytest.raises(InputError, match=r"groundtruth\.txt.*not a rigid transform"):
        load_scene(root)


def test_groundtruth_line_with_missing_values(tum_dir):
    root, _ = tum_dir
    with open(root / "groundtruth.txt", "a") as fh:
        fh.write("1305031103.5 1 2 3\n")
    with pytest.raises(InputError, match=r"groundtruth\.txt.*3 values after the timestamp"):
        load_scene(root)


def test_unrelated_depth_stamps_are_an_error(tum_dir):
    root, _ = tum_dir
    (root / "depth.txt").write_text("1.0 depth/x.png\n")
    with pytest.raises(InputError, match=r"depth\.txt.*no rgb stamp"):
        load_scene(root)


def test_depth_of_the_wrong_size(tum_dir):
    root, kept = tum_dir
    write_u16(root / "depth" / f"{kept[1] + 0.004:.6f}.png", np.full((60, 80), 5000))
    with pytest.warns(UserWarning), pytest.raises(InputError, match="80x60, expected 160x120"):
        load_scene(root)


# ---------------------------------------------------------------------------------------------
# Association and interpolation as properties


def associate_reference(first, second, offset, max_difference):
    """TUM associate.py's algorithm, written out literally on stamp values."""
    cands = sorted((abs(a - (b + offset)), a, b) for a in first for b in second
                   if abs(a - (b + offset)) < max_difference)
    free_a, free_b, out = set(first), set(second), []
    for _, a, b in cands:
        if a in free_a and b in free_b:
            free_a.remove(a)
            free_b.remove(b)
            out.append((first.index(a), second.index(b)))
    return sorted(out)


stamps = st.lists(st.integers(0, 400), unique=True, max_size=40).map(
    lambda xs: [1e3 + x * 0.007 for x in xs])


@settings(max_examples=150, deadline=None)
@given(stamps, stamps, st.sampled_from([0.0, 0.003, -0.011]))
def test_associate_matches_tum_reference(first, second, offset):
    pairs = associate(np.array(first), np.array(second), MAX_DIFFERENCE, offset)
    assert pairs == associate_reference(first, second, offset, MAX_DIFFERENCE)
    assert len({i for i, _ in pairs}) == len(pairs) == len({j for _, j in pairs})


unit_quats = st.lists(st.floats(-1, 1), min_size=4, max_size=4).filter(
    lambda q: np.linalg.norm(q) > 0.1).map(lambda q: np.array(q) / np.linalg.norm(q))


@settings(max_examples=100, deadline=None)
@given(unit_quats, unit_quats, st.floats(0, 1))
def test_slerp_matches_scipy(q0, q1, alpha):
    # rotations 180 degrees apart (q0 . q1 = 0) have two shortest arcs: either is right, and
    # which one the sign of a rounding error picks is no property (hypothesis found q0 =
    # (0, 0, 1, e), q1 = (0, 0, -e, 1): ours and scipy's differ by 180 degrees there)
    assume(abs(float(q0 @ q1)) > 1e-9)
    ours = Rotation.from_quat(slerp(q0[None], q1[None], np.array([alpha])))
    ref = Slerp([0, 1], Rotation.from_quat([q0, q1]))([alpha])
    assert (ours * ref.inv()).magnitude()[0] < 1e-6


def test_interpolate_poses_at_stamps_between_and_outside():
    gt_t = np.array([0.0, 0.01, 0.02, 0.10, 0.11])  # a 0.08 s mocap gap
    gt = trajectory(T0 + gt_t)
    q = Rotation.from_matrix(gt[:, :3, :3]).as_quat()
    query = np.array([0.0, 0.015, 0.11, 0.05, -0.001, 0.2])
    poses, ok = interpolate_poses(gt_t, gt[:, :3, 3], q, query)
    np.testing.assert_array_equal(ok, [True, True, True, False, False, False])
    # atol: T0 + t rounds t to ~2e-7 s in float64
    np.testing.assert_allclose(poses[:3], trajectory(T0 + query[:3]), atol=1e-6)
