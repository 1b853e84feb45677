"""``lift3d export OUT --to gaussian-grouping``: the COLMAP layout plus identity masks.

Gaussian Grouping (Ye et al., ECCV 2024) trains its per-Gaussian identity encodings from
``object_mask/<image stem>.png`` beside ``images/`` and ``sparse/0/``: one object ID per pixel,
the same ID for the same object in every view (its own masks come from DEVA with
``--use_short_id``: 8-bit grey PNGs, 0 = background). Its classifier has ``num_classes``
outputs (``config/gaussian_dataset/train.json``: 256, and ``render.py --num_classes``), so
every mask value must be below it; its loader turns a mask into a tensor with
``torch.from_numpy``, which the torch it documents cannot do for uint16.

lift3d IDs are already consistent across views but may be large and sparse; they are renumbered
1..K in increasing order (0 stays background) with one table for all frames, written to
``gaussian_grouping.json`` together with ``num_classes = K + 1`` and a train config to pass as
``--config_file``. By default (:class:`GaussianGroupingConfig`) masks are 8-bit, what its stock
setup loads: beyond 255 objects the least observed (fewest labelled pixels over all frames)
are folded into 0 and listed under ``folded_lift3d_ids``. ``mask_bits=16`` keeps every object
in 16-bit masks, with the ``num_classes`` they then need.

Gaussian Grouping never resizes its masks: training at ``-r 2`` (or on images wider than 1600
px, which it shrinks by default) misaligns them. ``resolution=N`` writes images, masks and
cameras at 1/N of the size instead; train with ``-r 1`` (:func:`training_note`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

from lift3d.cameras import scale_intrinsics
from lift3d.errors import InputError
from lift3d.export.base import ExportFrame, OutputFolder, load_output, read_frame_labels
from lift3d.export.colmap import write_colmap_model
from lift3d.geometry.working_resolution import sample_nearest
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
MAX_AUTO_WIDTH = 1600  # 3DGS / Gaussian Grouping shrink wider images unless given -r


@dataclass(frozen=True)
class GaussianGroupingConfig:
    """Options of the Gaussian Grouping export."""

    mask_bits: int = 8
    """8: uint8 masks, at most 255 objects (the least observed beyond are folded into 0), what
    its stock config and loader take; 16: uint16 masks, up to 65535 objects (set num_classes
    and use a torch that converts uint16)."""
    resolution: int = 1
    """Write images, masks and cameras at 1/resolution of the size (round(W / r) x
    round(H / r), as its ``-r r`` computes); then train with ``-r 1``."""

    def __post_init__(self) -> None:
        if self.mask_bits not in (8, 16):
            raise InputError(f"mask bits must be 8 or 16, got {self.mask_bits}",
                             fix="use --mask-bits 8 (stock Gaussian Grouping) or 16")
        if self.resolution < 1:
            raise InputError(f"resolution must be a whole factor >= 1, got {self.resolution}",
                             fix="use --resolution 1, 2, 4 or 8")


def export_gaussian_grouping(out_dir: str | Path, dest: str | Path, points_txt: bool = True,
                             config: GaussianGroupingConfig | None = None) -> Path:
    """Write images/, sparse/0/, object_mask/ and gaussian_grouping.json into ``dest``.

    Returns the path of ``gaussian_grouping.json`` (holds ``num_classes``, the ID table, the
    folded IDs and the ``-r`` to train with).
    """
    cfg = config or GaussianGroupingConfig()
    out = load_output(out_dir)
    dest = Path(dest)
    maps = _label_maps(out)
    if cfg.resolution > 1:
        out, maps = _downscale(out, maps, cfg.resolution, dest / "images")
        write_colmap_model(out, dest, points_txt=points_txt,
                           image_names=[f"{f.stem}.png" for f in out.frames])
    else:
        write_colmap_model(out, dest, points_txt=points_txt)
    return write_object_masks(out, dest, maps=maps, config=cfg)


def _label_maps(out: OutputFolder) -> list[np.ndarray]:
    maps = [read_frame_labels(f) for f in out.frames]
    for f, m in zip(out.frames, maps, strict=True):
        if m.shape != (f.height, f.width):
            raise InputError(f"label map is {m.shape[1]}x{m.shape[0]}, camera is "
                             f"{f.width}x{f.height}", f.labels, "re-run `lift3d segment`")
    return maps


def _downscale(out: OutputFolder, maps: list[np.ndarray], factor: int, image_dir: Path
               ) -> tuple[OutputFolder, list[np.ndarray]]:
    """Frames, label maps and images (written to ``image_dir/<stem>.png``) at 1/factor size."""
    import cv2

    frames: list[ExportFrame] = []
    small_maps = []
    for f, m in zip(out.frames, maps, strict=True):
        size = (max(1, round(f.width / factor)), max(1, round(f.height / factor)))
        image = cv2.imread(str(f.image), cv2.IMREAD_COLOR)
        if image is None:
            raise InputError("cannot read this image", f.image, "keep the scene folder in place")
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        path = image_dir / f"{f.stem}.png"
        write_with(path, lambda tmp, a=small: _imwrite(tmp, a))
        small_maps.append(sample_nearest(m, (size[1], size[0])))  # IDs never blended
        frames.append(replace(f, width=size[0], height=size[1], image=path,
                              K=scale_intrinsics(f.K, size[0] / f.width, size[1] / f.height)))
    return replace(out, frames=frames), small_maps


def write_object_masks(out: OutputFolder, dest: Path, folder: str = "object_mask",
                       maps: list[np.ndarray] | None = None,
                       config: GaussianGroupingConfig | None = None) -> Path:
    """Write renumbered per-view ID masks and the ID table; returns the json path."""
    cfg = config or GaussianGroupingConfig()
    maps = _label_maps(out) if maps is None else maps
    ids = id_table(maps, out.cloud.labels)
    limit = (1 << cfg.mask_bits) - 1
    kept, folded = keep_most_observed(ids, maps, limit)
    dtype = np.uint8 if cfg.mask_bits == 8 else np.uint16
    for f, m in zip(out.frames, maps, strict=True):
        mask = renumber(m, kept).astype(dtype)
        write_with(dest / folder / f"{f.stem}.png", lambda tmp, a=mask: _imwrite(tmp, a))
    num_classes = len(kept) + 1
    doc = {
        "num_classes": num_classes,
        "mask_bits": cfg.mask_bits,
        "mask_folder": folder,
        "mask_id_to_lift3d_id": {str(k + 1): int(v) for k, v in enumerate(kept)},
        "folded_lift3d_ids": [int(v) for v in folded],
        "resolution": cfg.resolution,
        "train_resolution_flag": "-r 1",
        "image_size": sorted({(f.width, f.height) for f in out.frames}),
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


def keep_most_observed(ids: np.ndarray, maps: list[np.ndarray], limit: int
                       ) -> tuple[np.ndarray, np.ndarray]:
    """(kept, folded): at most ``limit`` of the sorted ``ids``, those with the most labelled
    pixels over ``maps`` (ties: the smaller ID), both sorted."""
    if len(ids) <= limit:
        return ids, ids[:0]
    pixels = np.zeros(len(ids), np.int64)
    for m in maps:
        u, c = np.unique(m, return_counts=True)
        pos = np.clip(np.searchsorted(ids, u), 0, len(ids) - 1)
        hit = ids[pos] == u
        np.add.at(pixels, pos[hit], c[hit])
    order = np.lexsort((ids, -pixels))
    return np.sort(ids[order[:limit]]), np.sort(ids[order[limit:]])


def renumber(labels: np.ndarray, ids: np.ndarray) -> np.ndarray:
    """Map lift3d IDs to 1..K by their rank in ``ids`` (0 and unknown IDs -> 0)."""
    if len(ids) == 0:
        return np.zeros(np.shape(labels), np.int64)
    pos = np.clip(np.searchsorted(ids, labels), 0, len(ids) - 1)
    return np.where(ids[pos] == labels, pos + 1, 0).astype(np.int64)


def training_note(doc: dict) -> str:
    """What to tell a user about an export's ``gaussian_grouping.json`` ``doc``: which ``-r``
    to train with, num_classes, and the IDs folded into the background."""
    w = max(s[0] for s in doc["image_size"]) if doc["image_size"] else 0
    lines = [f"train Gaussian Grouping with -r 1 (images and masks are already at "
             f"{'1/' + str(doc['resolution']) if doc['resolution'] > 1 else 'full'} size"
             + (f"; without -r it would shrink {w}-px-wide images to {MAX_AUTO_WIDTH} px but "
                "not the masks" if w > MAX_AUTO_WIDTH else "")
             + f") and num_classes {doc['num_classes']} (gaussian_grouping_train.json)"]
    folded = doc["folded_lift3d_ids"]
    if folded:
        lines.append(f"{len(folded)} least observed lift3d IDs do not fit {doc['mask_bits']}-bit "
                     "masks and are background (0) there (folded_lift3d_ids in "
                     "gaussian_grouping.json); --mask-bits 16 keeps them")
    return "\n".join(lines)


def _imwrite(tmp: Path, arr: np.ndarray) -> None:
    import cv2

    if not cv2.imwrite(str(tmp), arr):
        raise OSError(f"could not write {tmp}")
