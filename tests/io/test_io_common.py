"""Shared reader helpers (lift3d/io/common.py): pose rigidity, depth decoding, ordering.
(Named test_io_common so it does not clash with other packages' test_common.)"""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.spatial.transform import Rotation

from lift3d.errors import InputError
from lift3d.io.common import (
    check_intrinsics,
    natural_key,
    read_depth,
    read_matrix,
    read_pose,
    rigid_error,
)

rotations = st.integers(0, 2**32 - 1).map(lambda s: Rotation.random(random_state=s).as_matrix())
translations = st.lists(st.floats(-100, 100), min_size=3, max_size=3)


def rigid(R, t) -> np.ndarray:
    T = np.eye(4)
    T[:3, :3], T[:3, 3] = R, t
    return T


@settings(max_examples=100, deadline=None)
@given(rotations, translations)
def test_random_rigid_transforms_pass(R, t):
    assert rigid_error(rigid(R, t)) is None


@settings(max_examples=100, deadline=None)
@given(rotations, translations, st.floats(0.005, 0.5), st.sampled_from([-1, 1]),
       st.sampled_from(["scale", "shear", "reflect", "last_row"]))
def test_perturbed_transforms_fail(R, t, eps, sign, kind):
    T = rigid(R, t)
    if kind == "scale":
        T[:3, :3] *= 1 + sign * eps
    elif kind == "shear":
        T[:3, :3] = T[:3, :3] @ np.array([[1, sign * eps, 0], [0, 1, 0], [0, 0, 1]])
    elif kind == "reflect":
        T[:3, 0] *= -1
    else:
        T[3, 0] = sign * eps
    assert rigid_error(T) is not None


def test_pose_file_errors_name_the_file(tmp_path):
    p = tmp_path / "p.txt"
    np.savetxt(p, np.eye(4)[:, :3])
    with pytest.raises(InputError, match=r"p\.txt: pose is 4x3 numbers, expected 4x4"):
        read_pose(p)
    p.write_text("1 0 0 0\n0 1 0\n0 0 1 0\n0 0 0 1\n")
    with pytest.raises(InputError, match="rows have different lengths"):
        read_pose(p)
    np.savetxt(p, np.full((4, 4), -np.inf))
    assert not np.isfinite(read_pose(p)).any()  # returned: ScanNet's "lost track" mark


def test_read_matrix_comments_and_commas(tmp_path):
    p = tmp_path / "k.txt"
    p.write_text("# K\n1, 0, 2\n0 1 3  # row two\n0 0 1\n")
    np.testing.assert_array_equal(read_matrix(p, "K"), [[1, 0, 2], [0, 1, 3], [0, 0, 1]])


@pytest.mark.parametrize("K, why", [
    (np.diag([0.0, 500, 1]), "focal lengths must be positive"),
    (np.array([[500, 0, -3], [0, 500, 240], [0, 0, 1.0]]), "principal point"),
    (np.array([[500, 0, 320], [0, 500, 240], [0, 0, 2.0]]), "last row"),
    (np.full((3, 3), np.nan), "NaN"),
])
def test_bad_intrinsics(tmp_path, K, why):
    with pytest.raises(InputError, match=why):
        check_intrinsics(K, tmp_path / "K.txt")


def test_uint16_depth_scale_and_invalid_marker(tmp_path):
    raw = np.array([[0, 1000, 65535], [5000, 2500, 1]], np.uint16)
    cv2.imwrite(str(tmp_path / "d.png"), raw)
    d = read_depth(tmp_path / "d.png", 1000.0, (0, 65535))
    assert d.dtype == np.float32
    np.testing.assert_allclose(d, [[0, 1, 0], [5, 2.5, 0.001]])
    d = read_depth(tmp_path / "d.png", 5000.0)
    assert d[0, 2] == pytest.approx(65535 / 5000)  # not a marker unless the layout says so


