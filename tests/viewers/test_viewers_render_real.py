"""Renders of real 7-Scenes geometry: a frame's own points seen through its own real camera
land back on their pixels with their colours."""

import numpy as np
import pytest

from lift3d.errors import BackendUnavailable
from viewers.render import RenderConfig, render_scene
from viewers.scene import load_view_scene


@pytest.mark.parametrize("backend,share", [("numpy", 1.0), ("open3d", 0.999)])
def test_frame_points_reproject_onto_their_pixels(real_out, backend, share):
    out, cloud, K, poses, names, rgb, valid = real_out
    scene = load_view_scene(out)
    cfg = RenderConfig(color_by="rgb", point_size=1, backend=backend, frustums=False,
                       background=(255, 0, 255))
    try:
        img = render_scene(scene, scene.camera(names[0]), cfg)
    except BackendUnavailable as err:
        pytest.skip(str(err))
    assert img.shape == rgb.shape
    close = np.abs(img[valid].astype(int) - rgb[valid]).max(1) <= 3
    assert close.mean() >= share, close.mean()
    # no depth -> no point -> background (the one-pixel border is left to rasteriser rounding)
    empty = ~valid
    empty[[0, -1], :] = False
    empty[:, [0, -1]] = False
    assert (img[empty] == (255, 0, 255)).all(1).mean() >= share
