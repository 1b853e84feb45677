"""Small camera helpers shared by scene generators, tests and benchmarks."""

from __future__ import annotations

import numpy as np


def look_at(eye, target, up=(0.0, 0.0, 1.0)) -> np.ndarray:
    """(4, 4) float64 camera-to-world pose, OpenCV axes (x right, y down, z forward), at
    ``eye`` looking at ``target``; ``up`` is the world's up direction (default +z)."""
    eye, target, up = (np.asarray(v, np.float64) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, z, eye
    return pose
