"""7-Scenes reader: on the real redkitchen sequence in ../shared and on generated folders."""

from __future__ import annotations

import numpy as np
import pytest
from _io_scenes import (
    PLANE_Z,
    backproject,
    intrinsics,
    plane_depth,
    pose,
    texture,
    write_matrix,
    write_rgb,
    write_u16,
)

from lift3d.errors import InputError
from lift3d.io import detect_layout, load_scene
from lift3d.io.common import rigid_error


def reproject_depth_error(src, dst) -> tuple[np.ndarray, int]:
    """|z predicted from ``src`` - z measured in ``dst``| (metres) at pixels valid in both."""
    pts = backproject(src.depth, src.K, src.cam_to_world)
    w2c = np.linalg.inv(dst.cam_to_world)
    cam = pts @ w2c[:3, :3].T + w2c[:3, 3]
    cam = cam[cam[:, 2] > 0.1]
    u = np.round(cam[:, 0] / cam[:, 2] * dst.K[0, 0] + dst.K[0, 2]).astype(int)
    v = np.round(cam[:, 1] / cam[:, 2] * dst.K[1, 1] + dst.K[1, 2]).astype(int)
    h, w = dst.depth.shape
    inside = (u >= 0) & (u < w) & (v >= 0) & (v < h)
    z_meas = dst.depth[v[inside], u[inside]]
    z_pred = cam[inside, 2]
    both = z_meas > 0
    return np.abs(z_pred[both] - z_meas[both]), int(both.sum())


@pytest.fixture
def redkitchen(shared):
    return shared("data", "7scenes_redkitchen_rgbd")


def test_real_sequence_conventions(redkitchen):
    assert detect_layout(redkitchen) == "7scenes"
    scene = load_scene(redkitchen, stride=40)
    assert scene.layout == "7scenes"
    assert scene.names == [f"frame-{i:06d}" for i in range(0, 1000, 200)]
    for f in scene.frames:
        assert f.image.shape == (480, 640, 3) and f.image.dtype == np.uint8
        assert f.depth.shape == (480, 640) and f.depth.dtype == np.float32
        np.testing.assert_array_equal(f.K, [[585, 0, 320], [0, 585, 240], [0, 0, 1]])
        valid = f.depth > 0
        assert 0.75 < valid.mean() < 0.98  # PROVENANCE: about 11% invalid
        assert 0.3 < np.median(f.depth[valid]) < 3.6  # metres, not millimetres
        assert rigid_error(f.cam_to_world) is None


def test_real_sequence_pointed_at_frames_folder(redkitchen):
    a = load_scene(redkitchen, max_frames=2)
    b = load_scene(redkitchen / "frames", max_frames=2)
    assert detect_layout(redkitchen / "frames") == "7scenes"
    assert a.names == b.names
    np.testing.assert_array_equal(a.frames[1].depth, b.frames[1].depth)
    np.testing.assert_array_equal(a.frames[1].K, b.frames[1].K)  # intrinsics found one level up


def test_real_sequence_depth_reprojects_between_nearby_frames(redkitchen):
    """PROVENANCE: median depth disagreement 3 mm for 0->5, 6 mm for 0->20."""
    scene = load_scene(redkitchen, max_frames=5)  # frames 0, 5, 10, 15, 20
    for j, limit in ((1, 0.006), (4, 0.012)):
        err, n = reproject_depth_error(scene.frames[0], scene.frames[j])
        assert n > 100_000
        assert np.median(err) < limit


def test_real_sequence_all_frames_with_progress_bar(redkitchen, capsys):
    scene = load_scene(redkitchen, progress=True)
    assert len(scene) == 200
    assert scene.names[-1] == "frame-000995"
    assert "200/200" in capsys.readouterr().err


def make_sevenscenes(root, n=3, ext="jpg", intrinsics_file=True, frames_subdir=True):
    """A 7-Scenes folder of a plane with K = the 7-Scenes default, 64x48 images."""
    hw = (48, 64)
    K = intrinsics(hw)
    fdir = root / "frames" if frames_subdir else root
    if intrinsics_file:
        write_matrix(root / "camera-intrinsics.txt", K)
    poses = []
    for i in range(n):
        T = pose(0.1 * i, (0.05 * i, 0, 0))
        depth_mm = np.round(plane_depth(K, T, hw) * 1000)
        depth_mm[:4, :4] = 65535  # 7-Scenes' invalid marker
        write_rgb(fdir / f"frame-{i:06d}.color.{ext}", texture(hw, i))
        write_u16(fdir / f"frame-{i:06d}.depth.png", depth_mm)
        write_matrix(fdir / f"frame-{i:06d}.pose.txt", T)
        poses.append(T)
    return K, poses


def test_generated_sequence_geometry_and_invalid_marker(tmp_path):
    K, poses = make_sevenscenes(tmp_path)
    scene = load_scene(tmp_path)
    assert scene.names == ["frame-000000", "frame-000001", "frame-000002"]
    for f, T in zip(scene.frames, poses, strict=True):
        np.testing.assert_allclose(f.K, K)
        np.testing.assert_allclose(f.cam_to_world, T)
        assert (f.depth[:4, :4] == 0).all()  # 65535 -> invalid
        pts = backproject(f.depth, f.K, f.cam_to_world)
        assert np.abs(pts[:, 2] - PLANE_Z).max() < 2e-3


def test_original_layout_png_colour_and_default_intrinsics(tmp_path):
    """The original release: seq-01/frame-*.color.png beside the depth, no intrinsics file."""
    seq = tmp_path / "seq-01"
    make_sevenscenes(seq, n=2, ext="png", intrinsics_file=False, frames_subdir=False)
    assert detect_layout(seq) == "7scenes"
    scene = load_scene(seq)
    assert len(scene) == 2
    np.testing.assert_array_equal(scene.frames[0].K, [[585, 0, 320], [0, 585, 240], [0, 0, 1]])


def test_missing_pose_is_named(tmp_path):
    make_sevenscenes(tmp_path)
    path = tmp_path / "frames" / "frame-000001.pose.txt"
    path.unlink()
    with pytest.raises(InputError, match=r"frame-000001\.pose\.txt.*missing pose"):
        load_scene(tmp_path)


def test_depth_size_differs_from_colour(tmp_path):
    make_sevenscenes(tmp_path)
    write_u16(tmp_path / "frames" / "frame-000002.depth.png", np.full((24, 32), 1000))
    with pytest.raises(InputError, match=r"frame-000002\.depth\.png.*32x24, expected 64x48"):
        load_scene(tmp_path)


def test_reflection_pose_is_not_rigid(tmp_path):
    _, poses = make_sevenscenes(tmp_path)
    path = tmp_path / "frames" / "frame-000001.pose.txt"
    write_matrix(path, poses[1] @ np.diag([1, 1, -1, 1]))
    with pytest.raises(InputError, match=r"frame-000001\.pose\.txt.*det"):
        load_scene(tmp_path)
