"""Headless renders checked as a person sees them: known objects of known labels, rendered
from a known camera — each object's palette colour where it projects, background elsewhere."""

import cv2
import numpy as np
import pytest
from scipy import ndimage

from lift3d.errors import BackendUnavailable
from lift3d.io.outputs import read_label_png
from lift3d.palette import label_colors
from lift3d.types import LabelledCloud
from viewers.render import RenderConfig, legend_box, render_scene
from viewers.scene import ViewCamera, ViewScene, load_view_scene
from viewers.view import view_cmd

BACKGROUND = (255, 255, 255)


def truth(synthetic_out, name):
    """Ground truth of a frame: (H, W) labels of the nearest point, (H, W) covered mask."""
    labels = read_label_png(synthetic_out.root / "labels" / f"{name}.png")
    image = cv2.imread(str(synthetic_out.root.parent / "scene" / f"{name}.png"))
    return labels, image.any(axis=2)


def interior(mask, r=2):
    return ndimage.binary_erosion(mask, np.ones((2 * r + 1, 2 * r + 1), bool))


def far_from(covered, px):
    return ndimage.distance_transform_edt(~covered) > px


def render(synthetic_out, name, backend, **kw):
    scene = load_view_scene(synthetic_out.root)
    cfg = RenderConfig(backend=backend, point_size=3, **kw)
    try:
        return scene, render_scene(scene, scene.camera(name), cfg)
    except BackendUnavailable as err:
        pytest.skip(str(err))


def check_picture(synthetic_out, name, img, min_share):
    labels, covered = truth(synthetic_out, name)
    seen = 0
    for lab in (1, 2, 25):
        inside = interior(covered & (labels == lab))
        if not inside.any():
            continue
        seen += 1
        match = (np.abs(img[inside].astype(int) - label_colors(np.array([lab]))[0]).max(1) <= 2)
        assert match.mean() >= min_share, (name, lab, match.mean())
    assert seen >= 2
    bg = far_from(covered, 4)
    is_bg = (img[bg] == BACKGROUND).all(1)
    assert is_bg.mean() >= min_share, (name, is_bg.mean())


def check_centres(synthetic_out, name, img, scene):
    """At each object's projected centre, where the object is the visible one, its colour."""
    labels, _ = truth(synthetic_out, name)
    cam = scene.camera(name)
    from _synthetic_output import OBJECTS

    checked = 0
    for lab, _, centre, _, _ in OBJECTS:
        if lab == 0:
            continue
        P = cam.world_to_cam[:3, :3] @ centre + cam.world_to_cam[:3, 3]
        u, v = np.rint((cam.K @ P)[:2] / P[2]).astype(int)
        if (labels[v - 2:v + 3, u - 2:u + 3] == lab).all():
            assert tuple(img[v, u]) == tuple(label_colors(np.array([lab]))[0]), (name, lab)
            checked += 1
    assert checked >= 1


@pytest.mark.parametrize("frame", [0, 1, 2, 3])
def test_numpy_render_is_exact(synthetic_out, frame):
    name = synthetic_out.names[frame]
    scene, img = render(synthetic_out, name, "numpy", frustums=False)
    assert img.shape == (synthetic_out.height, synthetic_out.width, 3)
    check_picture(synthetic_out, name, img, min_share=1.0)
    check_centres(synthetic_out, name, img, scene)


@pytest.mark.slow
def test_open3d_offscreen_render_matches(synthetic_out):
    name = synthetic_out.names[1]
    scene, img = render(synthetic_out, name, "open3d", frustums=False)
    assert img.shape == (synthetic_out.height, synthetic_out.width, 3)
    check_picture(synthetic_out, name, img, min_share=0.995)
    check_centres(synthetic_out, name, img, scene)


