"""view_cmd registered on a typer app the way lift3d/cli.py registers it, run with CliRunner."""

import cv2
import numpy as np
import typer
from typer.testing import CliRunner

from lift3d.palette import label_colors
from viewers.view import view_cmd


def test_view_render_from_a_frame_camera_through_typer(synthetic_out, tmp_path):
    app = typer.Typer()
    app.command("view")(view_cmd)
    app.command("noop")(lambda: None)  # two commands, so "view" is a subcommand as in lift3d
    out = tmp_path / "f1.png"
    res = CliRunner().invoke(app, ["view", str(synthetic_out.root), "--render", str(out),
                                   "--camera", "frame_01.color", "--point-size", "3",
                                   "--backend", "numpy"])
    assert res.exit_code == 0, res.output
    img = cv2.imread(str(out))[:, :, ::-1]
    assert img.shape == (synthetic_out.height, synthetic_out.width, 3)
    for lab in (1, 2, 25):
        assert (img == label_colors(np.array([lab]))[0]).all(-1).sum() > 50
