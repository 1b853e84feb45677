"""``lift3d export OUT --to ply``: the labelled cloud as the PLY 3D Gaussian splatting reads.

3DGS's ``fetchPly`` reads vertex fields by name — x, y, z, nx, ny, nz (float32) and
red, green, blue (uint8, divided by 255) — and ignores the rest, so lift3d's extra ``label``
(int32), ``confidence`` (float32) and ``n_obs`` (int32) ride along for tools that want them.
Open3D (which nerfstudio uses to read initial points) reads the same file.
"""

from __future__ import annotations

from pathlib import Path

from lift3d.export.base import load_output
from lift3d.io.outputs import write_ply


def export_ply(out_dir: str | Path, dest: str | Path) -> Path:
    """Write the output folder's cloud to ``dest`` (a ``.ply`` file, or a folder that gets
    ``points3D.ply``). Returns the file written."""
    dest = Path(dest)
    if dest.suffix.lower() != ".ply":
        dest = dest / "points3D.ply"
    write_ply(dest, load_output(out_dir, need_cameras=False).cloud)
    return dest
