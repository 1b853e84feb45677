"""``lift3d view OUT_OR_PLY``: the CLI shell over the interactive viewer and headless renders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from viewers.render import RenderConfig, render_png


def view_cmd(
    path: Annotated[Path, typer.Argument(help="output folder of `lift3d segment`, or a .ply")],
    render: Annotated[Path | None, typer.Option(
        "--render", help="write a PNG instead of opening a window (no display needed)")] = None,
    camera: Annotated[str | None, typer.Option(
        "--camera", help="render from this frame's camera (a name in cameras.json)")] = None,
    color_by: Annotated[str, typer.Option(
        "--color-by", help="label | rgb | confidence")] = "label",
    point_size: Annotated[float, typer.Option("--point-size", help="pixels")] = 2.0,
    backend: Annotated[str, typer.Option(
        "--backend", help="headless renderer: auto | open3d | numpy")] = "auto",
) -> None:
    """Look at a labelled cloud: an Open3D window, or with --render a PNG.

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
