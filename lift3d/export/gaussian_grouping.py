"""``lift3d export OUT --to gaussian-grouping``: the COLMAP layout plus identity masks.

Gaussian Grouping (Ye et al., ECCV 2024) trains its per-Gaussian identity encodings from
``object_mask/<image stem>.png`` beside ``images/`` and ``sparse/0/``: one object ID per pixel,
the same ID for the same object in every view (its own masks come from DEVA with
``--use_short_id``: 8-bit grey PNGs, 0 = background). Its classifier has ``num_classes``
outputs (``config/gaussian_dataset/train.json``, and ``render.py --num_classes``), so every
mask value must be below it.

lift3d IDs are already consistent across views but may be large and sparse; they are renumbered
1..K in increasing order (0 stays background) with one table for all frames, written to
``gaussian_grouping.json`` together with ``num_classes = K + 1`` and a train config to pass as
``--config_file``. Masks are 8-bit when K < 256, else 16-bit. The masks have the images'
resolution: train with ``-r 1``.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lift3d.errors import InputError
from lift3d.export.base import OutputFolder, load_output, read_frame_labels
from lift3d.export.colmap import write_colmap_model
from lift3d.io.atomic import write_json, write_with

# Gaussian Grouping's defaults from config/gaussian_dataset/train.json; only num_classes changes.
TRAIN_DEFAULTS = {
    "densify_until_iter": 10000,
    "reg3d_interval": 5,
    "reg3d_k": 5,
    "reg3d_lambda_val": 2,
    "reg3d_max_points": 200000,
    "reg3d_sample_size": 1000,
}


def export_gaussian_grouping(out_dir: str | Path, dest: str | Path,
                             points_txt: bool = True) -> Path:
    """Write images/, sparse/0/, object_mask/ and gaussian_grouping.json into ``dest``.

    Returns the path of ``gaussian_grouping.json`` (holds ``num_classes`` and the ID table).
    """
    out = load_output(out_dir)
    dest = Path(dest)
    write_colmap_model(out, dest, points_txt=points_txt)
    return write_object_masks(out, dest)


def write_object_masks(out: OutputFolder, dest: Path, folder: str = "object_mask") -> Path:
    """Write renumbered per-view ID masks and the ID table; returns the json path."""
    maps = [read_frame_labels(f) for f in out.frames]
    for f, m in zip(out.frames, maps, strict=True):
        if m.shape != (f.height, f.width):
            raise InputError(f"label map is {m.shape[1]}x{m.shape[0]}, camera is "
                             f"{f.width}x{f.height}", f.labels, "re-run `lift3d segment`")
    ids = id_table(maps, out.cloud.labels)
    dtype = np.uint8 if len(ids) < 256 else np.uint16
    for f, m in zip(out.frames, maps, strict=True):
        mask = renumber(m, ids).astype(dtype)
        write_with(dest / folder / f"{f.stem}.png", lambda tmp, a=mask: _imwrite(tmp, a))
    num_classes = len(ids) + 1
    doc = {
        "num_classes": num_classes,
        "mask_folder": folder,
        "mask_id_to_lift3d_id": {str(k + 1): int(v) for k, v in enumerate(ids)},
        "train_config": {**TRAIN_DEFAULTS, "num_classes": num_classes},
    }
    write_json(dest / "gaussian_grouping_train.json", doc["train_config"])
    path = dest / "gaussian_grouping.json"
    write_json(path, doc)
    return path


def id_table(maps: list[np.ndarray], cloud_labels: np.ndarray) -> np.ndarray:
    """Sorted lift3d IDs > 0 seen in any frame or in the cloud: mask ID k+1 names ids[k]."""
    parts = [np.unique(m) for m in maps] + [np.unique(cloud_labels)]
    u = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
    return u[u > 0].astype(np.int64)


def renumber(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Map lift3d IDs to 1..K by their rank in ``ids`` (0 and unknown IDs -> 0)."""
    if len(ids) == 0:
        return np.zeros(np.shape(labels), np.int64)
    pos = np.clip(np.searchsorted(ids, labels), 0, len(ids) - 1)
    return np.where(ids[pos] == labels, pos + 1, 0).astype(np.int64)


def _imwrite(tmp: Path, arr: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(tmp), arr):
        raise OSError(f"could not write {tmp}")
