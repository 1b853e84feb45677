"""Readers of the exported layouts written from their specs, in each consumer's conventions,
and the reference projection through lift3d's own cameras."""

from pathlib import Path

import cv2
import numpy as np


def reference_pixels(points, K, cam_to_world):
    """(N, 3) world points -> ((N, 2) pixel-index coords, (N,) z) via lift3d's convention."""
    w2c = np.linalg.inv(cam_to_world)
    P = points.astype(np.float64) @ w2c[:3, :3].T + w2c[:3, 3]
    return (P @ K.T)[:, :2] / P[:, 2:3], P[:, 2]


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


def nerfstudio_project(points, frame):
    """Project as an OpenGL camera: camera looks down -z, image y grows downwards from +y up."""
    c2w = np.asarray(frame["transform_matrix"])
    R, t = c2w[:3, :3], c2w[:3, 3]
    p = (points - t) @ R  # world -> OpenGL camera
    depth = -p[:, 2]
    u = frame["fl_x"] * p[:, 0] / depth + frame["cx"]
    v = -frame["fl_y"] * p[:, 1] / depth + frame["cy"]
    return np.stack([u, v], 1), depth


def check_colmap_model(dest, synthetic_out):
    """Shared with the Gaussian Grouping test: layout, cameras, round trip of every point."""
    sparse = dest / "sparse" / "0"
    cams = read_cameras_txt(sparse / "cameras.txt")
    imgs = read_images_txt(sparse / "images.txt")
    assert len(imgs) == len(synthetic_out.names) == len(cams)
    pts = synthetic_out.cloud.points.astype(np.float64)
    by_name = {}
    for img, name, pose in zip(
            sorted(imgs.values(), key=lambda m: m["name"]), synthetic_out.names,
            synthetic_out.poses, strict=True):
        cam = cams[img["camera_id"]]
        assert cam["model"] == "PINHOLE"
        assert (cam["width"], cam["height"]) == (synthetic_out.width, synthetic_out.height)
        assert img["name"] == name.replace(".", "_") + ".png"
        picture = cv2.imread(str(dest / "images" / img["name"]))
        assert picture is not None and picture.shape == (synthetic_out.height,
                                                         synthetic_out.width, 3)
        uv_colmap, z = colmap_project(pts, cam, img)
        uv_ref, z_ref = reference_pixels(pts, synthetic_out.K, pose)
        # COLMAP's top-left pixel centre is (0.5, 0.5); lift3d's is (0, 0)
        assert np.abs(uv_colmap - 0.5 - uv_ref).max() < 1e-3
        np.testing.assert_allclose(z, z_ref, atol=1e-9)
        by_name[img["name"]] = img
    return sparse, by_name
