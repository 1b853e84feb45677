"""``lift3d view OUT_OR_PLY``: the CLI shell over the interactive viewer and headless renders."""

from __future__ import annotations

from pathlib import Path

from viewers.render import RenderConfig, render_png


def view_cmd(path: Path, render: Path | None = None, camera: str | None = None,
             color_by: str = "label", point_size: float = 2.0, backend: str = "auto") -> None:
    """Open the viewer on ``path`` (output folder or .ply), or with ``render`` write a PNG.

    camera: name of a frame in cameras.json to render from (default: an overview of the whole
    cloud); color_by: label | rgb | confidence; point_size: pixels; backend: auto | open3d |
    numpy (headless renders only).
    """
    if render is not None:
        cfg = RenderConfig(color_by=color_by, point_size=point_size, backend=backend)
        out = render_png(path, render, camera, cfg)
        print(f"lift3d view: wrote {out}")
        return
    from viewers.open3d_viewer import run_viewer

    run_viewer(path, color_by=color_by, point_size=point_size)
