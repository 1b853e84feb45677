"""`lift3d batch` on a real local Ray (2 CPUs, no dashboard), started once for this module.

Tiny generated scenes (3 frames, 64x48) keep it fast. Outputs are compared byte for byte with
:func:`run_segment` run one scene at a time in this process.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="lift3d batch needs Ray: pip install 'lift3d[cluster]'")

from lift3d.batch import BatchConfig, expand_scenes, output_is_current, run_batch, scene_names  # noqa: E402
from lift3d.pipeline import SegmentConfig, run_segment  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
CFG = SegmentConfig(segmenter="classical")
N_SCENES = 3


@pytest.fixture(scope="module")
def ray_address():
    """A local Ray for the module; its address lets a `lift3d batch` subprocess join it."""
    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False,
             configure_logging=False)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Three tiny scenes, and each one's output made by run_segment alone (the reference)."""
    from lift3d.synth import make_scene

    root = tmp_path_factory.mktemp("batch")
    paths = [make_scene(root / "scenes" / f"s{i}", seed=i, n_frames=3, width=64, height=48)
             for i in range(N_SCENES)]
    refs = {p.name: root / "ref" / p.name for p in paths}
    for p in paths:
        run_segment(p, refs[p.name], CFG, progress=False)
    return root, paths, refs


def assert_same_output(out: Path, ref: Path) -> None:
    """Same label maps (bytes), same cloud, same H and figures in the report."""
    labels = sorted(p.name for p in (ref / "labels").iterdir())
    assert labels and sorted(p.name for p in (out / "labels").iterdir()) == labels
    for name in labels:
        assert (out / "labels" / name).read_bytes() == (ref / "labels" / name).read_bytes(), name
    assert (out / "cloud.ply").read_bytes() == (ref / "cloud.ply").read_bytes()
    a, b = (json.loads((d / "report.json").read_text()) for d in (out, ref))
    assert a["consistency"] == b["consistency"]
    assert a["quality"] == b["quality"] and a["n_ids"] == b["n_ids"]


def mtimes(folder: Path) -> dict[str, int]:
    return {str(p.relative_to(folder)): p.stat().st_mtime_ns for p in folder.rglob("*") if p.is_file()}


@pytest.fixture(scope="module")
def batched(ray_address, scenes):
    root, paths, _ = scenes
    out = root / "out"
    return out, run_batch([str(root / "scenes" / "s*")], out, CFG, BatchConfig(progress=False))


def test_batch_equals_one_by_one(batched, scenes):
    out, summary = batched
    _, paths, refs = scenes
    assert summary["counts"] == {"done": N_SCENES, "skipped": 0, "failed": 0, "pending": 0}
    for p in paths:
        assert_same_output(out / p.name, refs[p.name])
        rec = summary["scenes"][p.name]
        report = json.loads((refs[p.name] / "report.json").read_text())
        assert rec["H"] == report["consistency"]["H"] and rec["n_frames"] == 3
        assert rec["sequence_iou"] == report["quality"]["sequence"]["sequence_iou"]
        assert rec["peak_rss_mb"] > 50 and rec["seconds"] > 0 and rec["threads"] == 1
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["counts"] == summary["counts"]
    md = (out / "summary.md").read_text()
    assert all(f"| {p.name} | done |" in md for p in paths)


def test_corrupt_scene_fails_alone(batched, scenes, tmp_path):
    """A scene with a damaged depth file: its one-line error in the summary, the others (here
    already finished, so skipped untouched) fine, and the exit code counts the failure."""
    from typer.testing import CliRunner

    from lift3d.cli import app

    out, _ = batched
    root, paths, _ = scenes
    bad = tmp_path / "broken"
    shutil.copytree(paths[0], bad)
    depth = sorted((bad / "depth").iterdir())[1]
    depth.write_bytes(b"not a png")
    before = mtimes(out / paths[1].name)
    res = CliRunner().invoke(app, ["batch", str(root / "scenes" / "s*"), str(bad), "-o", str(out),
                                   "--segmenter", "classical", "-q"])
    assert res.exit_code == 1, res.output
    summary = json.loads((out / "summary.json").read_text())
    rec = summary["scenes"]["broken"]
    assert rec["status"] == "failed"
    assert "\n" not in rec["error"] and depth.name in rec["error"], rec["error"]
    assert {summary["scenes"][p.name]["status"] for p in paths} == {"skipped"}
    assert mtimes(out / paths[1].name) == before
    assert rec["error"] in (out / "summary.md").read_text()


