"""Image preparation: MASt3R's sizes, and exact maps between original and network pixels."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from lift3d.errors import InputError, ShapeError
from lift3d.geometry.mast3r.preprocess import (
    pixel_to_network,
    pixel_to_original,
    plan,
    prepare_image,
    resample_to_original,
    to_network,
    to_original,
)


@pytest.mark.parametrize(
    "hw, resized, net, crop",
    [
        ((480, 640), (384, 512), (384, 512), (0, 0)),
        ((1080, 1920), (288, 512), (288, 512), (0, 0)),
        ((640, 480), (512, 384), (512, 384), (0, 0)),
        ((333, 500), (341, 512), (336, 512), (0, 2)),  # upscaled, height cropped to 21*16
        ((600, 600), (512, 512), (384, 512), (0, 64)),  # square runs at 4:3
        ((968, 1296), (382, 512), (368, 512), (0, 7)),  # ScanNet colour frames
    ],
)
def test_plan_sizes(hw, resized, net, crop):
    p = plan(hw)
    assert p.resized_hw == resized and p.net_hw == net and p.crop_xy == crop
    assert p.net_hw[0] % 16 == 0 and p.net_hw[1] % 16 == 0


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(40, 2000), w=st.integers(40, 2000),
    fx=st.floats(0, 1), fy=st.floats(0, 1),
)
def test_round_trips(h, w, fx, fy):
    assume(max(h, w) / min(h, w) < 10)  # thinner images leave no 16-pixel row
    p = plan((h, w))
    xy = np.array([fx * w, fy * h])
    np.testing.assert_allclose(to_original(to_network(xy, p), p), xy, rtol=0, atol=1e-9)
    # a network pixel's original pixel maps back into it (downscaling: every one does;
    # upscaling: the original pixel holding its centre covers it)
    xs, ys = np.meshgrid(np.arange(p.net_hw[1]), np.arange(p.net_hw[0]))
    xy_n = np.stack([xs, ys], -1)[:: max(1, p.net_hw[0] // 7), :: max(1, p.net_hw[1] // 7)]
    xy_o = pixel_to_original(xy_n, p)
    assert (xy_o >= 0).all() and (xy_o < [w, h]).all()
    back, inside = pixel_to_network(xy_o, p)
    if max(h, w) >= 512:
        assert inside.all()
        np.testing.assert_array_equal(back, xy_n)
    else:  # each original pixel covers a block of network pixels (its centre may lie
        # outside the crop)
        assert (np.abs(back - xy_n) <= np.ceil(512 / max(h, w))).all()


def test_prepare_image_values_and_crop():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (600, 800, 3), dtype=np.uint8)
    x, p = prepare_image(img)
    assert tuple(x.shape) == (3, 384, 512) and p.orig_hw == (600, 800)
    assert x.min() >= -1 and x.max() <= 1
    flat = np.zeros((480, 640, 3), np.uint8) + np.array([0, 128, 255], np.uint8)
    x, _ = prepare_image(flat)
    np.testing.assert_allclose(x[:, 10, 10].numpy(), [-1, 128 / 127.5 - 1, 1], atol=1e-6)
    with pytest.raises(ShapeError):
        prepare_image(img[..., 0])
    with pytest.raises(InputError, match="too small"):
        prepare_image(img[:10])


def test_resample_to_original_marks_outside_crop_invalid():
    p = plan((600, 600))  # square: rows 64..448 of the 512x512 resize are kept
    h, w = p.net_hw
    yy, xx = np.mgrid[0:h, 0:w]
    grid = np.stack([xx, yy], -1).astype(np.float32)
    out, inside = resample_to_original(grid, p)
    assert out.shape == (600, 600, 2) and inside.shape == (600, 600)
    rows = np.flatnonzero(inside.all(1))
    assert rows[0] == 75 and rows[-1] == 524  # 64 / (512/600) = 75, 448 / (512/600) = 525
    assert not inside[:75].any() and (out[~inside] == 0).all()
    # each kept pixel reads the network pixel containing its centre
    xy_n, ok = pixel_to_network(np.array([[300, 300], [0, 200]]), p)
    assert ok.all()
    np.testing.assert_array_equal(out[300, 300], xy_n[0])
    np.testing.assert_array_equal(out[200, 0], xy_n[1])
