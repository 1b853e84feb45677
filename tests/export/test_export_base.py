import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from lift3d.errors import InputError
from lift3d.export.base import (
    load_output,
    opencv_to_opengl_pose,
    opengl_to_opencv_pose,
    pinhole_params,
    qvec_to_rotmat,
    rigid_pose,
    rotmat_to_qvec,
    safe_stem,
    world_to_camera,
)
from lift3d.io.outputs import write_cameras, write_ply


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1, 1), min_size=4, max_size=4)
       .filter(lambda q: np.linalg.norm(q) > 1e-3))
def test_quaternion_round_trip(q):
    R = Rotation.from_quat(np.asarray(q) / np.linalg.norm(q)).as_matrix()
    qv = rotmat_to_qvec(R)
    assert qv[0] >= 0 and np.isclose(np.linalg.norm(qv), 1)
    np.testing.assert_allclose(qvec_to_rotmat(qv), R, atol=1e-12)


@pytest.mark.parametrize("angle", [0.0, np.pi / 2, np.pi, -np.pi])
@pytest.mark.parametrize("axis", [(1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0)])
def test_quaternion_matches_scipy_at_awkward_angles(axis, angle):
    R = Rotation.from_rotvec(np.asarray(axis, float) / np.linalg.norm(axis) * angle)
    x, y, z, w = R.as_quat()  # scipy is scalar-last
    ref = np.array([w, x, y, z]) * (1 if w >= 0 else -1)
    qv = rotmat_to_qvec(R.as_matrix())
    # q and -q are the same rotation; at w == 0 either sign is right
    assert np.allclose(qv, ref, atol=1e-12) or np.allclose(qv, -ref, atol=1e-12)


def test_pose_inverse_and_axis_flip():
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("xyz", [0.3, -1.1, 2.0]).as_matrix()
    T[:3, 3] = [1.0, -2.0, 0.5]
    np.testing.assert_allclose(world_to_camera(T) @ T, np.eye(4), atol=1e-12)
    gl = opencv_to_opengl_pose(T)
    # OpenGL camera looks down its -z: the OpenCV forward axis is the negated GL z column
    np.testing.assert_allclose(gl[:3, 2], -T[:3, 2])
    np.testing.assert_allclose(gl[:3, 1], -T[:3, 1])
    np.testing.assert_allclose(opengl_to_opencv_pose(gl), T)


def test_pinhole_params_shift_principal_point_by_half_a_pixel():
    K = np.array([[100.0, 0, 63.5], [0, 90.0, 47.5], [0, 0, 1]])
    assert pinhole_params(K) == (100.0, 90.0, 64.0, 48.0)
    K[0, 1] = 0.5
    with pytest.raises(InputError, match="skew"):
        pinhole_params(K)


def test_safe_stem():
    assert safe_stem("frame-000000.color") == "frame-000000_color"
    assert safe_stem("a/b c") == "a_b_c"


def test_load_output_errors_name_the_file_and_fix(tmp_path, synthetic_out):
    with pytest.raises(InputError, match="no cloud.ply.*lift3d segment"):
        load_output(tmp_path)
    write_ply(tmp_path / "cloud.ply", synthetic_out.cloud)
    with pytest.raises(InputError, match="no cameras.json"):
        load_output(tmp_path)
    write_cameras(tmp_path / "cameras.json", ["f0"], [None], [(4, 4)], [None], [None])
    with pytest.raises(InputError, match="'f0' has no K, cam_to_world, image.*rgbd or mast3r"):
        load_output(tmp_path)


def test_load_output_reads_synthetic_folder(synthetic_out):
    out = load_output(synthetic_out.root)
    assert [f.name for f in out.frames] == synthetic_out.names
    assert [f.stem for f in out.frames] == [n.replace(".", "_") for n in synthetic_out.names]
    assert all(f.labels is not None for f in out.frames)
    np.testing.assert_allclose(out.frames[1].cam_to_world, synthetic_out.poses[1])
    assert len(out.cloud) == len(synthetic_out.cloud)


def test_rigid_pose_snaps_a_nearly_rotation_to_a_rotation():
    T = np.eye(4)
    T[:3, :3] = Rotation.from_euler("xyz", [0.2, 0.4, -0.3]).as_matrix()
    T[:3, 3] = [0.5, 0.1, -2.0]
    noisy = T.copy()
    noisy[:3, :3] += np.random.default_rng(0).normal(0, 1e-4, (3, 3))
    R = rigid_pose(noisy)
    np.testing.assert_allclose(R[:3, :3].T @ R[:3, :3], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(R, T, atol=3e-4)
    np.testing.assert_allclose(rigid_pose(T), T, atol=1e-12)
    flip = T @ np.diag([1.0, 1.0, -1.0, 1.0])
    with pytest.raises(InputError, match="reflection"):
        rigid_pose(flip)


def test_unknown_format_names_the_known_ones(synthetic_out, tmp_path):
    from lift3d.export import FORMATS, export

    with pytest.raises(InputError, match="unknown export format 'obj'.*gaussian-grouping"):
        export(synthetic_out.root, "obj", tmp_path)
    assert FORMATS == ("ply", "colmap", "gaussian-grouping", "nerfstudio")
