"""A lift3d output folder built from a known synthetic scene, for the viewer and export tests.

Three labelled objects (sphere ID 1, box ID 2, sphere ID 25 — beyond the palette's fixed
table) and one unlabelled blob, sampled as points with normals; four cameras on a ring looking
at them (off-centre principal point, frame names with a dot, as 7-Scenes has); images and label
PNGs rendered by projecting the cloud with a nearest-point z-buffer. Written with
lift3d.io.outputs, exactly as the pipeline writes it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from lift3d.cameras import look_at
from lift3d.io.outputs import write_cameras, write_label_png, write_ply
from lift3d.types import LabelledCloud

W, H = 160, 120
K = np.array([[140.0, 0.0, 81.3], [0.0, 140.0, 58.7], [0.0, 0.0, 1.0]])
# label, kind, centre, size (radius or half-edge), RGB of its points
OBJECTS = [
    (1, "sphere", (-0.6, 0.0, 0.0), 0.3, (200, 60, 40)),
    (2, "box", (0.6, 0.0, 0.0), 0.25, (40, 160, 60)),
    (25, "sphere", (0.0, -0.6, 0.0), 0.2, (50, 80, 200)),
    (0, "sphere", (0.0, 0.6, 0.0), 0.15, (180, 180, 40)),
]


@dataclass
class SyntheticOutput:
    root: Path
    cloud: LabelledCloud
    names: list[str]
    poses: list[np.ndarray]
    K: np.ndarray
    width: int
    height: int




def sample_object(kind: str, centre, size: float, n: int, rng) -> tuple[np.ndarray, np.ndarray]:
    """n surface points and unit normals of a sphere (radius) or cube (half-edge)."""
    c = np.asarray(centre, np.float64)
    if kind == "sphere":
        d = rng.normal(size=(n, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        return c + size * d, d
    axis = rng.integers(0, 3, n)
    sign = rng.choice([-1.0, 1.0], n)
    p = rng.uniform(-size, size, (n, 3))
    p[np.arange(n), axis] = sign * size
    nrm = np.zeros((n, 3))
    nrm[np.arange(n), axis] = sign
    return c + p, nrm


def synthetic_cloud(n_per_object: int = 20000, seed: int = 0) -> LabelledCloud:
    rng = np.random.default_rng(seed)
    pts, nrm, rgb, lab = [], [], [], []
    for label, kind, centre, size, colour in OBJECTS:
        p, n = sample_object(kind, centre, size, n_per_object, rng)
        pts.append(p)
        nrm.append(n)
        rgb.append(np.clip(np.asarray(colour) + rng.integers(-10, 11, (n_per_object, 3)), 0, 255))
        lab.append(np.full(n_per_object, label))
    labels = np.concatenate(lab).astype(np.int32)
    m = len(labels)
    return LabelledCloud(
        points=np.concatenate(pts).astype(np.float32),
        colors=np.concatenate(rgb).astype(np.uint8),
        normals=np.concatenate(nrm).astype(np.float32),
        labels=labels,
        label_conf=np.where(labels > 0, rng.uniform(0.5, 1.0, m), 0.0).astype(np.float32),
        n_obs=rng.integers(1, 5, m).astype(np.int32),
    )


def ring_poses(n: int = 4, radius: float = 3.0, height: float = 1.2) -> list[np.ndarray]:
    angles = np.linspace(0, 2 * np.pi, n, endpoint=False) + 0.3
    return [look_at((radius * np.cos(a), radius * np.sin(a), height), (0, 0, 0)) for a in angles]


def zbuffer_render(cloud: LabelledCloud, K: np.ndarray, cam_to_world: np.ndarray,
                   w: int, h: int) -> tuple[np.ndarray, np.ndarray]:
    """Nearest point per pixel: ((H, W, 3) uint8 image on black, (H, W) int32 labels)."""
    w2c = np.linalg.inv(cam_to_world)
    P = cloud.points.astype(np.float64) @ w2c[:3, :3].T + w2c[:3, 3]
    z = P[:, 2]
    uv = np.rint((P @ K.T)[:, :2] / z[:, None]).astype(np.int64)
    ok = (z > 0) & (uv[:, 0] >= 0) & (uv[:, 0] < w) & (uv[:, 1] >= 0) & (uv[:, 1] < h)
    idx = np.flatnonzero(ok)
    pix = uv[idx, 1] * w + uv[idx, 0]
    order = np.lexsort((z[idx], pix))
    first = np.r_[True, pix[order][1:] != pix[order][:-1]]
    win, wpix = idx[order][first], pix[order][first]
    img = np.zeros((h * w, 3), np.uint8)
    lab = np.zeros(h * w, np.int32)
    img[wpix] = cloud.colors[win]
    lab[wpix] = cloud.labels[win]
    return img.reshape(h, w, 3), lab.reshape(h, w)


def build_output(root: Path, n_per_object: int = 20000) -> SyntheticOutput:
    """Write images/ (the 'scene'), and out/{cloud.ply, cameras.json, labels/} under root."""
    cloud = synthetic_cloud(n_per_object)
    poses = ring_poses()
    names = [f"frame_{i:02d}.color" for i in range(len(poses))]
    out = root / "out"
    img_paths = []
    for name, pose in zip(names, poses, strict=True):
        img, lab = zbuffer_render(cloud, K, pose, W, H)
        p = root / "scene" / f"{name}.png"
        p.parent.mkdir(parents=True, exist_ok=True)
        cv2.imwrite(str(p), img[:, :, ::-1])
        img_paths.append(p)
        write_label_png(out / "labels" / f"{name}.png", lab)
    write_ply(out / "cloud.ply", cloud)
    write_cameras(out / "cameras.json", names, img_paths, [(H, W)] * len(names),
                  [K] * len(names), poses)
    return SyntheticOutput(out, cloud, names, poses, K, W, H)
