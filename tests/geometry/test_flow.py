"""Flow geometry: matches from DIS optical flow with a forward-backward check."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lift3d.geometry.flow import FlowConfig, FlowGeometry, checked_matches
from lift3d.types import Frame, Scene


def textured(h: int, w: int, seed: int = 0) -> np.ndarray:
    import cv2

    rng = np.random.default_rng(seed)
    noise = rng.uniform(0, 255, (h // 4, w // 4, 3)).astype(np.uint8)
    return cv2.resize(noise, (w, h), interpolation=cv2.INTER_CUBIC)


def shifted_scene(dx: int, dy: int, n: int = 3) -> Scene:
    big = textured(160, 200)
    frames = [
        Frame(image=np.ascontiguousarray(big[20 + k * dy : 140 + k * dy, 20 + k * dx : 180 + k * dx]),
              name=str(k))
        for k in range(n)
    ]
    return Scene(frames=frames, source=Path("."), layout="images")


def test_flow_recovers_a_known_translation():
    # frame k+1 shows the content of frame k moved by (-2, -1) pixels
    geo = FlowGeometry()(shifted_scene(2, 1))
    assert geo.kind == "2d" and geo.points is None
    m = geo.matches(0, 1)
    interior = (m.xy_i[:, 0] > 10) & (m.xy_i[:, 0] < 150) & (m.xy_i[:, 1] > 10) & (m.xy_i[:, 1] < 110)
    d = m.xy_j[interior] - m.xy_i[interior]
    assert interior.sum() > 0.8 * 140 * 100
    assert (np.abs(d - [-2, -1]).max(1) == 0).mean() > 0.95
    assert m.conf[interior].mean() > 0.8


def test_chained_matches_compose_steps():
    geo = FlowGeometry()(shifted_scene(2, 1))
    m = geo.matches(0, 2)
    interior = (m.xy_i[:, 0] > 15) & (m.xy_i[:, 0] < 140) & (m.xy_i[:, 1] > 15) & (m.xy_i[:, 1] < 100)
    d = m.xy_j[interior] - m.xy_i[interior]
    assert (np.abs(d - [-4, -2]).max(1) == 0).mean() > 0.9
    back = geo.matches(2, 0)
    assert len(back) > 0.8 * len(m)


def test_forward_backward_check_drops_inconsistent_pixels():
    h, w = 10, 12
    fwd = np.zeros((h, w, 2), np.float32)
    fwd[..., 0] = 1.0
    bwd = np.zeros((h, w, 2), np.float32)
    bwd[..., 0] = -1.0
    bwd[5, 6] = (4.0, 4.0)  # pixel (5, 5) goes to (6, 5) and comes back far away
    xy_i, xy_j, conf = checked_matches(fwd, bwd, FlowConfig(max_fb_error=3.0))
    pairs = {tuple(p) for p in xy_i}
    assert (5, 5) not in pairs  # x=5, y=5
    assert (w - 1, 0) not in pairs  # leaves the image
    np.testing.assert_array_equal(xy_j - xy_i, np.tile([1, 0], (len(xy_i), 1)))
    assert np.allclose(conf, 1.0)


def test_flow_on_real_davis_frames(shared):
    import cv2

    seq = shared("data", "davis2016_480p")
    jpgs = sorted(seq.rglob("blackswan/*.jpg"))[:3]
    assert jpgs, f"no blackswan frames under {seq}"
    frames = [Frame(image=cv2.imread(str(p))[..., ::-1].copy(), name=p.stem) for p in jpgs]
    geo = FlowGeometry(preset="fast")(Scene(frames, seq, "images"))
    m = geo.matches(0, 1)
    h, w = frames[0].hw
    assert len(m) > 0.7 * h * w  # slow camera pan: most pixels match
    # matched pixels look alike (photometric consistency)
    a = frames[0].image[m.xy_i[:, 1], m.xy_i[:, 0]].astype(float)
    b = frames[1].image[m.xy_j[:, 1], m.xy_j[:, 0]].astype(float)
    assert np.median(np.abs(a - b).mean(1)) < 10
