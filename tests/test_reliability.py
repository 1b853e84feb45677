"""Never a silent wrong result (issue 15): the output folder's fingerprint, stale results, the
lock, depth out of range, write-side errors, checks before the expensive work, and the habits
users expect (missing ground-truth frames, SIGINT, the default output folder).

Small generated scenes (8 frames, 160x120) keep each run to a few seconds; the processes that
must be real (the lock, SIGINT) are real ``lift3d segment`` processes.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from lift3d import errors
from lift3d.cli import app
from lift3d.errors import InputError
from lift3d.io.outputs import read_label_png
from lift3d.pipeline import SegmentConfig, run_segment
from lift3d.synth import make_scene

CFG = SegmentConfig(segmenter="classical")
SMALL = {"n_frames": 8, "width": 160, "height": 120}
runner = CliRunner()


@pytest.fixture(scope="module")
def scenes(tmp_path_factory):
    """Two different small scenes (seeds 0 and 1) and a reference run of each."""
    root = tmp_path_factory.mktemp("reliability")
    out = {}
    for seed in (0, 1):
        scene = make_scene(root / f"scene{seed}", seed=seed, **SMALL)
        ref = root / f"ref{seed}"
        out[seed] = (scene, ref, run_segment(scene, ref, CFG, progress=False))
    return out


def copy_scene(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def labels_of(out: Path) -> dict[str, np.ndarray]:
    return {p.name: read_label_png(p) for p in sorted((out / "labels").glob("*.png"))}


def assert_same_labels(a: Path, b: Path) -> None:
    la, lb = labels_of(a), labels_of(b)
    assert la.keys() == lb.keys()
    for name in la:
        np.testing.assert_array_equal(la[name], lb[name], err_msg=name)


def one_line_error(result_output: str, *needles: str) -> str:
    lines = [ln for ln in result_output.splitlines() if ln.strip()]
    assert len(lines) == 1, result_output
    assert lines[0].startswith("lift3d: error:") and "Traceback" not in result_output, lines
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


@contextmanager
def disk_full_at(monkeypatch, n: int):
    """The atomic writer's ``n``-th rename fails with ENOSPC (a disk that fills mid-run, where
    no tmpfs can be mounted); the others go through."""
    import lift3d.io.atomic as atomic

    real, calls = os.replace, []

    def full(src, dst):
        calls.append(dst)
        if len(calls) == n:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real(src, dst)

    with monkeypatch.context() as m:
        m.setattr(atomic.os, "replace", full)
        yield


def cli(*args: str):
    return runner.invoke(app, list(args))


# --------------------------------------------------------------------------------- case 2


def test_scene_regenerated_in_place_is_recomputed(scenes, tmp_path):
    """Same folder, same frame names, other content: the cached labels must not be reused."""
    scene0, ref0, _ = scenes[0]
    _, ref1, rep1 = scenes[1]
    scene = copy_scene(scene0, tmp_path / "scene")
    out = tmp_path / "out"
    run_segment(scene, out, CFG, progress=False)
    assert_same_labels(out, ref0)
    make_scene(scene, seed=1, **SMALL)  # regenerated in place (synth overwrites its scenes)
    again = run_segment(scene, out, CFG, progress=False)
    assert_same_labels(out, ref1)
    assert again["quality"]["sequence"] == rep1["quality"]["sequence"]


def test_fingerprint_covers_the_code_version(scenes):
    from lift3d.io.run_folder import code_version

    scene0, ref0, _ = scenes[0]
    recorded = json.loads((ref0 / "cache" / "run.json").read_text())
    import lift3d

    assert recorded["code"] == code_version() and code_version().startswith(lift3d.__version__)


# --------------------------------------------------------------------------------- case 3


def test_changed_run_killed_before_its_first_frame_leaves_nothing_stale(scenes, tmp_path,
                                                                        monkeypatch):
    """Change the configuration, kill the run just before its first frame, rerun: every
    result must be the new configuration's, none the old run's."""
    import lift3d.pipeline
    from lift3d.track import TrackConfig

    scene0, ref0, _ = scenes[0]
    out = tmp_path / "out"
    shutil.copytree(ref0, out)  # a finished run of the old configuration
    new = SegmentConfig(segmenter="classical", track=TrackConfig(overlap_thr=0.3))

    def killed(*args, **kwargs):
        raise KeyboardInterrupt  # what SIGINT does at this point

    with monkeypatch.context() as m:
        m.setattr(lift3d.pipeline, "track_sequence", killed)
        with pytest.raises(KeyboardInterrupt):
            run_segment(scene0, out, new, progress=False)
    for stale in ("labels", "overlays", "cloud.ply", "report.json", "cameras.json",
                  "cache/track_state.npz"):
        assert not (out / stale).exists(), stale
    run_segment(scene0, out, new, progress=False)
    fresh = tmp_path / "fresh"
    run_segment(scene0, fresh, new, progress=False)
    assert_same_labels(out, fresh)
    assert (out / "cloud.ply").read_bytes() == (fresh / "cloud.ply").read_bytes()


# ------------------------------------------------------------------------------ cases 4, 10


def _start_segment(scene: Path, out: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "lift3d", "segment", str(scene), "-o", str(out),
           "--segmenter", "classical", "-q"]
    # SIGINT as a terminal gives it: a shell's background job (nohup ... &, some CI runners)
    # starts with SIGINT ignored, and a child inherits that (the run then ignored ^C, exit 0)
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True, env={**os.environ, "PYTHONUNBUFFERED": "1"},
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def _wait_for_labels(proc: subprocess.Popen, out: Path, n: int) -> None:
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if len(list((out / "labels").glob("*.png"))) >= n:
            return
        time.sleep(0.05)
    raise AssertionError(f"no {n} labels before the run ended: {proc.stderr.read().decode()}")


def test_second_run_into_a_busy_folder_fails_at_once_and_sigint_resumes(scenes, tmp_path):
    """Run A holds the folder: run B (another scene, same folder) fails at once with one line
    naming A's pid; A, interrupted, says how to resume; its leftover lock file (pid dead) does
    not block the rerun, which ends with the labels of an uninterrupted run."""
    big = make_scene(tmp_path / "big", seed=0, n_frames=30, width=160, height=120)
    scene1, _, _ = scenes[1]
    out = tmp_path / "out"
    a = _start_segment(big, out)
    try:
        _wait_for_labels(a, out, 2)
        t0 = time.time()
        b = subprocess.run([sys.executable, "-m", "lift3d", "segment", str(scene1), "-o", str(out),
                            "--segmenter", "classical", "-q"], capture_output=True, text=True)
        assert b.returncode == 1, b.stderr
        line = one_line_error(b.stderr, "in use", f"pid {a.pid}", str(out))
        assert time.time() - t0 < 30, line  # at once: before loading anything
        assert a.poll() is None, "run A must still be running"
        a.send_signal(signal.SIGINT)
        _, err = a.communicate(timeout=120)
    finally:
        if a.poll() is None:
            os.killpg(a.pid, signal.SIGKILL)
    assert a.returncode == 130, err.decode()
    assert "rerun the same command to resume" in err.decode()
    assert "Traceback" not in err.decode()
    lock = json.loads((out / ".lift3d.lock").read_text())
    assert lock["pid"] == a.pid  # left behind by the dead run: must not block
    done = len(list((out / "labels").glob("*.png")))
    assert 2 <= done < 30
    run_segment(big, out, CFG, progress=False)
    ref = tmp_path / "ref"
    run_segment(big, ref, CFG, progress=False)
    assert_same_labels(out, ref)


def test_lock_in_process_names_the_holder(scenes, tmp_path):
    from lift3d.io.run_folder import FolderLock

    scene0, _, _ = scenes[0]
    with FolderLock(tmp_path / "out"):
        with pytest.raises(errors.OutputInUse, match=rf"in use by another lift3d run \(pid {os.getpid()}"):
            run_segment(scene0, tmp_path / "out", CFG, progress=False)
    assert not (tmp_path / "out" / "labels").exists()


# --------------------------------------------------------------------------------- case 5


def _fill_depth(scene: Path, frames, value: int) -> None:
    for i in frames:
        p = scene / "depth" / f"{i}.png"
        d = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(p), np.full_like(d, value))


def test_frame_without_valid_depth_is_named(scenes, tmp_path):
    scene = copy_scene(scenes[0][0], tmp_path / "scene")
    _fill_depth(scene, [3], 65535)  # 65.5 m: beyond the rgbd working range
    with pytest.warns(UserWarning, match=r"3\.jpg: frame 3 has no valid depth"):
        rep = run_segment(scene, tmp_path / "out", CFG, progress=False)
    assert rep["n_frames"] == 8 and rep["cloud_points"] > 0


def test_scene_without_valid_depth_is_an_error(scenes, tmp_path):
    scene = copy_scene(scenes[0][0], tmp_path / "scene")
    _fill_depth(scene, range(8), 65535)
    with pytest.warns(UserWarning, match="no valid depth"), \
            pytest.raises(InputError, match="no frame has valid depth"):
        run_segment(scene, tmp_path / "out", CFG, progress=False)
    assert not (tmp_path / "out" / "report.json").exists()


def test_eight_bit_depth_scene_is_one_line_naming_the_file(scenes, tmp_path):
    scene = copy_scene(scenes[0][0], tmp_path / "scene")
    for i in range(8):
        p = scene / "depth" / f"{i}.png"
        d = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
        cv2.imwrite(str(p), np.clip(d // 20, 0, 255).astype(np.uint8))
    r = cli("segment", str(scene), "-o", str(tmp_path / "out"), "--segmenter", "classical", "-q")
    assert r.exit_code == 1
    one_line_error(r.stderr, "0.png", "8-bit", "16-bit PNG")


# --------------------------------------------------------------------------------- case 7


def test_output_under_a_file_is_one_line(scenes, tmp_path):
    scene0, ref0, _ = scenes[0]
    (tmp_path / "file").write_text("x")
    r = cli("segment", str(scene0), "-o", str(tmp_path / "file" / "out"), "--segmenter",
            "classical", "-q")
    assert r.exit_code == 1
    one_line_error(r.stderr, str(tmp_path / "file"))
    r = cli("export", str(ref0), "--to", "colmap", "-o", str(tmp_path / "file" / "colmap"))
    assert r.exit_code == 1
    one_line_error(r.stderr, str(tmp_path / "file"))
    r = cli("view", str(ref0), "--render", str(tmp_path / "file" / "view.png"),
            "--backend", "numpy")
    assert r.exit_code == 1
    one_line_error(r.stderr, str(tmp_path / "file"))


@pytest.fixture
def small_fs(tmp_path):
    """A real tmpfs mount (needs root or CAP_SYS_ADMIN; skipped otherwise); yields a function
    that remounts it with the given options."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    ok = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mnt)],
                        capture_output=True)
    if ok.returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root): " + ok.stderr.decode().strip())

    def remount(opts: str) -> None:
        subprocess.run(["mount", "-o", f"remount,{opts}", str(mnt)], check=True)

    try:
        yield mnt, remount
    finally:
        subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_disk_full_is_one_line_and_the_folder_resumes(scenes, tmp_path, small_fs):
    """A real full disk (a 256 KB tmpfs) mid-run: one line naming the file; after freeing
    space the same command resumes and ends with the labels of an uninterrupted run."""
    mnt, remount = small_fs
    scene0, ref0, _ = scenes[0]
    out = mnt / "out"
    args = ["segment", str(scene0), "-o", str(out), "--segmenter", "classical", "-q"]
    r = cli(*args)
    assert r.exit_code == 1, r.output
    one_line_error(r.stderr, str(out), "No space left on device")
    remount("size=64m")
    r = cli(*args)
    assert r.exit_code == 0, r.output
    assert_same_labels(out, ref0)
    export = mnt / "export"
    st = os.statvfs(mnt)
    (mnt / "filler").write_bytes(b"\0" * (st.f_bavail * st.f_frsize - 16 * 1024))
    r = cli("export", str(ref0), "--to", "colmap", "-o", str(export))
    assert r.exit_code == 1
    one_line_error(r.stderr, str(export), "No space left on device")