def test_killed_driver_resumes(ray_address, scenes, tmp_path):
    """SIGKILL the driver once a scene has finished; the same command again skips the finished
    scenes (their files untouched) and completes the rest with the same outputs."""
    root, paths, refs = scenes
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "lift3d", "batch", *map(str, paths), "-o", str(out),
           "--segmenter", "classical", "--address", ray_address, "-q"]
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    driver = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    counts = _wait_for(lambda: _finished(out), timeout=120)
    driver.send_signal(signal.SIGKILL)
    driver.wait()
    summary = json.loads((out / "summary.json").read_text())
    done = [n for n, r in summary["scenes"].items() if r["status"] == "done"]
    assert counts and len(done) < N_SCENES, summary["counts"]
    before = {n: mtimes(out / n) for n in done}
    res = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stdout + res.stderr
    summary = json.loads((out / "summary.json").read_text())
    for n in done:
        assert summary["scenes"][n]["status"] == "skipped"
        assert mtimes(out / n) == before[n], n
    # a scene in flight at the kill may have written its last file before its worker was
    # stopped: then it is complete, and skipped too; the one not yet started is run
    rest = [r["status"] for n, r in summary["scenes"].items() if n not in done]
    assert "done" in rest and set(rest) <= {"done", "skipped"}, rest
    for p in paths:
        assert_same_output(out / p.name, refs[p.name])
        assert output_is_current(p, out / p.name, CFG)


def test_killed_worker_retried_once_then_failed(ray_address, scenes, tmp_path):
    """The worker running scene ``a`` is killed once: Ray reruns it and it finishes. The one
    running ``b`` is killed on both tries: recorded failed, saying the task died."""
    root, paths, refs = scenes
    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(paths[0], a)
    shutil.copytree(paths[1], b)
    box: dict = {}
    t = threading.Thread(target=lambda: box.update(run_batch(
        [a, b], tmp_path / "out", CFG, BatchConfig(progress=False))))
    t.start()
    try:
        kills = {"a": 1, "b": 2}
        while any(kills.values()) and t.is_alive():
            for name, left in kills.items():
                if left and _kill_task(f"lift3d:{name}"):
                    kills[name] -= 1
            time.sleep(0.05)
    finally:
        t.join(timeout=240)
    assert not any(kills.values()), "a task finished before it could be killed"
    recs = box["scenes"]
    assert recs["a"]["status"] == "done", recs["a"]
    assert_same_output(tmp_path / "out" / "a", refs[paths[0].name])
    assert recs["b"]["status"] == "failed" and "task died" in recs["b"]["error"], recs["b"]


def _kill_task(name: str) -> bool:
    """SIGKILL the Ray worker whose process title says it is running task ``name``."""
    for proc in Path("/proc").iterdir():
        try:
            title = (proc / "cmdline").read_bytes().split(b"\0")[0].decode()
        except (OSError, ValueError):
            continue
        if title == f"ray::{name}":
            os.kill(int(proc.name), signal.SIGKILL)
            _wait_for(lambda p=proc: not p.exists() or "zombie" in _state(p), timeout=10)
            return True
    return False


def _state(proc: Path) -> str:
    try:
        return (proc / "status").read_text().split("State:")[1].split("\n")[0].lower()
    except (OSError, IndexError):
        return "zombie"


def _finished(out: Path) -> int:
    try:
        counts = json.loads((out / "summary.json").read_text())["counts"]
    except (OSError, ValueError, KeyError):
        return 0
    return counts["done"]


def _wait_for(cond, timeout: float):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        v = cond()
        if v:
            return v
        time.sleep(0.05)
    return None


def test_scene_lists_globs_and_names(tmp_path):
    """Folders, globs and list files give scenes; equal folder names get their parents."""
    for d in ("x/scene0", "y/scene0", "y/scene1"):
        (tmp_path / d).mkdir(parents=True)
    listing = tmp_path / "scenes.txt"
    listing.write_text("# two scenes\nx/scene0\n\ny/scene*  # a glob\n")
    paths = expand_scenes([listing, tmp_path / "x" / "scene0"])
    assert [p.resolve() for p in paths] == [(tmp_path / d).resolve()
                                            for d in ("x/scene0", "y/scene0", "y/scene1")]
    assert scene_names(paths) == ["x__scene0", "y__scene0", "scene1"]
    from lift3d.errors import InputError

    with pytest.raises(InputError, match="no folder matches"):
        expand_scenes([str(tmp_path / "nothing*")])


def test_eval_with_ray(ray_address, scenes, tmp_path):
    """`lift3d eval --ray` over the folder of scenes: one task per run, the same figures as
    each scene's run_segment report."""
    from lift3d.evaluate import EvalConfig, evaluate
    from lift3d.run_figures import figures

    root, paths, refs = scenes
    # the refs ran segment's defaults: association auto, eval's "associated" method
    res = evaluate(root / "scenes", tmp_path / "eval", EvalConfig(methods=("associated",), progress=False),
                   BatchConfig(progress=False))
    assert sorted(res.sequences) == sorted(p.name for p in paths)
    for p in paths:
        got = res.sequences[p.name].methods["associated"].figures.to_json()
        want = figures(json.loads((refs[p.name] / "report.json").read_text()))
        got.pop("s_per_frame"), want.pop("s_per_frame")
        assert got == want, p.name
