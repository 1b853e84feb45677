"""Reader of a plain folder of images (video frames or photos): no depth, K or pose.

Files ``*.jpg``, ``*.jpeg``, ``*.png`` (any case) directly in the folder, sorted naturally
(``frame2`` before ``frame10``); the frame name is the file stem. Images may differ in size
(unposed photo collections); geometry backends that need one size resize themselves.
"""

from __future__ import annotations

from pathlib import Path

from lift3d.errors import InputError
from lift3d.io.common import list_images, progress_bar, read_rgb, require_dir, select_frames
from lift3d.types import Frame, LazyFrames, Scene


def image_files(path: Path) -> list[Path]:
    """The naturally sorted image files of ``path``; :class:`InputError` when two share a
    stem (their per-frame outputs would collide)."""
    files = list_images(path)
    seen: dict[str, Path] = {}
    for f in files:
        if f.stem in seen:
            raise InputError(f"two images named {f.stem!r}: {seen[f.stem].name} and {f.name}",
                             f, "rename or remove one (outputs are named by file stem)")
        seen[f.stem] = f
    return files


def load_images(path: str | Path, stride: int = 1, max_frames: int | None = None,
                progress: bool = False, lazy: bool = False) -> Scene:
    """Load every ``stride``-th image of a folder (at most ``max_frames``) as a
    :class:`Scene` with layout ``"images"``: frames with (H, W, 3) uint8 RGB only."""
    root = require_dir(path)
    files = image_files(root)
    if not files:
        raise InputError("no images (*.jpg, *.jpeg, *.png) in folder", root,
                         "point at a folder of images")
    picked = select_frames(files, stride, max_frames)
    if lazy:  # streamed: each frame read when a stage asks for it
        frames = LazyFrames([f.stem for f in picked],
                            lambda k: Frame(image=read_rgb(picked[k]), name=picked[k].stem,
                                            path=picked[k]))
        return Scene(frames=frames, source=root, layout="images")
    frames = [
        Frame(image=read_rgb(f), name=f.stem, path=f)
        for f in progress_bar(picked, progress, f"reading {root.name}")
    ]
    return Scene(frames=frames, source=root, layout="images")