def test_read_only_file_system_is_one_line(scenes, tmp_path, small_fs):
    mnt, remount = small_fs
    scene0, ref0, _ = scenes[0]
    remount("ro")
    r = cli("segment", str(scene0), "-o", str(mnt / "out"), "--segmenter", "classical", "-q")
    assert r.exit_code == 1
    one_line_error(r.stderr, str(mnt / "out"), "not writable")
    r = cli("view", str(ref0), "--render", str(mnt / "view.png"), "--backend", "numpy")
    assert r.exit_code == 1
    one_line_error(r.stderr, str(mnt / "view.png"), "Read-only file system")


def test_write_error_mid_run_names_the_file_and_resumes(scenes, tmp_path, monkeypatch):
    """Where no tmpfs can be mounted: the writer's rename fails with ENOSPC at the 5th file."""
    scene0, ref0, _ = scenes[0]
    out = tmp_path / "out"
    with disk_full_at(monkeypatch, 5):
        with pytest.raises(errors.OutputError, match=rf"{out}/.*: cannot write \(No space left"):
            run_segment(scene0, out, CFG, progress=False)
    assert not [p for p in out.rglob(".*") if p.name != ".lift3d.lock"]  # no temp files left
    run_segment(scene0, out, CFG, progress=False)
    assert_same_labels(out, ref0)


