"""The command line as a user meets it: bad input gets one line naming the file, exit 1,
no traceback; `info` and `--help` work."""

from __future__ import annotations

import shutil

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from lift3d.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def small_scene(tmp_path_factory):
    from lift3d.synth import make_scene

    return make_scene(tmp_path_factory.mktemp("cli") / "scene", seed=3, n_frames=3, width=64,
                      height=48)


def broken_copy(small_scene, tmp_path):
    dst = tmp_path / "scene"
    shutil.copytree(small_scene, dst)
    return dst


def assert_one_line_error(result, *needles):
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert lines[0].startswith("lift3d: error:"), lines[0]
    assert "Traceback" not in result.output
    for n in needles:
        assert n in lines[0], (n, lines[0])


def segment(path, tmp_path):
    return runner.invoke(app, ["segment", str(path), "-o", str(tmp_path / "out"), "-q",
                               "--segmenter", "classical"])


def test_empty_folder(tmp_path):
    (tmp_path / "empty").mkdir()
    assert_one_line_error(segment(tmp_path / "empty", tmp_path), "empty")


def test_missing_folder(tmp_path):
    assert_one_line_error(segment(tmp_path / "nope", tmp_path), "nope")


def test_unrecognised_folder(tmp_path):
    d = tmp_path / "stuff"
    d.mkdir()
    (d / "notes.txt").write_text("hello")
    assert_one_line_error(segment(d, tmp_path), "stuff", "ScanNet", "7-Scenes", "TUM")


def test_unreadable_image(small_scene, tmp_path):
    d = broken_copy(small_scene, tmp_path)
    (d / "color" / "1.jpg").write_bytes(b"\xff\xd8\xff not a jpeg")
    assert_one_line_error(segment(d, tmp_path), "1.jpg")


def test_depth_of_the_wrong_size(small_scene, tmp_path):
    d = broken_copy(small_scene, tmp_path)
    cv2.imwrite(str(d / "depth" / "2.png"), np.full((30, 40), 1000, np.uint16))
    assert_one_line_error(segment(d, tmp_path), "2.png")


def test_zero_depth(small_scene, tmp_path):
    d = broken_copy(small_scene, tmp_path)
    cv2.imwrite(str(d / "depth" / "0.png"), np.zeros((48, 64), np.uint16))
    assert_one_line_error(segment(d, tmp_path), "0.png")


def test_pose_not_rigid(small_scene, tmp_path):
    d = broken_copy(small_scene, tmp_path)
    T = np.loadtxt(d / "pose" / "1.txt")
    T[:3, :3] *= 1.3
    np.savetxt(d / "pose" / "1.txt", T)
    assert_one_line_error(segment(d, tmp_path), "1.txt")


def test_debug_shows_the_traceback(tmp_path):
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["--debug", "segment", str(tmp_path / "empty"), "-q"])
    assert result.exit_code != 0 and result.exception is not None
    assert not isinstance(result.exception, SystemExit)


def test_segment_runs_on_a_small_scene(small_scene, tmp_path):
    result = segment(small_scene, tmp_path)
    assert result.exit_code == 0, result.output
    assert "H(I,M)" in result.output
    assert len(list((tmp_path / "out" / "labels").glob("*.png"))) == 3


def test_info_lists_backends():
    result = runner.invoke(app, ["info"])
    assert result.exit_code == 0, result.output
    assert "classical" in result.output and "rgbd" in result.output


def test_make_scene_and_help(tmp_path):
    result = runner.invoke(app, ["make-scene", str(tmp_path / "s"), "--frames", "2",
                                 "--width", "32", "--height", "24"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "s" / "scene.json").is_file()
    for cmd in ("segment", "view", "export", "make-scene", "info"):
        assert runner.invoke(app, [cmd, "--help"]).exit_code == 0


def test_auto_segmenter_refuses_a_damaged_checkpoint(small_scene, tmp_path, monkeypatch):
    """`--segmenter auto` picks SAM when a checkpoint is there; a broken one is an error,
    never a silent fall-back to another model."""
    bad = tmp_path / "sam_vit_b_01ec64.pth"
    bad.write_bytes(b"not a checkpoint")
    monkeypatch.setenv("LIFT3D_SAM_CHECKPOINT", str(bad))
    result = runner.invoke(app, ["segment", str(small_scene), "-o", str(tmp_path / "o"), "-q"])
    assert_one_line_error(result, "sam_vit_b_01ec64.pth")


def test_auto_segmenter_without_checkpoint_is_geometric_on_rgbd(small_scene, tmp_path,
                                                                monkeypatch):
    """Without SAM weights, a scene with depth gets the weight-free segmenter that reads it."""
    monkeypatch.delenv("LIFT3D_SAM_CHECKPOINT", raising=False)
    monkeypatch.setenv("LIFT3D_CACHE", str(tmp_path / "empty_cache"))
    out = tmp_path / "o"
    result = runner.invoke(app, ["segment", str(small_scene), "-o", str(out), "-q"])
    assert result.exit_code == 0, result.output
    import json

    assert json.loads((out / "report.json").read_text())["segmenter"] == "geometric"
