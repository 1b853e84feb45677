"""`lift3d eval` through the CLI: a generated synthetic dataset and two real DAVIS sequences.

Each dataset is evaluated once (session fixtures); the tests check the written results
(JSON keys for both methods, the markdown table, valid PNG plots) and, on the synthetic scenes,
that tracking beats the per-frame baseline on the sequence-level ID figures and on H.
"""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lift3d.cli import app

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _eval(args: list[str]) -> str:
    res = CliRunner().invoke(app, ["eval", *args, "-q"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    return res.output


@pytest.fixture(scope="module")
def synth_eval(tmp_path_factory):
    from lift3d.synth import make_scene

    data = tmp_path_factory.mktemp("synth_data")
    for seed in (0, 1):
        make_scene(data / f"scene{seed}", seed=seed, n_frames=8, width=160, height=120)
    out = tmp_path_factory.mktemp("synth_eval")
    output = _eval([str(data), "-o", str(out)])
    return out, output, data


@pytest.fixture(scope="module")
def davis_eval(tmp_path_factory):
    from tests.conftest import shared_path

    root = shared_path("data", "davis2016_480p")
    out = tmp_path_factory.mktemp("davis_eval")
    output = _eval([str(root), "-o", str(out), "--sequences", "blackswan,dog", "--max-frames", "3"])
    return out, output


def _check_outputs(out, sequences: list[str], keys: set[str]) -> dict:
    results = json.loads((out / "results.json").read_text())
    assert list(results["sequences"]) == sequences
    for name in sequences:
        methods = results["sequences"][name]["methods"]
        assert set(methods) == {"tracked", "independent"}
        for m in methods.values():
            assert keys <= set(m["figures"]), keys - set(m["figures"])
            assert len(m["per_frame"]["H"]) == m["figures"]["n_frames"]
    assert set(results["mean"]) == {"tracked", "independent"}
    md = (out / "results.md").read_text()
    table = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert table[0].startswith("| sequence | method |")
    assert len(table) == 2 + 2 * len(sequences) + 2  # header, rule, rows, two mean rows
    for name in sequences:
        for kind in ("per_frame", "strip"):
            png = out / "plots" / f"{name}_{kind}.png"
            assert png.read_bytes()[:8] == PNG_MAGIC, png
            import cv2

            img = cv2.imread(str(png))
            assert img is not None and img.shape[0] > 100 and img.std() > 5, png
    assert (out / "plots" / "summary.png").read_bytes()[:8] == PNG_MAGIC
    return results


def test_synthetic_results_written(synth_eval):
    out, output, _ = synth_eval
    assert "tracked: 2 sequences" in output
    _check_outputs(out, ["scene0", "scene1"], {
        "H", "n_ids", "sequence_iou", "frame_iou", "inst_miou", "ap50", "n_found", "n_gt"})
    for run in ("scene0/tracked", "scene1/independent"):
        assert (out / run / "report.json").is_file()
        assert len(list((out / run / "labels").glob("*.png"))) == 8


def test_tracking_beats_baseline_on_synthetic(synth_eval):
    out, _, _ = synth_eval
    results = json.loads((out / "results.json").read_text())
    for name, seq in results["sequences"].items():
        t, b = seq["methods"]["tracked"]["figures"], seq["methods"]["independent"]["figures"]
        assert t["H"] > b["H"] + 0.2, (name, t["H"], b["H"])
        assert t["sequence_iou"] > b["sequence_iou"], (name, t["sequence_iou"], b["sequence_iou"])
        assert t["inst_miou"] > b["inst_miou"], (name, t["inst_miou"], b["inst_miou"])
    assert results["verdicts"] == []


def test_eval_reuses_finished_runs(synth_eval):
    """A second eval over the same folder reads the runs back: same figures, no new labels."""
    out, _, data = synth_eval
    before = json.loads((out / "results.json").read_text())
    stamp = (out / "scene0" / "tracked" / "labels" / "0.png").stat().st_mtime_ns
    _eval([str(data), "-o", str(out), "--sequences", "scene0", "--methods", "tracked,independent"])
    after = json.loads((out / "results.json").read_text())
    assert list(after["sequences"]) == ["scene0"]
    assert after["sequences"]["scene0"] == before["sequences"]["scene0"]
    assert (out / "scene0" / "tracked" / "labels" / "0.png").stat().st_mtime_ns == stamp


def test_unknown_sequence_is_one_line_error(synth_eval, tmp_path):
    _, _, data = synth_eval
    res = CliRunner().invoke(app, ["eval", str(data), "-o", str(tmp_path), "--sequences", "nope"])
    assert res.exit_code == 1
    assert "no sequence 'nope'" in res.output and "scene0" in res.output


def test_davis_single_object_protocol(davis_eval):
    out, _ = davis_eval
    keys = {"H", "JF", "J", "J_recall", "J_decay", "F", "F_recall", "F_decay", "iou", "f1",
            "precision", "recall", "seq_JF", "seq_iou", "seq_f1", "seq_precision", "seq_recall",
            "sequence_iou"}
    results = _check_outputs(out, ["blackswan", "dog"], keys)
    for seq in results["sequences"].values():
        assert seq["geometry"] == "flow" and seq["layout"] == "davis"
        for m in seq["methods"].values():
            f = m["figures"]
            assert f["n_frames"] == 3
            assert 0 <= f["seq_iou"] <= f["iou"] <= 1  # one ID for all frames cannot beat the best
            assert 0 <= f["H"] <= 1
            assert len(m["per_frame"]["iou_sequence"]) == 3
    md = (out / "results.md").read_text()
    assert "J&F" in md and "seqID IoU" in md