# --------------------------------------------------------------------------------- case 9


@pytest.mark.parametrize("args, needles", [
    (["--eps", "-1"], ["--eps must be a positive number"]),
    (["--eps", "nan"], ["--eps must be a positive number"]),
    (["--device", "tpu"], ["unknown device 'tpu'"]),
    (["--segmenter", "sam", "--sam-checkpoint", "{tmp}/missing.pth"], ["missing.pth", "not found"]),
])
def test_options_are_checked_before_the_scene_is_read(tmp_path, args, needles):
    """The scene folder does not exist: the option's error comes first, so it is checked
    before loading (and long before tracking)."""
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    r = cli("segment", str(tmp_path / "no-such-scene"), "-o", str(tmp_path / "out"), "-q", *args)
    assert r.exit_code == 1
    one_line_error(r.stderr, *needles)
    assert not (tmp_path / "out").exists()


def test_unwritable_output_is_checked_before_the_scene_is_read(tmp_path):
    (tmp_path / "file").write_text("x")
    r = cli("segment", str(tmp_path / "no-such-scene"), "-o", str(tmp_path / "file" / "o"), "-q")
    assert r.exit_code == 1
    one_line_error(r.stderr, "file")


# -------------------------------------------------------------------------------- case 10


def test_empty_sam_checkpoint_is_one_line(tmp_path):
    empty = tmp_path / "sam.pth"
    empty.write_bytes(b"")
    r = cli("segment", str(tmp_path / "no-such-scene"), "-o", str(tmp_path / "out"), "-q",
            "--segmenter", "sam", "--sam-checkpoint", str(empty))
    assert r.exit_code == 1
    one_line_error(r.stderr, "sam.pth", "empty")


