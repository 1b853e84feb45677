"""Helpers that write small scene folders for the reader tests: a textured plane seen from known
cameras, so depth, K and poses can be checked against the geometry that made them."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

PLANE_Z = 2.0
"""The world plane every synthetic camera looks at: z = PLANE_Z (metres)."""


def intrinsics(hw: tuple[int, int], f: float = 50.0) -> np.ndarray:
    """(3, 3) pinhole K with the principal point at the image centre."""
    h, w = hw
    return np.array([[f, 0, w / 2], [0, f, h / 2], [0, 0, 1]], np.float64)


def rot_y(angle: float) -> np.ndarray:
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def pose(angle: float, t: tuple[float, float, float]) -> np.ndarray:
    """(4, 4) camera-to-world: rotation about y by ``angle`` radians, then translation ``t``."""
    T = np.eye(4)
    T[:3, :3] = rot_y(angle)
    T[:3, 3] = t
    return T


def plane_depth(K: np.ndarray, cam_to_world: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """(H, W) float64 z-depth of the plane z = PLANE_Z seen by the camera (pixel centres at
    integer coordinates, as the readers' consumers back-project)."""
    h, w = hw
    u, v = np.meshgrid(np.arange(w), np.arange(h))
    rays = np.stack([(u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1], np.ones_like(u, float)], -1)
    R, C = cam_to_world[:3, :3], cam_to_world[:3, 3]
    return (PLANE_Z - C[2]) / (rays @ R[2])


def backproject(depth: np.ndarray, K: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """(N, 3) world points of the valid depth pixels."""
    v, u = np.nonzero(depth > 0)
    z = depth[v, u]
    cam = np.stack([(u - K[0, 2]) / K[0, 0] * z, (v - K[1, 2]) / K[1, 1] * z, z], -1)
    return cam @ cam_to_world[:3, :3].T + cam_to_world[:3, 3]


def texture(hw: tuple[int, int], seed: int) -> np.ndarray:
    """(H, W, 3) uint8 smooth colour pattern (smooth so JPEG and resizing keep it)."""
    h, w = hw
    y, x = np.mgrid[0:h, 0:w]
    img = np.stack([x * 255 // max(w - 1, 1), y * 255 // max(h - 1, 1),
                    np.full_like(x, (seed * 40) % 256)], -1)
    return img.astype(np.uint8)


def write_rgb(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), rgb[:, :, ::-1])


def write_u16(path: Path, arr: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr.astype(np.uint16))


def write_matrix(path: Path, mat: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, mat)


def make_scannet(root: Path, indices=(0, 1, 2, 10), color_hw=(48, 64), depth_hw=(48, 64),
                 instance: bool = True, gt_cloud: bool = True) -> dict:
    """Write a ScanNet-export folder of a plane; returns what was written (K, poses, depth)."""
    from lift3d.io.outputs import write_ply
    from lift3d.types import LabelledCloud

    K_depth = intrinsics(depth_hw)
    K_color = K_depth.copy()
    K_color[0] *= color_hw[1] / depth_hw[1]
    K_color[1] *= color_hw[0] / depth_hw[0]
    write_matrix(root / "intrinsic" / "intrinsic_color.txt", _as4x4(K_color))
    write_matrix(root / "intrinsic" / "intrinsic_depth.txt", _as4x4(K_depth))
    poses, depths = {}, {}
    for k, i in enumerate(indices):
        T = pose(0.05 * k, (0.1 * k, -0.05 * k, 0.2))
        depth = plane_depth(K_depth, T, depth_hw)
        write_rgb(root / "color" / f"{i}.jpg", texture(color_hw, i))
        write_u16(root / "depth" / f"{i}.png", np.round(depth * 1000))
        write_matrix(root / "pose" / f"{i}.txt", T)
        if instance:
            lab = np.zeros(color_hw, np.uint16)
            lab[:, : color_hw[1] // 2] = 7
            lab[color_hw[0] // 2:, color_hw[1] // 2:] = 300
            write_u16(root / "instance" / f"{i}.png", lab)
        poses[i], depths[i] = T, depth
    if gt_cloud:
        n = 5
        pts = np.random.default_rng(0).normal(size=(n, 3)).astype(np.float32)
        write_ply(root / "gt_cloud.ply", LabelledCloud(
            points=pts, colors=np.zeros((n, 3), np.uint8), normals=np.zeros((n, 3), np.float32),
            labels=np.arange(n, dtype=np.int32), label_conf=np.ones(n, np.float32),
            n_obs=np.ones(n, np.int32)))
    return {"K_color": K_color, "K_depth": K_depth, "poses": poses, "depths": depths}


def _as4x4(K: np.ndarray) -> np.ndarray:
    M = np.eye(4)
    M[:3, :3] = K
    return M
