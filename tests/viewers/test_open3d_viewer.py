"""The interactive viewer's parts, without a window (no display here: the window itself is
not opened by the tests)."""

import numpy as np

from lift3d.palette import label_colors
from viewers.open3d_viewer import KEYS_HELP, prepare


def test_prepare_builds_what_the_window_shows(synthetic_out):
    scene, state, view, frustums = prepare(synthetic_out.root, point_size=3)
    assert len(view.pcd.points) == len(scene.cloud)
    np.testing.assert_allclose(np.asarray(view.pcd.colors) * 255,
                               label_colors(scene.cloud.labels), atol=1e-6)
    assert len(frustums.lines) == 8 * len(synthetic_out.names)
    assert state.point_size == 3
    for key in ("L ", "N / P", "H ", "I ", "F ", "= / -"):
        assert key in KEYS_HELP


def test_isolate_and_colour_switch_update_the_cloud(synthetic_out):
    scene, state, view, _ = prepare(synthetic_out.root)
    state.step(list(state.ids).index(25))
    state.toggle_isolate()
    view.refresh()
    pts = np.asarray(view.pcd.points)
    np.testing.assert_allclose(pts, scene.cloud.points[scene.cloud.labels == 25], atol=1e-6)
    state.cycle_mode()  # rgb
    view.refresh()
    np.testing.assert_allclose(np.asarray(view.pcd.colors) * 255,
                               scene.cloud.colors[scene.cloud.labels == 25], atol=1e-6)