def test_float_depth_must_be_finite(tmp_path):
    d = np.full((4, 5), 1.5, np.float32)
    cv2.imwrite(str(tmp_path / "ok.tiff"), d)
    np.testing.assert_array_equal(read_depth(tmp_path / "ok.tiff", 1000.0), d)  # metres as is
    d[1, 2] = np.nan
    cv2.imwrite(str(tmp_path / "nan.tiff"), d)
    with pytest.raises(InputError, match=r"nan\.tiff: depth has 1 NaN/inf pixels"):
        read_depth(tmp_path / "nan.tiff", 1000.0)


@pytest.mark.parametrize("case", ["zeros", "invalid_only", "colour", "garbage"])
def test_bad_depth_images(tmp_path, case):
    p = tmp_path / "d.png"
    if case == "zeros":
        cv2.imwrite(str(p), np.zeros((4, 4), np.uint16))
    elif case == "invalid_only":
        cv2.imwrite(str(p), np.full((4, 4), 65535, np.uint16))
    elif case == "colour":
        cv2.imwrite(str(p), np.ones((4, 4, 3), np.uint8))
    else:
        p.write_bytes(b"\x89PNG broken")
    with pytest.raises(InputError) as err:
        read_depth(p, 1000.0, (0, 65535))
    assert str(p) in str(err.value) and "\n" not in str(err.value)


@given(st.lists(st.integers(0, 10**6), unique=True, max_size=30))
def test_natural_order_is_numeric(nums):
    names = [f"frame{n}.png" for n in nums]
    assert sorted(names, key=natural_key) == [f"frame{n}.png" for n in sorted(nums)]


def test_eight_bit_depth_is_refused_naming_the_file_and_format(tmp_path):
    """An 8-bit PNG in millimetres is all under 0.26 m: refused, not read as empty geometry."""
    import cv2

    p = tmp_path / "d.png"
    cv2.imwrite(str(p), np.full((4, 4), 200, np.uint8))
    with pytest.raises(InputError, match=r"d\.png: depth image is 8-bit .*expected a 16-bit PNG"):
        read_depth(p, 1000.0)


def test_sixteen_bit_grey_colour_is_scaled_not_clipped(tmp_path):
    """Pillow's convert('RGB') clips I;16 to 255 (a white picture); the ramp must survive."""
    import cv2

    from lift3d.io.common import read_rgb

    ramp = (np.arange(256, dtype=np.uint16) * 257).reshape(16, 16)
    p = tmp_path / "grey16.png"
    cv2.imwrite(str(p), ramp)
    rgb = read_rgb(p)
    assert rgb.shape == (16, 16, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb[..., 0], np.arange(256).reshape(16, 16))
    np.testing.assert_array_equal(rgb[..., 0], rgb[..., 2])


def test_every_ply_reader_refuses_a_broken_ply_naming_it(tmp_path):
    """The lift3d cloud, labelled-PLY and ScanNet-mesh readers share read_ply_vertices: a file
    that is not a PLY is one InputError naming it, whichever reader met it."""
    from lift3d.io.common import read_ply_vertices
    from lift3d.io.gt3d import read_labelled_ply, read_scannet_instances
    from lift3d.io.outputs import read_ply

    bad = tmp_path / "scene_vh_clean_2.ply"
    bad.write_bytes(b"not a ply\n")
    readers = (read_ply_vertices, read_ply, read_labelled_ply,
               lambda p: read_scannet_instances(p, tmp_path / "s.json", tmp_path / "a.json"))
    for read in readers:
        with pytest.raises(InputError, match="cannot read PLY") as err:
            read(bad)
        assert str(bad) in str(err.value)


def test_read_ply_vertices_gives_every_property(tmp_path):
    from lift3d.io.common import read_ply_vertices

    path = tmp_path / "v.ply"
    path.write_text("ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\n"
                    "property float z\nproperty int instance\nend_header\n0 1 2 7\n3 4 5 0\n")
    v = read_ply_vertices(path)
    assert v.dtype.names == ("x", "y", "z", "instance")
    np.testing.assert_array_equal(v["instance"], [7, 0])
    np.testing.assert_array_equal(v["z"], np.float32([2, 5]))
