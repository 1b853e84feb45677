"""Reader of the DAVIS video-object-segmentation layout (DAVIS 2016 and 2017).

::

    root/
      JPEGImages/480p/<seq>/00000.jpg, 00001.jpg, ...
      Annotations/480p/<seq>/00000.png, 00001.png, ...

A sequence folder ``root/JPEGImages/480p/<seq>`` is read as an image folder; when the sibling
``root/Annotations/480p/<seq>`` exists its PNGs become ``Scene.gt_labels`` (int32 per frame,
matched by file stem) and the layout is ``"davis"``. Annotation values:

* DAVIS 2016: single-channel masks with values {0, 255} -> {0, 1};
* DAVIS 2017: palette ("P") PNGs; the palette index is the object ID (0 = background), read
  without converting to colour.

When only some frames are annotated (e.g. DAVIS 2017 test-dev, first frame only) the scene
gets no ``gt_labels`` and a warning, since ground truth must cover every frame.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from lift3d.errors import InputError
from lift3d.io.common import natural_key, require_dir
from lift3d.io.images import load_images
from lift3d.types import Scene

IMAGES_DIR = "JPEGImages"
ANNOTATIONS_DIR = "Annotations"
DEFAULT_RESOLUTION = "480p"


def is_davis_root(path: Path) -> bool:
    """True when ``path`` holds a ``JPEGImages/`` folder (a DAVIS root)."""
    return (path / IMAGES_DIR).is_dir()


def annotation_dir(seq_dir: Path) -> Path | None:
    """For ``root/JPEGImages/<res>/<seq>``, the existing ``root/Annotations/<res>/<seq>``;
    else None."""
    seq_dir = seq_dir.resolve()
    res_dir = seq_dir.parent
    if res_dir.parent.name != IMAGES_DIR:
        return None
    ann = res_dir.parent.parent / ANNOTATIONS_DIR / res_dir.name / seq_dir.name
    return ann if ann.is_dir() else None


def list_davis_sequences(root: str | Path, resolution: str = DEFAULT_RESOLUTION) -> list[str]:
    """Names of the sequences under ``root/JPEGImages/<resolution>``, sorted."""
    root = require_dir(root)
    res_dir = root / IMAGES_DIR / resolution
    if not res_dir.is_dir():
        have = sorted(p.name for p in (root / IMAGES_DIR).glob("*") if p.is_dir()) \
            if (root / IMAGES_DIR).is_dir() else []
        raise InputError(
            f"no {IMAGES_DIR}/{resolution}/ in DAVIS root", root,
            f"resolutions present: {', '.join(have) or 'none'}",
        )
    return sorted((p.name for p in res_dir.iterdir() if p.is_dir()), key=natural_key)


def load_davis_sequence(root: str | Path, seq: str, resolution: str = DEFAULT_RESOLUTION,
                        stride: int = 1, max_frames: int | None = None,
                        progress: bool = False) -> Scene:
    """Load sequence ``seq`` of a DAVIS root (frames + ground truth when annotated)."""
    names = list_davis_sequences(root, resolution)
    if seq not in names:
        raise InputError(f"no sequence {seq!r} in DAVIS root", root,
                         f"sequences: {', '.join(names) or 'none'}")
    return load_davis(Path(root) / IMAGES_DIR / resolution / seq, stride, max_frames, progress)


def load_davis(path: str | Path, stride: int = 1, max_frames: int | None = None,
               progress: bool = False) -> Scene:
    """Load a DAVIS sequence folder, or a DAVIS root that holds exactly one sequence.

    Returns a :class:`Scene` of image-only frames; ``gt_labels`` (H, W) int32 per frame and
    layout ``"davis"`` when the annotations cover every selected frame, else layout
    ``"images"``.
    """
    path = require_dir(path)
    if is_davis_root(path):
        res = DEFAULT_RESOLUTION if (path / IMAGES_DIR / DEFAULT_RESOLUTION).is_dir() else next(
            (p.name for p in sorted((path / IMAGES_DIR).iterdir()) if p.is_dir()), None)
        seqs = [] if res is None else list_davis_sequences(path, res)
        if len(seqs) != 1:
            example = f"{path / IMAGES_DIR / str(res) / seqs[0]}" if seqs else "a sequence folder"
            raise InputError(
                f"DAVIS root with {len(seqs)} sequences ({', '.join(seqs[:8])}"
                f"{' ...' if len(seqs) > 8 else ''})", path, f"point at one, e.g. {example}",
            )
        path = path / IMAGES_DIR / res / seqs[0]
    scene = load_images(path, stride, max_frames, progress)
    ann_dir = annotation_dir(path)
    if ann_dir is None:
        return scene
    ann_files = {p.stem: p for p in ann_dir.glob("*.png")}
    missing = [f.name for f in scene.frames if f.name not in ann_files]
    if missing:
        warnings.warn(
            f"{ann_dir}: {len(missing)} of {len(scene)} frames have no annotation "
            f"(first: {missing[0]}.png); the scene gets no ground-truth labels", stacklevel=2,
        )
        return scene
    labels = []
    for frame in scene.frames:
        lab = read_davis_annotation(ann_files[frame.name])
        if lab.shape != frame.hw:
            raise InputError(
                f"annotation is {lab.shape[1]}x{lab.shape[0]} but frame {frame.name} is "
                f"{frame.hw[1]}x{frame.hw[0]}", ann_files[frame.name],
                "annotations must have the resolution of their frames",
            )
        labels.append(lab)
    scene.gt_labels = labels
    scene.layout = "davis"
    return scene


def read_davis_annotation(path: Path) -> np.ndarray:
    """Read a DAVIS annotation PNG as (H, W) int32 object IDs (0 = background).

    Palette PNGs give their palette indices; single-channel masks with values in {0, 255}
    (DAVIS 2016) give {0, 1}; other single-channel values are taken as IDs.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            mode = im.mode
            arr = np.array(im)
    except (OSError, UnidentifiedImageError) as err:
        raise InputError("cannot read annotation PNG", path, "re-export it") from err
    if mode == "P" or mode in ("L", "I", "I;16", "1"):
        arr = arr.astype(np.int32)
    else:
        raise InputError(
            f"annotation is a {mode} image, expected a palette or single-channel PNG", path,
            "save object IDs as palette indices (DAVIS 2017) or a {0,255} mask (DAVIS 2016)",
        )
    if mode != "P" and arr.max(initial=0) == 255 and np.isin(arr, (0, 255)).all():
        arr = (arr == 255).astype(np.int32)
    return arr
