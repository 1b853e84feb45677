"""Scene-folder layout detection and the single entry point :func:`load_scene`."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lift3d.errors import FormatNotRecognised, InputError
from lift3d.io import davis, images, scannet, sevenscenes, tum
from lift3d.io.common import list_images, require_dir
from lift3d.types import Scene

LAYOUTS = ("scannet", "7scenes", "tum", "davis", "images")
"""Layout names, in the order detection tries them."""

LOOKED_FOR = (
    "no color/ depth/ pose/ (ScanNet export), no frames/frame-*.color.jpg (7-Scenes), "
    "no rgb.txt+depth.txt (TUM RGB-D), no JPEGImages/ (DAVIS), no images (*.jpg, *.png)"
)

_LOADERS: dict[str, Callable[..., Scene]] = {
    "scannet": scannet.load_scannet,
    "7scenes": sevenscenes.load_sevenscenes,
    "tum": tum.load_tum,
    "davis": davis.load_davis,
    "images": images.load_images,
}


def detect_layout(path: str | Path) -> str:
    """Name of the layout of the scene folder ``path``: one of :data:`LAYOUTS`.

    ``"davis"`` for a DAVIS root or a ``JPEGImages/<res>/<seq>`` folder with annotations
    beside it (a sequence without them is ``"images"``). Raises :class:`InputError` for a
    missing path or an empty folder, :class:`FormatNotRecognised` (naming what was looked
    for) when nothing matches.
    """
    root = require_dir(path)
    if scannet.is_scannet(root):
        return "scannet"
    if sevenscenes.frames_dir(root) is not None:
        return "7scenes"
    if tum.is_tum(root):
        return "tum"
    if davis.is_davis_root(root) or davis.annotation_dir(root) is not None:
        return "davis"
    if list_images(root):
        return "images"
    if not any(p for p in root.iterdir() if not p.name.startswith(".")):
        raise InputError("folder is empty", root, "point at a scene folder")
    subdirs = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    hint = f" (sub-folders here: {', '.join(subdirs[:5])}{' ...' if len(subdirs) > 5 else ''})" \
        if subdirs else ""
    raise FormatNotRecognised(
        f"not a scene folder: {LOOKED_FOR}{hint}", root,
        "point at a ScanNet export, a 7-Scenes or TUM RGB-D sequence, a DAVIS sequence or a "
        "folder of images",
    )


LAZY_LAYOUTS = ("scannet", "7scenes", "tum", "images")
"""Layouts whose reader can stream (``lazy=True``); DAVIS sequences are read whole."""


def load_scene(path: str | Path, layout: str | None = None, stride: int = 1,
               max_frames: int | None = None, progress: bool = False,
               lazy: bool = False) -> Scene:
    """Read a scene folder into memory.

    path: the scene folder. layout: one of :data:`LAYOUTS`, or None to detect it.
    stride: keep every ``stride``-th frame. max_frames: keep at most this many (None = all).
    progress: show a tqdm bar while loading. Returns a :class:`~lift3d.types.Scene` whose
    frames follow lift3d's conventions (RGB uint8, depth float32 metres with 0 = invalid,
    K (3, 3) float64, camera-to-world (4, 4) float64 in OpenCV axes). Bad input raises a
    one-line :class:`InputError` naming the file.
    lazy: frames (and ground-truth maps) are read when a stage asks for them
    (:class:`~lift3d.types.LazyFrames`), so a long scene is never in memory at once; a bad
    file then raises when its frame is read.
    """
    if layout is None:
        layout = detect_layout(path)
    elif layout not in _LOADERS:
        raise InputError(f"unknown layout {layout!r}", None,
                         f"choose one of {', '.join(LAYOUTS)}, or leave it out to detect it")
    extra = {"lazy": True} if lazy and layout in LAZY_LAYOUTS else {}
    return _LOADERS[layout](path, stride=stride, max_frames=max_frames, progress=progress,
                            **extra)
