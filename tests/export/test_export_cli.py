"""`lift3d export` through the real CLI app (lift3d/cli.py), run with CliRunner."""

from typer.testing import CliRunner

from lift3d.cli import app


def test_export_through_typer(synthetic_out, tmp_path):
    dest = tmp_path / "gg"
    res = CliRunner().invoke(app, ["export", str(synthetic_out.root), "--to",
                                   "gaussian-grouping", "-o", str(dest)])
    assert res.exit_code == 0, res.output
    assert "wrote gaussian-grouping" in res.output
    assert "train Gaussian Grouping with -r 1" in res.output and "num_classes 4" in res.output
    assert (dest / "object_mask").is_dir() and (dest / "sparse" / "0" / "images.txt").is_file()


def test_export_gaussian_grouping_options_through_typer(synthetic_out, tmp_path):
    res = CliRunner().invoke(app, ["export", str(synthetic_out.root), "--to",
                                   "gaussian-grouping", "-o", str(tmp_path / "gg"),
                                   "--resolution", "2", "--mask-bits", "16"])
    assert res.exit_code == 0, res.output
    assert "-r 1" in res.output and "1/2 size" in res.output
    res = CliRunner().invoke(app, ["export", str(synthetic_out.root), "--to", "colmap", "-o",
                                   str(tmp_path / "c"), "--resolution", "2"])
    assert res.exit_code != 0 and "gaussian-grouping" in res.output


def test_export_refuses_resolution_and_mask_bits_zero(synthetic_out, tmp_path):
    """0 is not "no value": the config's own checks refuse it, naming the option (the CLI
    used to turn 0 into the default and export at full size)."""
    for opt, fix in (("--resolution", "--resolution 1"), ("--mask-bits", "--mask-bits 8")):
        dest = tmp_path / opt.strip("-")
        res = CliRunner().invoke(app, ["export", str(synthetic_out.root), "--to",
                                       "gaussian-grouping", "-o", str(dest), opt, "0"])
        assert res.exit_code == 1, res.output
        assert "lift3d: error:" in res.output and fix in res.output, res.output
        assert not dest.exists()
