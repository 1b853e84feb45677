"""Exports of lift3d's output folder to the layouts other pipelines train from.

``export(out_dir, fmt, dest)`` with ``fmt`` one of :data:`FORMATS`; each format is one module
(``ply``, ``colmap``, ``gaussian_grouping``, ``nerfstudio``); camera conventions are converted
in :mod:`lift3d.export.base`. The ``lift3d export`` command is in :mod:`lift3d.cli`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lift3d.errors import InputError

if TYPE_CHECKING:
    from lift3d.export.gaussian_grouping import GaussianGroupingConfig

FORMATS = ("ply", "colmap", "gaussian-grouping", "nerfstudio")


def export(out_dir: str | Path, fmt: str, dest: str | Path,
           gaussian_grouping: GaussianGroupingConfig | None = None) -> Path:
    """Export ``out_dir`` (written by ``lift3d segment``) as ``fmt`` into ``dest``.

    gaussian_grouping: options of that format (mask bits, resolution); refused for others.
    Returns the main file written (the PLY; sparse/0; gaussian_grouping.json; transforms.json).
    """
    if gaussian_grouping is not None and fmt != "gaussian-grouping":
        raise InputError(f"mask bits and resolution are options of the gaussian-grouping "
                         f"export, not of {fmt!r}", fix="drop them or use --to gaussian-grouping")
    if fmt == "ply":
        from lift3d.export.ply import export_ply

        return export_ply(out_dir, dest)
    if fmt == "colmap":
        from lift3d.export.colmap import export_colmap

        return export_colmap(out_dir, dest)
    if fmt == "gaussian-grouping":
        from lift3d.export.gaussian_grouping import export_gaussian_grouping

        return export_gaussian_grouping(out_dir, dest, config=gaussian_grouping)
    if fmt == "nerfstudio":
        from lift3d.export.nerfstudio import export_nerfstudio

        return export_nerfstudio(out_dir, dest)
    raise InputError(f"unknown export format {fmt!r}", fix=f"use one of {', '.join(FORMATS)}")


def principal_point_offset(cameras_json: Path) -> float:
    """Largest distance in pixels between a frame's principal point and its image centre."""
    import numpy as np

    from lift3d.io.outputs import read_cameras

    offs = [np.hypot(f["K"][0, 2] - (f["width"] - 1) / 2, f["K"][1, 2] - (f["height"] - 1) / 2)
            for f in read_cameras(cameras_json) if f["K"] is not None]
    return float(max(offs, default=0.0))
