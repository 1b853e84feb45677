import numpy as np
import pytest

from lift3d.errors import InputError
from lift3d.palette import UNLABELLED_RGB, label_colors
from lift3d.types import LabelledCloud
from viewers.scene import (
    ViewCamera,
    ViewerState,
    frustum_lines,
    legend,
    load_view_scene,
    overview_camera,
    point_colors,
)


def test_load_folder_and_ply(synthetic_out):
    scene = load_view_scene(synthetic_out.root)
    assert [c.name for c in scene.cameras] == synthetic_out.names
    assert len(scene.cloud) == len(synthetic_out.cloud)
    bare = load_view_scene(synthetic_out.root / "cloud.ply")
    assert bare.cameras == [] and len(bare.cloud) == len(synthetic_out.cloud)


def test_load_errors_say_what_to_pass(tmp_path, synthetic_out):
    with pytest.raises(InputError, match="no cloud.ply.*or a .ply file"):
        load_view_scene(tmp_path)
    with pytest.raises(InputError, match="not an output folder"):
        load_view_scene(tmp_path / "nothing.txt")
    with pytest.raises(InputError, match="no camera named 'frame_07'.*frame_00.color"):
        load_view_scene(synthetic_out.root).camera("frame_07")


def test_point_colors_modes(synthetic_out):
    cloud = synthetic_out.cloud
    np.testing.assert_array_equal(point_colors(cloud, "label"), label_colors(cloud.labels))
    np.testing.assert_array_equal(point_colors(cloud, "rgb"), cloud.colors)
    conf = point_colors(cloud, "confidence")
    assert (conf[cloud.labels == 0] == UNLABELLED_RGB).all()
    lab = cloud.labels > 0
    assert len(np.unique(conf[lab], axis=0)) > 50  # a ramp, not one colour
    two = LabelledCloud(np.zeros((2, 3), np.float32), np.zeros((2, 3), np.uint8),
                        np.zeros((2, 3), np.float32), np.array([4, 4], np.int32),
                        np.array([0.0, 1.0], np.float32), np.ones(2, np.int32))
    # viridis: dark purple at confidence 0, yellow at 1
    np.testing.assert_array_equal(point_colors(two, "confidence"), [[68, 1, 84], [253, 231, 37]])
    with pytest.raises(InputError, match="unknown colouring"):
        point_colors(cloud, "depth")


def test_legend_counts_and_order():
    labels = np.array([0, 0, 0, 0, 5, 5, 9, 9, 9, 2])
    entries = legend(labels)
    assert [(e.label, e.count) for e in entries] == [(9, 3), (5, 2), (2, 1), (0, 4)]
    assert entries[0].rgb == tuple(label_colors(np.array([9]))[0])


def test_frustum_corners_project_to_image_corners():
    K = np.array([[100.0, 0, 31.5], [0, 100.0, 23.5], [0, 0, 1]])
    c2w = np.eye(4)
    c2w[:3, 3] = [1.0, 2.0, 3.0]
    cam = ViewCamera("c", K, c2w, 64, 48)
    pts, lines = frustum_lines(cam, depth=0.5)
    np.testing.assert_allclose(pts[0], [1, 2, 3])
    P = (pts[1:] - c2w[:3, 3]) @ c2w[:3, :3]
    np.testing.assert_allclose(P[:, 2], 0.5)
    uv = (P @ K.T)[:, :2] / P[:, 2:]
    np.testing.assert_allclose(uv, [[-0.5, -0.5], [63.5, -0.5], [63.5, 47.5], [-0.5, 47.5]])
    assert lines.shape == (8, 2) and set(lines.ravel()) == set(range(5))


def test_overview_camera_sees_the_whole_cloud(synthetic_out):
    scene = load_view_scene(synthetic_out.root)
    for s in (scene, load_view_scene(synthetic_out.root / "cloud.ply")):
        cam = overview_camera(s, 320, 240)
        w2c = cam.world_to_cam
        P = s.cloud.points.astype(float) @ w2c[:3, :3].T + w2c[:3, 3]
        uv = (P @ cam.K.T)[:, :2] / P[:, 2:]
        assert (P[:, 2] > 0).all()
        assert (uv >= 0).all() and (uv[:, 0] < 320).all() and (uv[:, 1] < 240).all()
        R = cam.cam_to_world[:3, :3]
        np.testing.assert_allclose(R.T @ R, np.eye(3), atol=1e-9)
        assert np.linalg.det(R) > 0


def test_viewer_state_keys():
    labels = np.array([0, 3, 3, 7, 7, 7])
    st = ViewerState(np.unique(labels))
    assert st.current_id == 0
    assert st.step(1) == 3 and st.step(1) == 7 and st.step(1) == 0 and st.step(-1) == 7
    st.toggle_hidden()
    np.testing.assert_array_equal(st.visible(labels), [1, 1, 1, 0, 0, 0])
    st.step(-1)
    st.toggle_isolate()
    np.testing.assert_array_equal(st.visible(labels), [0, 1, 1, 0, 0, 0])
    st.show_all()
    assert st.visible(labels).all()
    assert [st.cycle_mode() for _ in range(3)] == ["rgb", "confidence", "label"]
    assert st.grow_points(100) == 20.0 and st.grow_points(0.001) == 1.0
