"""A lift3d output folder from real 7-Scenes RGB-D frames (read from ../shared, never copied).

The cloud is frame 0's depth back-projected through its real K and pose, coloured by its
image; labels are the four quadrants of the cloud around its median (x, y) — not a
segmentation, just known IDs on real geometry. Cameras of frames 0 and 5 (7-Scenes names
have a dot: ``frame-000000.color``).
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from lift3d.io.outputs import write_cameras, write_label_png, write_ply
from lift3d.types import LabelledCloud

FRAMES = ("frame-000000", "frame-000025")


def build_real_output(data: Path, root: Path):
    K = np.loadtxt(data / "camera-intrinsics.txt")
    poses = [np.loadtxt(data / "frames" / f"{f}.pose.txt") for f in FRAMES]
    images = [data / "frames" / f"{f}.color.jpg" for f in FRAMES]
    rgb = cv2.imread(str(images[0]))[:, :, ::-1]
    depth = cv2.imread(str(data / "frames" / f"{FRAMES[0]}.depth.png"), cv2.IMREAD_UNCHANGED)
    h, w = depth.shape
    valid = (depth > 0) & (depth < 65535)
    v, u = np.nonzero(valid)
    z = depth[v, u].astype(np.float64) / 1000.0
    cam = np.stack([(u - K[0, 2]) * z / K[0, 0], (v - K[1, 2]) * z / K[1, 1], z], 1)
    pts = cam @ poses[0][:3, :3].T + poses[0][:3, 3]
    med = np.median(pts[:, :2], axis=0)
    labels = (1 + (pts[:, 0] > med[0]) + 2 * (pts[:, 1] > med[1])).astype(np.int32)
    n = len(pts)
    cloud = LabelledCloud(pts.astype(np.float32), rgb[v, u].copy(), np.zeros((n, 3), np.float32),
                          labels, np.ones(n, np.float32), np.ones(n, np.int32))
    out = root / "out"
    lab_map = np.zeros((h, w), np.int32)
    lab_map[v, u] = labels
    write_label_png(out / "labels" / f"{FRAMES[0]}.color.png", lab_map)
    write_ply(out / "cloud.ply", cloud)
    names = [f"{f}.color" for f in FRAMES]
    write_cameras(out / "cameras.json", names, images, [(h, w)] * 2, [K] * 2, poses)
    return out, cloud, K, poses, names, rgb, valid
