"""Readers and writers of lift3d's output folder (DESIGN.md, "Output folder").

``out/labels/<frame>.png``  uint16 ID maps (0 = unlabelled), input resolution.
``out/cloud.ply``           binary PLY: x,y,z,nx,ny,nz (float32), red,green,blue (uint8),
                            label (int32), confidence (float32); plus n_obs (int32).
``out/cameras.json``        per frame: name, image path, width, height, K (3x3),
                            cam_to_world (4x4, OpenCV axes) — see :func:`write_cameras`.
``out/report.json``         config, timings, H(I,M), quality figures.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lift3d.errors import InputError
from lift3d.io.atomic import write_json, write_with
from lift3d.types import LabelledCloud

CAMERAS_CONVENTION = "OpenCV axes (x right, y down, z forward); cam_to_world maps camera to world"

PLY_FIELDS = [
    ("x", "<f4"), ("y", "<f4"), ("z", "<f4"),
    ("nx", "<f4"), ("ny", "<f4"), ("nz", "<f4"),
    ("red", "u1"), ("green", "u1"), ("blue", "u1"),
    ("label", "<i4"), ("confidence", "<f4"), ("n_obs", "<i4"),
]
_PLY_TYPES = {"<f4": "float", "u1": "uchar", "<i4": "int"}


def write_label_png(path: str | Path, labels: np.ndarray) -> None:
    """Write an (H, W) ID map as a 16-bit PNG, atomically. IDs must fit in uint16."""
    import cv2

    if labels.size and (labels.min() < 0 or labels.max() > 65535):
        raise ValueError(f"label IDs out of uint16 range: [{labels.min()}, {labels.max()}]")
    arr = labels.astype(np.uint16)
    write_with(path, lambda tmp: _imwrite_or_raise(cv2, tmp, arr))


def _imwrite_or_raise(cv2, tmp: Path, arr: np.ndarray) -> None:
    if not cv2.imwrite(str(tmp), arr):
        raise OSError(f"could not write {tmp}")


def read_label_png(path: str | Path) -> np.ndarray:
    """Read a 16-bit (or 8-bit) ID map PNG as (H, W) int32."""
    import cv2

    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise InputError("cannot read label image", path, "is it a PNG written by lift3d?")
    if arr.ndim != 2:
        raise InputError(f"label image has {arr.ndim} dims, expected a single channel", path)
    return arr.astype(np.int32)


def write_ply(path: str | Path, cloud: LabelledCloud) -> None:
    """Write a labelled cloud as binary little-endian PLY (fields :data:`PLY_FIELDS`)."""
    n = len(cloud)
    data = np.empty(n, dtype=PLY_FIELDS)
    for k, name in enumerate("xyz"):
        data[name] = cloud.points[:, k]
        data["n" + name] = cloud.normals[:, k]
    for k, name in enumerate(("red", "green", "blue")):
        data[name] = cloud.colors[:, k]
    data["label"] = cloud.labels
    data["confidence"] = cloud.label_conf
    data["n_obs"] = cloud.n_obs
    header = ["ply", "format binary_little_endian 1.0", f"element vertex {n}"]
    header += [f"property {_PLY_TYPES[t]} {name}" for name, t in PLY_FIELDS]
    header.append("end_header")
    blob = ("\n".join(header) + "\n").encode("ascii") + data.tobytes()
    write_with(path, lambda tmp: tmp.write_bytes(blob))


def read_ply(path: str | Path) -> LabelledCloud:
    """Read a PLY written by :func:`write_ply` (or any PLY with x,y,z and optional fields)."""
    from lift3d.io.common import read_ply_vertices

    v = read_ply_vertices(path)
    names = v.dtype.names
    n = len(v)

    def col(name, dtype, default=0):
        return np.asarray(v[name], dtype) if name in names else np.full(n, default, dtype)

    pts = np.stack([col(c, np.float32) for c in "xyz"], 1)
    nrm = np.stack([col(c, np.float32) for c in ("nx", "ny", "nz")], 1)
    rgb = np.stack([col(c, np.uint8, 128) for c in ("red", "green", "blue")], 1)
    return LabelledCloud(
        points=pts, colors=rgb, normals=nrm, labels=col("label", np.int32),
        label_conf=col("confidence", np.float32), n_obs=col("n_obs", np.int32, 1),
    )


def write_cameras(path: str | Path, names, image_paths, sizes, Ks, poses) -> None:
    """Write ``cameras.json``: one entry per frame.

    sizes: (H, W) per frame; Ks: (3, 3) per frame or None; poses: (4, 4) camera-to-world per
    frame or None.
    """
    frames = []
    for name, img, (h, w), K, pose in zip(names, image_paths, sizes, Ks, poses):
        frames.append({
            "name": name,
            "image": None if img is None else str(Path(img).resolve()),
            "width": int(w),
            "height": int(h),
            "K": None if K is None else np.asarray(K, float).tolist(),
            "cam_to_world": None if pose is None else np.asarray(pose, float).tolist(),
        })
    write_json(path, {"convention": CAMERAS_CONVENTION, "frames": frames})


def read_cameras(path: str | Path) -> list[dict]:
    """Read ``cameras.json``; K and cam_to_world come back as numpy arrays (or None)."""
    try:
        doc = json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"cannot read cameras file ({err})", path) from err
    out = []
    for f in doc["frames"]:
        f = dict(f)
        for key in ("K", "cam_to_world"):
            f[key] = None if f.get(key) is None else np.asarray(f[key], np.float64)
        out.append(f)
    return out
