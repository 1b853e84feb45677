"""export_cmd registered on a typer app the way lift3d/cli.py registers it, run with CliRunner."""

import typer
from typer.testing import CliRunner

from lift3d.export import export_cmd


def test_export_through_typer(synthetic_out, tmp_path):
    app = typer.Typer()
    app.command("export")(export_cmd)
    app.command("noop")(lambda: None)
    dest = tmp_path / "gg"
    res = CliRunner().invoke(app, ["export", str(synthetic_out.root), "--to",
                                   "gaussian-grouping", "-o", str(dest)])
    assert res.exit_code == 0, res.output
    assert "wrote gaussian-grouping" in res.output
    assert (dest / "object_mask").is_dir() and (dest / "sparse" / "0" / "images.txt").is_file()
