"""`lift3d export` through the real CLI app (lift3d/cli.py), run with CliRunner."""

from typer.testing import CliRunner

from lift3d.cli import app


def test_export_through_typer(synthetic_out, tmp_path):
    dest = tmp_path / "gg"
    res = CliRunner().invoke(app, ["export", str(synthetic_out.root), "--to",
                                   "gaussian-grouping", "-o", str(dest)])
    assert res.exit_code == 0, res.output
    assert "wrote gaussian-grouping" in res.output
    assert (dest / "object_mask").is_dir() and (dest / "sparse" / "0" / "images.txt").is_file()
