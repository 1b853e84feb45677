"""`--set NAME=VALUE`: every setting of the configuration tree, the segmenter's own included,
reachable from the command line, typed as the field is, and refused by name when it is not
one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lift3d.cli import app
from lift3d.config import SegmentConfig, SegmenterConfig, apply_settings, build_segmenter
from lift3d.errors import InputError, Lift3DError

runner = CliRunner()


@pytest.fixture(scope="module")
def small_scene(tmp_path_factory):
    from lift3d.synth import make_scene

    return make_scene(tmp_path_factory.mktemp("settings") / "scene", seed=5, n_frames=3,
                      width=64, height=48)


def test_settings_reach_every_stage_typed_as_the_field():
    cfg = apply_settings(SegmentConfig(), [
        "track.min_support=0.6", "track.reid=false", "track.n_prompt_points=7",
        "associate.scene3d.shared_share=0.4", "geometry.rgbd.max_depth=4", "max_frames=10",
        "max_frames=none", "stride=2", "segmenter.geo_threshold=0.5", "segmenter.name=classical",
    ])
    assert cfg.track.min_support == 0.6 and cfg.track.reid is False
    assert cfg.track.n_prompt_points == 7 and isinstance(cfg.track.n_prompt_points, int)
    assert cfg.associate.scene3d.shared_share == 0.4
    assert cfg.geometry.rgbd.max_depth == 4.0 and isinstance(cfg.geometry.rgbd.max_depth, float)
    assert cfg.max_frames is None and cfg.stride == 2
    assert cfg.segmenter.name == "classical"
    assert cfg.segmenter.options == {"geo_threshold": 0.5}
    # the rest of the tree is untouched, and the run's fingerprint sees the settings
    assert cfg.track.min_carried == SegmentConfig().track.min_carried
    assert cfg.to_json()["segmenter"]["options"] == {"geo_threshold": 0.5}
    assert cfg.to_json() != SegmentConfig().to_json()


@pytest.mark.parametrize("item, needles", [
    ("track.min_suport=0.3", ["min_suport", "min_support"]),  # a typo names the valid ones
    ("track=1", ["group of settings", "track.{"]),
    ("track.min_support=abc", ["abc", "float"]),
    ("track.reid=maybe", ["maybe", "true or false"]),
    ("track.n_prompt_points=2.5", ["2.5", "int"]),
    ("stride", ["NAME=VALUE"]),
    ("segmenter.name.x=1", ["no settings under it"]),
    ("segmenter.options=3", ["one setting at a time"]),
    ("track.min_support=none", ["cannot be none", "0.5"]),  # only optional fields clear
])
def test_a_setting_that_is_not_one_is_refused_by_name(item, needles):
    with pytest.raises(Lift3DError) as err:
        apply_settings(SegmentConfig(), [item])
    for n in needles:
        assert n in str(err.value), (n, str(err.value))


def test_segmenter_settings_reach_the_backend_and_change_its_masks(small_scene):
    from lift3d.io import load_scene

    image = load_scene(small_scene, progress=False).frames[0].image
    default = build_segmenter(SegmenterConfig(name="classical"))
    coarse = build_segmenter(SegmenterConfig(
        name="classical", options=apply_settings(
            SegmentConfig(), ["segmenter.merge_threshold=1000"]).segmenter.options))
    assert coarse.cfg.merge_threshold == 1000.0
    # every region merges into one at a threshold no colour distance reaches
    assert len(coarse.auto_masks(image)) == 1 < len(default.auto_masks(image))
    geo = build_segmenter(SegmenterConfig(name="geometric", options={"geo_threshold": "0.25"}))
    assert geo.cfg.geo_threshold == 0.25  # text, as --set passes it, read as the field's type
    with pytest.raises(Lift3DError, match="unknown geometric segmenter setting 'geo_thresh'.*"
                                          "geo_threshold"):
        build_segmenter(SegmenterConfig(name="geometric", options={"geo_thresh": 0.3}))


def test_cli_set_is_recorded_and_used(small_scene, tmp_path):
    def run(out: Path, *settings: str):
        args = ["segment", str(small_scene), "-o", str(out), "-q", "--segmenter", "classical"]
        for s in settings:
            args += ["--set", s]
        return runner.invoke(app, args)

    result = run(tmp_path / "a", "segmenter.merge_threshold=1000", "track.min_support=0.6")
    assert result.exit_code == 0, result.output
    report = json.loads((tmp_path / "a" / "report.json").read_text())
    assert report["config"]["segmenter"]["options"] == {"merge_threshold": 1000}
    assert report["config"]["track"]["min_support"] == 0.6
    plain = run(tmp_path / "b")
    assert plain.exit_code == 0, plain.output
    n_plain = json.loads((tmp_path / "b" / "report.json").read_text())["n_ids"]
    assert report["n_ids"] < n_plain  # one region per frame: fewer IDs than the default's

    bad = run(tmp_path / "c", "segmenter.merge_threshhold=1000")
    assert bad.exit_code == 1
    assert "merge_threshhold" in bad.output and "merge_threshold" in bad.output
    assert "Traceback" not in bad.output
    assert not (tmp_path / "c").exists()  # refused before any work


def test_eval_runs_take_the_settings(small_scene, tmp_path):
    from lift3d.evaluate import EvalConfig, discover, run_config

    base = apply_settings(SegmentConfig(overlays=False),
                          ["segmenter.geo_threshold=0.5", "associate.scene3d.shared_share=0.4"])
    cfg = EvalConfig(segmenter="geometric", segment=base)
    (seq,) = discover(small_scene)
    for method in ("tracked", "associated"):
        run = run_config(seq, method, cfg)
        assert run.segmenter.name == "geometric"
        assert run.segmenter.options == {"geo_threshold": 0.5}
        assert run.associate.scene3d.shared_share == 0.4
    assert run_config(seq, "tracked", cfg).associate.method == "off"  # eval's own choice wins
    with pytest.raises(InputError, match="nope"):
        apply_settings(SegmentConfig(), ["nope=1"])
