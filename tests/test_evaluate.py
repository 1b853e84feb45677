"""`lift3d eval` through the CLI: a generated synthetic dataset and two real DAVIS sequences.

Each dataset is evaluated once (module fixtures); the tests check the written results (JSON
keys for every method, the markdown table, valid PNG plots) and, on the synthetic scenes,
that tracking beats the per-frame baseline on the ID figures, 3D AP and H. The association
runs with ``--associate off`` here (the plumbing of the ``associated`` method: it must give
the tracked figures); the associators' own tests live with them. A ScanNet-style labelled
scan written from a scene's ground truth must score the AP that ground truth scores.
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
    output = _eval([str(data), "-o", str(out), "--associate", "off"])
    return out, output, data


@pytest.fixture(scope="module")
def davis_eval(tmp_path_factory):
    from tests.conftest import shared_path

    root = shared_path("data", "davis2016_480p")
    out = tmp_path_factory.mktemp("davis_eval")
    output = _eval([str(root), "-o", str(out), "--sequences", "blackswan,dog", "--max-frames", "3",
                    "--methods", "tracked,independent"])
    return out, output


def _check_outputs(out, sequences: list[str], keys: set[str], methods: set[str]) -> dict:
    results = json.loads((out / "results.json").read_text())
    assert list(results["sequences"]) == sequences
    for name in sequences:
        got = results["sequences"][name]["methods"]
        assert set(got) == methods
        for m in got.values():
            assert keys <= set(m["figures"]), keys - set(m["figures"])
            assert len(m["per_frame"]["H"]) == m["figures"]["n_frames"]
    assert set(results["mean"]) == methods
    md = (out / "results.md").read_text()
    lines = md.splitlines()
    start = next(i for i, ln in enumerate(lines) if ln.startswith("|"))
    end = next((i for i in range(start, len(lines)) if not lines[i].startswith("|")), len(lines))
    table = lines[start:end]  # the first table (a kinds table may follow)
    assert table[0].startswith("| sequence | method |")
    assert len(table) == 2 + len(methods) * (len(sequences) + 1)  # header, rule, rows, means
    for name in sequences:
        for kind in ("per_frame", "strip"):
            png = out / "plots" / f"{name}_{kind}.png"
            assert png.read_bytes()[:8] == PNG_MAGIC, png
            import cv2

            img = cv2.imread(str(png))
            assert img is not None and img.shape[0] > 100 and img.std() > 5, png
    assert (out / "plots" / "summary.png").read_bytes()[:8] == PNG_MAGIC
    return results


SYNTH_METHODS = {"tracked", "associated", "independent"}


def test_synthetic_results_written(synth_eval):
    out, output, _ = synth_eval
    assert "tracked: 2 sequences" in output and "associated: 2 sequences" in output
    results = _check_outputs(out, ["scene0", "scene1"], {
        "H", "n_ids", "sequence_iou", "frame_iou", "id_survival", "inst_miou", "ap", "ap50",
        "ap25", "n_found", "n_gt"}, SYNTH_METHODS)
    for run in ("scene0/tracked", "scene0/associated", "scene1/independent"):
        assert (out / run / "report.json").is_file()
        assert len(list((out / run / "labels").glob("*.png"))) == 8
    md = (out / "results.md").read_text()
    head = [c.strip() for c in next(ln for ln in md.splitlines() if ln.startswith("|")).split("|")]
    assert {"AP", "AP50", "AP25", "ID survival", "3D mIoU"} <= set(head), head
    for name, seq in results["sequences"].items():
        gt = seq["gt3d"]
        assert gt.endswith("gt_cloud.ply") and name in gt
        for m in seq["methods"].values():
            f = m["figures"]
            assert 0 <= f["ap"] <= f["ap50"] <= f["ap25"] <= 1, f
            curves = m["per_frame"]
            survival = sum(curves["iou_sequence"]) / sum(curves["iou_frame"])
            assert f["id_survival"] == pytest.approx(survival, abs=1e-5) and f["id_survival"] <= 1
    mean = results["mean"]["tracked"]
    rows = [s["methods"]["tracked"]["figures"] for s in results["sequences"].values()]
    assert mean["ap50"] == pytest.approx(sum(r["ap50"] for r in rows) / 2)
    assert mean["n_sequences"] == 2


def test_associated_plumbing_with_association_off(synth_eval):
    """--associate off: the `associated` runs are tracked runs of their own, same figures."""
    out, _, _ = synth_eval
    results = json.loads((out / "results.json").read_text())
    assert results["config"]["associate"] == "off"
    for seq in results["sequences"].values():
        t, a = (dict(seq["methods"][m]["figures"]) for m in ("tracked", "associated"))
        t.pop("s_per_frame"), a.pop("s_per_frame")
        assert a == t
    report = json.loads((out / "scene0" / "associated" / "report.json").read_text())
    assert report["config"]["associate"]["method"] == "off" and report["mode"] == "tracked"


def test_tracking_beats_baseline_on_synthetic(synth_eval):
    out, _, _ = synth_eval
    results = json.loads((out / "results.json").read_text())
    for name, seq in results["sequences"].items():
        t, b = seq["methods"]["tracked"]["figures"], seq["methods"]["independent"]["figures"]
        assert t["H"] > b["H"] + 0.2, (name, t["H"], b["H"])
        for k in ("sequence_iou", "id_survival", "inst_miou", "ap25"):
            assert t[k] > b[k], (name, k, t[k], b[k])
    # 8 frames of 160x120: the classical segmenter's fragments keep AP (IoU 0.5:0.9) near 0
    # for both methods; the verdicts may say so, and nothing else
    for line in results["verdicts"]:
        assert line.split("did not raise ")[1].split(" (")[0].split(", ") == ["ap"], line


def test_loss_by_kind_of_object(synth_eval):
    """Per ground-truth object, the run's sequence IoU (their mean is the run's figure), and
    per kind of object of the generated scenes, how much of the mean it loses."""
    out, _, data = synth_eval
    results = json.loads((out / "results.json").read_text())
    n_objects, ious = 0, {m: [] for m in SYNTH_METHODS}
    for name, seq in results["sequences"].items():
        shapes = {str(o["id"]): o["shape"]
                  for o in json.loads((data / name / "scene.json").read_text())["objects"]}
        assert seq["kinds"] == shapes  # the objects preset: shapes on the floor
        for m, res in seq["methods"].items():
            per = res["per_object"]
            assert set(per) <= set(shapes) and len(per) == res["figures"]["n_gt"] > 0
            assert sum(per.values()) / len(per) == pytest.approx(
                res["figures"]["sequence_iou"], abs=1e-5)
            ious[m] += [(shapes[g], v) for g, v in per.items()]
        n_objects += len(seq["methods"]["tracked"]["per_object"])
    md = (out / "results.md").read_text()
    assert "## Where the sequence IoU is lost, by kind of object" in md
    for m in SYNTH_METHODS:
        kinds = results["loss_by_kind"][m]
        assert sum(k["n"] for k in kinds.values()) == n_objects
        mean = sum(v for _, v in ious[m]) / n_objects
        assert sum(k["loss"] for k in kinds.values()) == pytest.approx(1 - mean, abs=1e-9)
        losses = [k["loss"] for k in kinds.values()]
        assert losses == sorted(losses, reverse=True)
        for kind, k in kinds.items():
            mine = [v for s, v in ious[m] if s == kind]
            assert k["n"] == len(mine) and k["sequence_iou"] == pytest.approx(
                sum(mine) / len(mine))
            assert f"| {kind} | {k['n']} |" in md


def test_object_kinds_name_support_and_wall(tmp_path):
    """A room's objects: what stands on what, what stands against a wall; a scene.json of
    another generator has no kinds."""
    from lift3d.evaluate import object_kinds
    from lift3d.synth import GENERATOR

    objects = [{"id": 1, "shape": "shelf", "support": 0, "wall": "wall_yn"},
               {"id": 2, "shape": "box", "support": 1, "wall": None},
               {"id": 3, "shape": "chair", "support": 0, "wall": None}]
    (tmp_path / "scene.json").write_text(json.dumps({"generator": GENERATOR, "objects": objects}))
    assert object_kinds(tmp_path) == {"1": "shelf against a wall", "2": "box on shelf",
                                      "3": "chair"}
    (tmp_path / "scene.json").write_text(json.dumps({"generator": "other", "objects": objects}))
    assert object_kinds(tmp_path) == {}
    assert object_kinds(tmp_path / "missing") == {}


def test_eval_reuses_finished_runs(synth_eval):
    """A second eval over the same folder reads the runs back: same figures, no new labels."""
    out, _, data = synth_eval
    before = json.loads((out / "results.json").read_text())
    stamp = (out / "scene0" / "tracked" / "labels" / "0.png").stat().st_mtime_ns
    _eval([str(data), "-o", str(out), "--sequences", "scene0", "--associate", "off"])
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
    results = _check_outputs(out, ["blackswan", "dog"], keys | {"id_survival"},
                             {"tracked", "independent"})
    for seq in results["sequences"].values():
        assert seq["geometry"] == "flow" and seq["layout"] == "davis"
        for m in seq["methods"].values():
            f = m["figures"]
            assert f["n_frames"] == 3
            assert 0 <= f["seq_iou"] <= f["iou"] <= 1  # one ID for all frames cannot beat the best
            assert f["id_survival"] == pytest.approx(f["seq_iou"] / f["iou"], abs=1e-5)
            assert "ap" not in f  # 2D flow geometry: no cloud
            assert 0 <= f["H"] <= 1
            assert len(m["per_frame"]["iou_sequence"]) == 3
    md = (out / "results.md").read_text()
    assert "J&F" in md and "seqID IoU" in md


def test_scannet_style_scan_scores_like_the_ground_truth(synth_eval, tmp_path):
    """scene0's ground-truth cloud written as a ScanNet scan (mesh + segs + aggregation), given
    with --gt3d: the same AP, AP50, AP25 and counts as against the ground truth directly."""
    import shutil

    from _scannet_gt import write_scannet_scan

    from lift3d.io.outputs import read_ply
    from lift3d.metrics.instance3d import score_cloud

    out, _, data = synth_eval
    gt = read_ply(data / "scene0" / "gt_cloud.ply")
    scan = write_scannet_scan(tmp_path / "scene0000_00", "scene0000_00", gt.points, gt.labels)
    shutil.copytree(out / "scene0" / "tracked", tmp_path / "eval" / "scene0" / "tracked")
    stamp = (tmp_path / "eval" / "scene0" / "tracked" / "report.json").stat().st_mtime_ns
    _eval([str(data / "scene0"), "-o", str(tmp_path / "eval"), "--methods", "tracked",
           "--gt3d", str(scan)])
    assert (tmp_path / "eval" / "scene0" / "tracked" / "report.json").stat().st_mtime_ns == stamp
    res = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert res["sequences"]["scene0"]["gt3d"].endswith("scene0000_00.aggregation.json")
    got = res["sequences"]["scene0"]["methods"]["tracked"]["figures"]
    before = json.loads((out / "results.json").read_text())
    want = before["sequences"]["scene0"]["methods"]["tracked"]["figures"]
    keys = ("ap", "ap50", "ap25", "inst_miou", "n_gt", "n_pred", "n_found", "n_split", "n_merged")
    assert {k: got[k] for k in keys} == {k: want[k] for k in keys}
    cloud = read_ply(out / "scene0" / "tracked" / "cloud.ply")
    direct = score_cloud(cloud.points, cloud.labels, cloud.label_conf, gt.points, gt.labels,
                         pred_conf=cloud.instance_confidence())
    assert got["ap"] == pytest.approx(direct.ap, abs=1e-6) and got["n_gt"] == direct.n_gt > 3
    assert got["ap50"] == pytest.approx(direct.ap50, abs=1e-6)


def test_the_runs_own_3d_figures_are_reused_only_for_the_same_ground_truth(synth_eval):
    """`lift3d segment` scored each synthetic run's cloud against the scene's gt_cloud.ply: the
    eval takes those figures (scored_by_run) and they are exactly what scoring again gives;
    another file, vertex property or instance config is scored again."""
    from dataclasses import asdict, replace

    from lift3d.evaluate import score_instances, scored_by_run
    from lift3d.io.gt3d import find_gt3d
    from lift3d.metrics.instance3d import InstanceMetricsConfig

    out, _, data = synth_eval
    results = json.loads((out / "results.json").read_text())
    cfg = InstanceMetricsConfig()
    gt = find_gt3d(data / "scene0")
    for method in ("tracked", "independent"):
        run = out / "scene0" / method
        report = json.loads((run / "report.json").read_text())
        own = report["quality"]["instances_3d"]
        assert scored_by_run(report, gt, cfg)
        assert asdict(score_instances(run, gt, cfg)) == own
        assert results["sequences"]["scene0"]["methods"][method]["figures"]["ap"] == own["ap"]
    assert not scored_by_run(report, find_gt3d(data / "scene1"), cfg)
    assert not scored_by_run(report, replace(gt, prop="instance"), cfg)
    assert not scored_by_run(report, gt, replace(cfg, min_region_size=cfg.min_region_size + 1))
    assert not scored_by_run(report, None, cfg)

def test_gt3d_needs_a_single_sequence(synth_eval, tmp_path):
    _, _, data = synth_eval
    res = CliRunner().invoke(app, ["eval", str(data), "-o", str(tmp_path), "--gt3d", str(data),
                                   "--methods", "tracked", "-q"])
    assert res.exit_code == 1 and "--gt3d names one scene's ground truth" in res.output


def test_unknown_method_is_one_line_error(synth_eval, tmp_path):
    _, _, data = synth_eval
    res = CliRunner().invoke(app, ["eval", str(data), "-o", str(tmp_path), "--methods", "nope"])
    assert res.exit_code == 1 and "unknown method 'nope'" in res.output
