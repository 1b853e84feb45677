"""`lift3d segment --associate 3d` end to end on a small generated scene: merged IDs reach
labels/, cloud.ply and report.json; ``off`` is the tracker's labels untouched; a run killed
while rewriting labels resumes to the same outputs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lift3d.associate import AssociateConfig, Association, apply_mapping
from lift3d.io.outputs import read_label_png, read_ply
from lift3d.pipeline import SegmentConfig, run_segment

N_FRAMES = 8


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    from lift3d.synth import make_scene

    return make_scene(tmp_path_factory.mktemp("scene") / "s", seed=0, n_frames=N_FRAMES,
                      width=160, height=120)


def config(method: str, fused_labels: bool = True) -> SegmentConfig:
    return SegmentConfig(segmenter="classical",
                         associate=AssociateConfig(method=method, fused_labels=fused_labels))


@pytest.fixture(scope="module")
def runs(scene, tmp_path_factory):
    root = tmp_path_factory.mktemp("runs")
    off = run_segment(scene, root / "off", config("off"), progress=False)
    on = run_segment(scene, root / "3d", config("3d"), progress=False)
    return root, off, on


@pytest.fixture(scope="module")
def merged_only(scene, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "merged"
    return out, run_segment(scene, out, config("3d", fused_labels=False), progress=False)


def labels_of(out) -> list[np.ndarray]:
    return [read_label_png(out / "labels" / f"{t}.png") for t in range(N_FRAMES)]


def test_off_is_the_tracked_labels_and_3d_merges_them_then_follows_the_cloud(scene, runs,
                                                                            merged_only):
    """``off`` writes no association; ``3d`` without fused labels is the tracked labels under
    the merges, pixel for pixel; with them (the default) every pixel of valid 3D whose voxel
    an ID won carries that ID, which is the fused cloud's label there, and every other pixel
    keeps its merged tracked ID."""
    from lift3d.fuse import FusedLabels
    from lift3d.geometry import build_geometry
    from lift3d.io import load_scene

    root, off, on = runs
    assert "association" not in off
    assert not (root / "off" / "cache" / "association.json").exists()
    a = Association.from_json(json.loads((root / "3d" / "cache" / "association.json").read_text()))
    assert a.mapping and on["association"]["method"] == "3d"
    merged = [apply_mapping(lab, a) for lab in labels_of(root / "off")]
    for lab_m, lab_off in zip(labels_of(merged_only[0]), labels_of(root / "off"), strict=True):
        np.testing.assert_array_equal(lab_m, apply_mapping(lab_off, a))
    assert not (merged_only[0] / "cache" / "fused_labels.npz").exists()
    fused = FusedLabels.load(root / "3d" / "cache" / "fused_labels.npz")
    geometry = build_geometry(config("3d").geometry)(load_scene(scene, lazy=True, progress=False))
    changed = 0
    for t, (lab_on, lab_m) in enumerate(zip(labels_of(root / "3d"), merged, strict=True)):
        pm = geometry[t]
        won = np.zeros(lab_m.shape, np.int64)
        won[pm.valid] = fused.at(pm.points[pm.valid])
        moved = lab_on != lab_m
        np.testing.assert_array_equal(lab_on[moved], won[moved])  # only to the voxel's ID
        assert not (moved & ~pm.valid).any()
        np.testing.assert_array_equal(
            lab_on, fused.project(lab_m, pm, AssociateConfig().fused_min_area))
        changed += int(moved.sum())
    assert changed > 0
    cloud = read_ply(root / "3d" / "cloud.ply")  # every voxel (min_obs 1), in key order
    np.testing.assert_array_equal(cloud.labels, fused.label)


def test_outputs_carry_the_merged_ids(runs):
    root, off, on = runs
    a = on["association"]
    merged_away = {i for m in a["merges"] for i in m["ids"] if i != m["into"]}
    assert a["n_merged_ids"] == len(merged_away) > 0
    for m in a["merges"]:
        assert m["reason"] and m["into"] == min(m["ids"]) and m["evidence"]["links"]
    ids = set(np.unique(np.concatenate([lab.ravel() for lab in labels_of(root / "3d")])).tolist())
    assert not ids & merged_away
    assert on["n_ids"] == len(ids - {0}) < off["n_ids"]
    cloud = read_ply(root / "3d" / "cloud.ply")
    assert not set(np.unique(cloud.labels).tolist()) & merged_away
    assert set(np.unique(cloud.labels).tolist()) <= ids


def test_association_improves_quality(runs, merged_only):
    """Merging improves on the tracked IDs, and frames that follow the fused cloud improve on
    merging alone, in quality and in consistency."""
    _, off, on = runs
    q_off, q_on, q_m = off["quality"], on["quality"], merged_only[1]["quality"]
    assert q_m["sequence"]["sequence_iou"] > q_off["sequence"]["sequence_iou"] + 0.05
    assert q_m["instances_3d"]["ap50"] >= q_off["instances_3d"]["ap50"]
    assert merged_only[1]["consistency"]["H"] >= off["consistency"]["H"]
    assert q_on["sequence"]["sequence_iou"] > q_m["sequence"]["sequence_iou"]
    assert q_on["sequence"]["frame_iou"] > q_m["sequence"]["frame_iou"]
    assert on["consistency"]["H"] > merged_only[1]["consistency"]["H"] + 0.01


def test_run_killed_while_relabelling_resumes_to_the_same_outputs(scene, runs, tmp_path,
                                                                  monkeypatch):
    """Killed (an exception from a label write, in-process) after association.json was
    written, with some frames rewritten and others not; the rerun ends where an uninterrupted
    run does. A real SIGKILL cannot be aimed at this window reliably: it lasts milliseconds."""
    import lift3d.pipeline as pipeline

    root = runs[0]
    out = tmp_path / "run"
    real_write = pipeline.write_label_png
    calls = {"n": 0}

    def dying_write(path, labels):
        if (out / "cache" / "association.json").is_file():
            calls["n"] += 1
            if calls["n"] > 2:
                raise KeyboardInterrupt("killed mid-relabel")
        real_write(path, labels)

    monkeypatch.setattr(pipeline, "write_label_png", dying_write)
    with pytest.raises(KeyboardInterrupt):
        run_segment(scene, out, config("3d"), progress=False)
    monkeypatch.setattr(pipeline, "write_label_png", real_write)
    partly = labels_of(out)
    ref = labels_of(root / "3d")
    assert 0 < sum(np.array_equal(a, b) for a, b in zip(partly, ref, strict=True)) < N_FRAMES
    doc = run_segment(scene, out, config("3d"), progress=False)
    for a, b in zip(labels_of(out), ref, strict=True):
        np.testing.assert_array_equal(a, b)
    c1, c2 = read_ply(out / "cloud.ply"), read_ply(root / "3d" / "cloud.ply")
    np.testing.assert_array_equal(c1.labels, c2.labels)
    np.testing.assert_array_equal(c1.points, c2.points)
    # the votes of the frames projected before the kill count for their new IDs now: the
    # vote shares of the fused labels are those saved before any frame was rewritten
    np.testing.assert_array_equal(c1.label_conf, c2.label_conf)
    assert doc["association"] == runs[2]["association"]
    assert doc["n_ids"] == runs[2]["n_ids"]


def test_association_runs_on_sam_masks(scene, tmp_path):
    """The tiny SAM architecture with random weights feeds the tracker; association runs on
    whatever IDs it carries and the outputs stay consistent."""
    pytest.importorskip("segment_anything")
    from lift3d.config import SegmenterConfig
    from lift3d.segment.sam_checkpoint import write_random_checkpoint

    ckpt = write_random_checkpoint(tmp_path / "tiny.pth", "tiny")
    cfg = SegmentConfig(segmenter=SegmenterConfig(name="sam", sam_checkpoint=str(ckpt),
                                                  device="cpu"),
                        associate=AssociateConfig(method="3d"), max_frames=3)
    doc = run_segment(scene, tmp_path / "out", cfg, progress=False)
    assert doc["segmenter"] == "sam" and doc["association"]["method"] == "3d"
    ids = set(np.unique(np.concatenate(
        [read_label_png(tmp_path / "out" / "labels" / f"{t}.png").ravel() for t in range(3)])))
    merged_away = {i for m in doc["association"]["merges"] for i in m["ids"] if i != m["into"]}
    assert not ids & merged_away
