"""`lift3d consistency` / measure_outputs: any model's per-pixel outputs scored on a scene."""

from __future__ import annotations

import json
import shutil

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from lift3d.cli import app
from lift3d.errors import InputError
from lift3d.metrics.outputs import OutputsConfig, measure_outputs

runner = CliRunner()


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A generated posed RGB-D scene (ground truth known) and a `lift3d segment` run on it."""
    from lift3d.config import SegmentConfig
    from lift3d.pipeline import run_segment
    from lift3d.synth import make_scene

    root = tmp_path_factory.mktemp("outputs")
    scene = make_scene(root / "scene", seed=3, n_frames=6, width=128, height=96)
    out = root / "run"
    run_segment(scene, out, SegmentConfig(segmenter="classical"), progress=False)
    return scene, out


def _labels(out):
    report = json.loads((out / "report.json").read_text())
    names = [f["name"] for f in json.loads((out / "cameras.json").read_text())["frames"]]
    return report, names, [cv2.imread(str(out / "labels" / f"{n}.png"), cv2.IMREAD_UNCHANGED)
                           for n in names]


def test_cli_on_segment_folder_reproduces_report_H(run, tmp_path):
    _, out = run
    report, names, _ = _labels(out)
    res = runner.invoke(app, ["consistency", str(out), "-o", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "c" / "consistency.json").read_text())
    assert doc["H"] == report["consistency"]["H"] and doc["H"] is not None
    assert doc["per_frame"] == report["consistency"]["per_frame"]
    assert doc["eps"] == report["consistency"]["eps"]
    assert doc["pixels_with_neighbours"] == report["consistency"]["pixels_with_neighbours"]
    assert 0 < doc["H_per_mask"] <= 1 and not doc["constant"]
    assert f"H(I,M) = {doc['H']:.4f}" in res.output and "per-mask approximation" in res.output
    assert "not quality" in res.output
    pics = sorted(p.stem for p in (tmp_path / "c" / "heatmaps").iterdir())
    assert pics == sorted(names)
    pic = cv2.imread(str(tmp_path / "c" / "heatmaps" / f"{names[0]}.png"))
    assert pic.shape[1] == 2 * 128 and pic.shape[0] > 96


def test_scene_folder_and_outputs_dir_give_the_run_H(run, tmp_path):
    """The run's labels as a model's outputs in a folder of their own, scored on the scene
    folder (not the run) with the run's radius: the run's H."""
    scene, out = run
    report, names, labels = _labels(out)
    shutil.copytree(out / "labels", tmp_path / "m")
    doc = measure_outputs(scene, tmp_path / "m", None, OutputsConfig(eps=report["consistency"]["eps"]))
    assert doc["H"] == report["consistency"]["H"]
    assert not (tmp_path / "m-consistency").exists()  # out=None writes nothing


def test_constant_map_scores_one_and_says_why_that_is_not_quality(run, tmp_path):
    scene, _ = run
    (tmp_path / "m").mkdir()
    for n in json.loads((run[1] / "cameras.json").read_text())["frames"]:
        cv2.imwrite(str(tmp_path / "m" / f"{n['name']}.png"), np.full((48, 64), 7, np.uint8))
    res = runner.invoke(app, ["consistency", str(scene), "-m", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    doc = json.loads((tmp_path / "m-consistency" / "consistency.json").read_text())
    assert doc["H"] == 1.0 and doc["H_per_mask"] == 1.0 and doc["constant"] and doc["n_ids"] == 1
    assert "constant (one ID everywhere)" in res.output and "says nothing about quality" in res.output


def test_one_hot_features_score_as_their_ids(run, tmp_path):
    """Feature maps: one-hot vectors of the run's IDs (float16 .npy, uint8 .npz) have the IDs'
    H exactly (cosine of one-hot vectors = ID equality)."""
    _, out = run
    report, names, labels = _labels(out)
    ids = np.unique(np.concatenate([m.ravel() for m in labels]))
    (tmp_path / "f").mkdir()
    for k, (n, m) in enumerate(zip(names, labels, strict=True)):
        onehot = np.eye(ids.size, dtype=np.float16)[np.searchsorted(ids, m)]
        if k % 2:
            np.savez_compressed(tmp_path / "f" / f"{n}.npz", features=onehot.astype(np.uint8))
        else:
            np.save(tmp_path / "f" / f"{n}.npy", onehot)
    doc = measure_outputs(out, tmp_path / "f", tmp_path / "c")
    assert doc["kind"] == "features" and doc["H"] == report["consistency"]["H"]
    assert doc["H_per_mask"] is None and doc["feature_dim"] == ids.size
    assert (tmp_path / "c" / "heatmaps" / f"{names[0]}.png").is_file()


def test_features_at_another_resolution_are_resized_as_stated(run, tmp_path):
    """Half-resolution features: bilinear (OpenCV INTER_LINEAR per channel, then normalised)
    or nearest, each equal to scoring the frame-resolution maps resized that way by hand."""
    from lift3d.metrics.consistency import consistency
    from lift3d.metrics.outputs import resolve_scene

    scene, out = run
    report, names, _ = _labels(out)
    eps = report["consistency"]["eps"]
    rng = np.random.default_rng(0)
    small = [rng.random((48, 64, 5)).astype(np.float32) for _ in names]
    (tmp_path / "f").mkdir()
    for n, f in zip(names, small, strict=True):
        np.save(tmp_path / "f" / f"{n}.npy", f)
    geo = resolve_scene(scene).geometry
    pts, val = [geo[t].points for t in range(len(names))], [geo[t].valid for t in range(len(names))]
    for rule, interp in (("bilinear", cv2.INTER_LINEAR), ("nearest", cv2.INTER_NEAREST)):
        doc = measure_outputs(scene, tmp_path / "f", None, OutputsConfig(eps=eps, feature_resize=rule))
        by_hand = [cv2.resize(f, (128, 96), interpolation=interp) for f in small]  # 2x up: the
        # nearest rules (pixel centre, OpenCV's corner) agree
        want = consistency(pts, val, by_hand, eps).H
        assert doc["H"] == round(want, 6) and doc["resize"] == rule


def test_maps_are_shrunk_by_the_pixel_centre_rule(tmp_path):
    """Shrunk 3x, frame pixel i takes map pixel 3i + 1 (its centre's), as lift3d's own ID maps
    between resolutions; OpenCV's INTER_NEAREST took 3i (the corner), a shift of one source
    pixel the ID map reader used to make (old main: every pixel read the row-0 label)."""
    from lift3d.metrics.outputs import read_feature_map, read_id_map

    rows = (np.arange(288)[:, None] % 3 + 1) * np.ones((1, 384), np.uint16)  # 1, 2, 3, 1, ...
    cv2.imwrite(str(tmp_path / "a.png"), rows)
    np.save(tmp_path / "a.npy", rows[..., None].astype(np.float32))
    assert (read_id_map(tmp_path / "a.png", (96, 128)) == 2).all()
    assert (read_feature_map(tmp_path / "a.npy", (96, 128), "nearest") == 2).all()


def test_bad_outputs_are_named(run, tmp_path):
    scene, out = run
    _, names, labels = _labels(out)
    m = tmp_path / "m"
    m.mkdir()
    with pytest.raises(InputError, match=f"no output for {len(names)} of {len(names)} frames"):
        measure_outputs(scene, m)
    for n in names:
        np.save(m / f"{n}.npy", np.zeros((4, 96, 128), np.float32))  # channel-first
    with pytest.raises(InputError, match="channel-first"):
        measure_outputs(scene, m)
    cv2.imwrite(str(m / f"{names[0]}.png"), labels[0])
    with pytest.raises(InputError, match="2 output files"):
        measure_outputs(scene, m)
    res = runner.invoke(app, ["consistency", str(scene)])
    assert res.exit_code == 1 and "no outputs given" in res.output


def test_image_folder_scene_scores_ids_and_features_on_flow(run, tmp_path):
    """A plain folder of images (flow geometry: matches stand in for 3D points): ID maps and
    their one-hot features score the same H; there are no per-pixel maps and no per-mask
    approximation without 3D points."""
    scene, out = run
    _, names, labels = _labels(out)
    images = tmp_path / "images"
    shutil.copytree(scene / "color", images)
    stems = sorted(p.stem for p in images.iterdir())
    (tmp_path / "ids").mkdir()
    (tmp_path / "f").mkdir()
    dim = max(int(m.max()) for m in labels) + 1
    for stem, m in zip(stems, labels, strict=True):
        cv2.imwrite(str(tmp_path / "ids" / f"{stem}.png"), m)
        np.save(tmp_path / "f" / f"{stem}.npy", np.eye(dim, dtype=np.float32)[m])
    a = measure_outputs(images, tmp_path / "ids", tmp_path / "a")
    b = measure_outputs(images, tmp_path / "f", tmp_path / "b")
    assert a["geometry"] == "2d" and a["eps_units"] == "pixels"
    assert a["H"] == b["H"] and 0 < a["H"] < 1 and a["H_per_mask"] is None
    assert (tmp_path / "b" / "consistency.json").is_file()
    assert not (tmp_path / "b" / "heatmaps").exists()


def test_heatmap_colours_agreement_blue_disagreement_red_undefined_grey():
    from lift3d.metrics.outputs import heatmap

    h = np.array([[1.0, 0.0, np.nan, -0.5]], np.float32).repeat(8, 0).repeat(8, 1)
    pic = heatmap(np.zeros((8, 32, 3), np.uint8), h)
    right = pic[:8, 32:].astype(int)
    agree, disagree, undefined, negative = (right[4, 4 + 8 * k] for k in range(4))
    assert agree[2] > agree[0] + 80  # blue
    assert disagree[0] > disagree[2] + 80  # red
    assert (undefined == 128).all() and (negative == disagree).all()  # h <= 0 reads as 0
    assert pic.shape[0] > 8 and pic.shape[1] == 64  # the colour bar below
