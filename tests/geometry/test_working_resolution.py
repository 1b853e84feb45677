"""Working resolution (lift3d/geometry/working_resolution.py): shrink for the run, grow back for the
outputs, exactly invertible; K follows the resize."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lift3d.cameras import scale_intrinsics
from lift3d.geometry.working_resolution import (
    grow_labels,
    memory_warning,
    shrink_labels,
    working_hw,
)


@settings(max_examples=60, deadline=None)
@given(h=st.integers(16, 300), w=st.integers(16, 300), max_side=st.integers(16, 120),
       seed=st.integers(0, 2**16))
def test_shrink_inverts_grow_exactly(h, w, max_side, seed):
    """What a resumed run reads back (shrink of the written map) is what it wrote."""
    work = working_hw((h, w), max_side)
    assert max(work) <= max(max_side, 1) or work == (h, w)
    labels = np.random.default_rng(seed).integers(0, 50, work).astype(np.int32)
    grown = grow_labels(labels, (h, w))
    assert grown.shape == (h, w)
    np.testing.assert_array_equal(shrink_labels(grown, max_side), labels)


def test_working_size_keeps_the_aspect_and_leaves_small_frames_alone():
    assert working_hw((4000, 6000), 1500) == (1000, 1500)
    assert working_hw((480, 640), 1500) == (480, 640)
    assert working_hw((480, 640), None) == (480, 640)


def test_scaled_intrinsics_map_the_image_edges_onto_each_other():
    K = np.array([[500.0, 0, 299.5], [0, 510.0, 199.5], [0, 0, 1]])
    K2 = scale_intrinsics(K, 150 / 600, 100 / 400)  # (H, W) 400x600 -> 100x150
    A = K2 @ np.linalg.inv(K)  # input pixel -> working pixel, same ray
    for x, y, x2, y2 in [(-0.5, -0.5, -0.5, -0.5), (599.5, 399.5, 149.5, 99.5),
                         (299.5, 199.5, 74.5, 49.5)]:
        p = A @ np.array([x, y, 1.0])
        np.testing.assert_allclose(p[:2] / p[2], [x2, y2], atol=1e-9)


def test_memory_warning_suggests_a_max_side_that_fits():
    gib = 2**30
    msg = memory_warning((4000, 6000), available=6 * gib)
    assert msg is not None and "6000x4000" in msg and "--max-side" in msg
    side = int(msg.rsplit("--max-side ", 1)[1].split()[0])
    h, w = working_hw((4000, 6000), side)
    assert memory_warning((h, w), available=6 * gib) is None
    assert memory_warning((480, 640), available=6 * gib) is None


@pytest.mark.parametrize("max_side", [None, 10_000])
def test_no_working_resolution_is_the_identity(max_side):
    lab = np.arange(12, dtype=np.int32).reshape(3, 4)
    assert shrink_labels(lab, max_side) is lab
    assert grow_labels(lab, (3, 4)) is lab


def test_an_estimated_K_reaches_the_input_resolution():
    """An image folder's frames carry no K; MASt3R estimates one at the working resolution.
    ``cameras.json`` gets it scaled back to the input size (old main wrote the frame's K,
    None, for every frame read at --max-side: the estimate was lost)."""
    from pathlib import Path

    from lift3d.geometry.working_resolution import WorkingScene
    from lift3d.types import Frame, LazyFrames, Scene

    frames = LazyFrames(["0"], lambda k: Frame(np.zeros((400, 600, 3), np.uint8), "0"))
    work = WorkingScene(Scene(frames, Path("."), "images"), max_side=150)
    f = work.scene.frames[0]
    assert f.hw == (100, 150) and f.K is None
    K_work = np.array([[120.0, 0, 74.5], [0, 120.0, 49.5], [0, 0, 1]])
    hw, K = work.camera(0, f.hw, K_work)
    assert hw == (400, 600)
    np.testing.assert_array_equal(K, scale_intrinsics(K_work, 4.0, 4.0))
    with_K = LazyFrames(["0"], lambda k: Frame(np.zeros((400, 600, 3), np.uint8), "0",
                                                K=np.diag([500.0, 500.0, 1.0])))
    work = WorkingScene(Scene(with_K, Path("."), "scannet"), max_side=150)
    f = work.scene.frames[0]
    np.testing.assert_array_equal(work.camera(0, f.hw, f.K)[1], np.diag([500.0, 500.0, 1.0]))
