"""Reference projection through lift3d's own cameras (OpenCV axes, pixel-index K)."""

import numpy as np


def reference_pixels(points, K, cam_to_world):
    """(N, 3) world points -> ((N, 2) pixel-index coords, (N,) z) via lift3d's convention."""
    w2c = np.linalg.inv(cam_to_world)
    P = points.astype(np.float64) @ w2c[:3, :3].T + w2c[:3, 3]
    return (P @ K.T)[:, :2] / P[:, 2:3], P[:, 2]