def test_empty_checkpoint_through_load_sam(tmp_path):
    pytest.importorskip("torch")
    from lift3d.errors import CheckpointError
    from lift3d.segment.sam_checkpoint import load_sam

    (tmp_path / "sam.pth").write_bytes(b"")
    with pytest.raises(CheckpointError, match="empty"):
        load_sam(tmp_path / "sam.pth", verify=False)
    (tmp_path / "junk.pth").write_bytes(b"\0" * 10)
    with pytest.raises(CheckpointError, match="cannot be read as a PyTorch checkpoint"):
        load_sam(tmp_path / "junk.pth", verify=False)


def test_missing_ground_truth_frame_warns_and_is_not_scored(scenes, tmp_path):
    scene = copy_scene(scenes[0][0], tmp_path / "scene")
    (scene / "instance" / "5.png").unlink()
    with pytest.warns(UserWarning, match=r"no instance map for 1 of 8 frame\(s\) \(5\)"):
        rep = run_segment(scene, tmp_path / "out", CFG, progress=False)
    per_frame = rep["quality"]["sequence"]["per_frame_iou"]["frame"]
    ref = scenes[0][2]["quality"]["sequence"]["per_frame_iou"]["frame"]
    assert per_frame == ref[:5] + ref[6:]  # the same labels, frame 5 left out