def test_frustum_of_another_camera_is_drawn():
    K = np.array([[100.0, 0, 63.5], [0, 100.0, 47.5], [0, 0, 1]])
    a = ViewCamera("a", K, np.eye(4), 128, 96)
    b_pose = np.eye(4)
    b_pose[:3, 3] = [0.2, 0.1, 2.0]
    b = ViewCamera("b", K, b_pose, 128, 96)
    cloud = LabelledCloud(np.array([[0, 0, 50.0]], np.float32), np.zeros((1, 3), np.uint8),
                          np.zeros((1, 3), np.float32), np.array([1], np.int32),
                          np.ones(1, np.float32), np.ones(1, np.int32))
    scene = ViewScene(cloud, [a, b])
    img = render_scene(scene, a, RenderConfig(backend="numpy", frustum_rgb=(0, 0, 255)))
    u, v = np.rint(K[:2, :2] @ [0.1, 0.05] + K[:2, 2]).astype(int)  # b's centre seen from a
    assert tuple(img[v, u]) == (0, 0, 255)
    assert (img == (0, 0, 255)).all(-1).sum() > 50  # lines, not a dot
    # a's own frustum is not drawn over the picture it is the camera of
    assert (img[:5] == BACKGROUND).all()


def test_view_cmd_renders_overview_png(synthetic_out, tmp_path, capsys):
    out = tmp_path / "view.png"
    view_cmd(synthetic_out.root, render=out, point_size=3, backend="numpy")
    assert "wrote" in capsys.readouterr().out
    img = cv2.imread(str(out))[:, :, ::-1]
    assert img.shape == (720, 960, 3)
    w, h = legend_box(img.shape, 3)
    body = img.copy()
    body[:h, :w] = BACKGROUND
    for lab in (1, 2, 25):
        assert ((body == label_colors(np.array([lab]))[0]).all(-1)).sum() > 2000
    assert ((body == (128, 128, 128)).all(-1)).sum() > 500  # the unlabelled blob is grey
    assert (body == BACKGROUND).all(-1).mean() > 0.5
    # the legend lists the labels with their swatches
    legend_area = img[:h, :w]
    for lab in (1, 2, 25):
        assert (legend_area == label_colors(np.array([lab]))[0]).all(-1).any()


def test_view_cmd_rgb_from_a_frame_looks_like_the_frame(synthetic_out, tmp_path):
    name = synthetic_out.names[2]
    out = tmp_path / "rgb.png"
    view_cmd(synthetic_out.root, render=out, camera=name, color_by="rgb", point_size=3,
             backend="numpy")
    img = cv2.imread(str(out))
    src = cv2.imread(str(synthetic_out.root.parent / "scene" / f"{name}.png"))
    labels, covered = truth(synthetic_out, name)
    inside = np.any([interior(covered & (labels == lab)) for lab in (0, 1, 2, 25)], axis=0)
    assert inside.sum() > 1000
    # the same surface under every pixel: object colours carry +-10 noise per point, so two
    # points of one object differ by at most 20; a point of another object by far more
    assert np.abs(img[inside].astype(int) - src[inside]).max() <= 20


@pytest.mark.slow
def test_auto_falls_back_to_numpy_when_vulkan_has_no_driver(synthetic_out, tmp_path):
    """Where Filament would abort the process, `lift3d view --render` still draws, and says so."""
    import os
    import subprocess
    import sys

    out = tmp_path / "auto.png"
    code = ("from viewers.view import view_cmd; "
            f"view_cmd({str(synthetic_out.root)!r}, render={str(out)!r})")
    env = {**os.environ, "VK_ICD_FILENAMES": str(tmp_path / "no_driver.json")}
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True,
                         timeout=300)
    assert res.returncode == 0, res.stderr[-2000:]
    assert "rendering with numpy instead" in res.stderr
    img = cv2.imread(str(out))[:, :, ::-1]
    for lab in (1, 2, 25):
        assert ((img == label_colors(np.array([lab]))[0]).all(-1)).sum() > 2000


def test_auto_picks_numpy_for_big_clouds_on_a_software_device():
    from viewers.render import _auto_backend, open3d_device_is_software, open3d_offscreen_problem

    if open3d_offscreen_problem() is not None:
        assert _auto_backend(10, RenderConfig()) == "numpy"
        return
    assert _auto_backend(10, RenderConfig()) == "open3d"
    big = _auto_backend(10, RenderConfig(software_vulkan_max_points=5))
    assert big == ("numpy" if open3d_device_is_software() else "open3d")
