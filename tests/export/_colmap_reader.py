"""A COLMAP text-model reader written from the format spec, the way 3DGS's loader reads it."""

from pathlib import Path

import numpy as np


def _data_lines(path: Path, keep_empty: bool = False):
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            continue
        if line.strip() or keep_empty:
            yield line.strip()


def read_cameras_txt(path: Path) -> dict:
    cams = {}
    for line in _data_lines(path):
        e = line.split()
        cams[int(e[0])] = {"model": e[1], "width": int(e[2]), "height": int(e[3]),
                           "params": np.array([float(x) for x in e[4:]])}
    return cams


def read_images_txt(path: Path) -> dict:
    """Image lines come in pairs (pose line, POINTS2D line, possibly empty)."""
    lines = list(_data_lines(path, keep_empty=True))
    images = {}
    i = 0
    while i < len(lines):
        if not lines[i]:
            i += 1
            continue
        e = lines[i].split()
        images[int(e[0])] = {"qvec": np.array([float(x) for x in e[1:5]]),
                             "tvec": np.array([float(x) for x in e[5:8]]),
                             "camera_id": int(e[8]), "name": e[9]}
        i += 2  # skip this image's POINTS2D line
    return images


def read_points3d_txt(path: Path):
    rows = [line.split() for line in _data_lines(path)]
    xyz = np.array([[float(x) for x in r[1:4]] for r in rows])
    rgb = np.array([[int(x) for x in r[4:7]] for r in rows])
    return xyz, rgb


def qvec2rotmat(q):
    w, x, y, z = q
    return np.array([
        [1 - 2 * y * y - 2 * z * z, 2 * x * y - 2 * w * z, 2 * z * x + 2 * w * y],
        [2 * x * y + 2 * w * z, 1 - 2 * x * x - 2 * z * z, 2 * y * z - 2 * w * x],
        [2 * z * x - 2 * w * y, 2 * y * z + 2 * w * x, 1 - 2 * x * x - 2 * y * y],
    ])


def colmap_project(points, cam, img):
    """Project with a PINHOLE camera; returns COLMAP pixel coords (top-left centre at 0.5)."""
    fx, fy, cx, cy = cam["params"]
    P = points @ qvec2rotmat(img["qvec"]).T + img["tvec"]
    return np.stack([fx * P[:, 0] / P[:, 2] + cx, fy * P[:, 1] / P[:, 2] + cy], 1), P[:, 2]