def test_default_output_folder_is_named_after_the_scene(scenes, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    a = copy_scene(scenes[0][0], tmp_path / "kitchen")
    b = copy_scene(scenes[1][0], tmp_path / "office")
    for scene in (a, b):
        r = cli("segment", str(scene), "--segmenter", "classical", "-q")
        assert r.exit_code == 0, r.output
    for scene in (a, b):
        report = json.loads((tmp_path / "out" / scene.name / "report.json").read_text())
        assert report["scene"] == str(scene.resolve())


# ------------------------------------------------------------------ case 10: large images


@pytest.fixture(scope="module")
def large(tmp_path_factory):
    """A 320x240 scene run whole and at --max-side 160 (a stand-in for 6000x4000 photos)."""
    root = tmp_path_factory.mktemp("large")
    scene = make_scene(root / "scene", seed=0, n_frames=8, width=320, height=240)
    small = SegmentConfig(segmenter="classical", max_side=160)
    rep = run_segment(scene, root / "half", small, progress=False)
    return scene, root / "half", small, rep


def test_max_side_writes_outputs_at_the_input_resolution(large):
    from lift3d.io import load_scene
    from lift3d.io.outputs import read_cameras
    from lift3d.metrics.video import sequence_iou

    scene_dir, out, _, rep = large
    scene = load_scene(scene_dir)
    cams = read_cameras(out / "cameras.json")
    for f, cam in zip(scene.frames, cams):
        assert (cam["height"], cam["width"]) == (240, 320)
        np.testing.assert_allclose(cam["K"], f.K, rtol=1e-6)
        assert read_label_png(out / "labels" / f"{f.name}.png").shape == (240, 320)
    labels = [read_label_png(out / "labels" / f"{n}.png") for n in scene.names]
    full = sequence_iou(labels, scene.gt_labels).sequence_iou
    work = rep["quality"]["sequence"]["sequence_iou"]
    assert full > 0.25 and abs(full - work) < 0.03, (full, work)  # scored at either size
    assert rep["cloud_points"] > 5000


def test_max_side_run_resumes_to_identical_outputs(large, tmp_path, monkeypatch):
    """Labels are written grown to the input size and read back shrunk: a run stopped half-way
    (the 6th write fails) resumes to the files of the uninterrupted run."""
    scene_dir, ref, cfg, _ = large
    out = tmp_path / "out"
    with disk_full_at(monkeypatch, 6):
        with pytest.raises(errors.OutputError):
            run_segment(scene_dir, out, cfg, progress=False)
    assert 0 < len(list((out / "labels").glob("*.png"))) < 8
    run_segment(scene_dir, out, cfg, progress=False)
    assert_same_labels(out, ref)
    for name in ("cloud.ply", "cameras.json"):
        assert (out / name).read_bytes() == (ref / name).read_bytes(), name


def test_a_run_that_will_not_fit_in_memory_warns(scenes, tmp_path, monkeypatch):
    import lift3d.geometry.working_resolution as wr

    monkeypatch.setattr(wr, "_available_memory", lambda: 64 * 2**20)  # a 64 MiB machine
    with pytest.warns(UserWarning, match=r"160x120 need about .* GiB, 0\.1 GiB available.*"
                      r"--max-side"):
        run_segment(scenes[0][0], tmp_path / "out", CFG, progress=False)


def test_cli_warnings_are_one_line_each(scenes, tmp_path):
    """`lift3d` prints a warning as users read one: no source line of lift3d's own."""
    scene = copy_scene(scenes[0][0], tmp_path / "scene")
    (scene / "instance" / "5.png").unlink()
    r = subprocess.run([sys.executable, "-m", "lift3d", "segment", str(scene), "-o",
                        str(tmp_path / "out"), "--segmenter", "classical", "-q"],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert lines == [f"lift3d: warning: {scene / 'instance'}: no instance map for 1 of 8 "
                     "frame(s) (5): they are left out of the ground-truth scores"], r.stderr
