"""The interactive viewer: its parts without a window, and the window itself under Xvfb
(skipped where xvfb-run is absent)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest

from lift3d.palette import label_colors
from viewers.open3d_viewer import KEYS_HELP, prepare

REPO = Path(__file__).resolve().parents[2]


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


@pytest.mark.slow
def test_window_under_xvfb_shows_the_labels(synthetic_out, tmp_path):
    """The real window, on a virtual display: its screenshot has the palette colours, and the
    I key (isolate) leaves only the current label's colour."""
    if shutil.which("xvfb-run") is None:
        pytest.skip("needs xvfb-run (apt-get install xvfb) to open a window without a display")
    script = tmp_path / "drive.py"
    script.write_text(DRIVE.format(root=str(synthetic_out.root), out=str(tmp_path)))
    res = subprocess.run(["xvfb-run", "-a", "-s", "-screen 0 1280x1024x24", sys.executable,
                          str(script)], capture_output=True, text=True, timeout=300,
                         env={**os.environ, "PYTHONPATH": str(REPO)})
    if res.returncode != 0 and "cannot open a window" in res.stderr:
        pytest.skip("no OpenGL for a window under Xvfb here")
    assert res.returncode == 0, res.stderr[-2000:]
    full = cv2.imread(str(tmp_path / "all.png"))[:, :, ::-1]
    alone = cv2.imread(str(tmp_path / "isolated.png"))[:, :, ::-1]

    def has(img, lab):
        return ((img == label_colors(np.array([lab]))[0]).all(-1)).sum() > 100

    assert all(has(full, lab) for lab in (1, 2, 25))
    assert has(alone, 2) and not has(alone, 1) and not has(alone, 25)


DRIVE = """
from viewers.open3d_viewer import open_window
vis, state, view, keys = open_window({root!r}, point_size=3, width=640, height=480)
def shot(path):
    for _ in range(3):
        vis.poll_events()
        vis.update_renderer()
    vis.capture_screen_image(path, do_render=True)
shot({out!r} + "/all.png")
state.step(list(state.ids).index(2))
keys["I"](vis)
shot({out!r} + "/isolated.png")
vis.destroy_window()
"""
