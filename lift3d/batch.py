"""`lift3d batch`: many scenes, one Ray task per scene, on this machine or on a cluster.

Each scene is one Ray task that calls :func:`lift3d.pipeline.run_segment`, the function behind
`lift3d segment`, and writes ``OUT_ROOT/<scene name>/`` exactly as `lift3d segment` would.
Ray does the scheduling (never a home-made pool): a task asks for ``cpus_per_scene`` CPUs and
``gpus_per_scene`` GPUs, and the threads inside it (numba, torch, OpenMP, BLAS, OpenCV) are held
to its CPUs, so CPU-only runs pack the cores and SAM / MASt3R on CUDA get a GPU each.

* Resumable: a scene whose output is complete and current (:func:`output_is_current`) is
  skipped without rewriting a file; a half-finished one resumes from its own cache (what
  `run_segment` does with ``fresh=False``). Killing the driver and running the same command
  again finishes the job with the outputs of an uninterrupted run.
* Failures isolated: an exception inside a scene becomes its one-line error in the summary
  and the others go on. A task whose worker dies (killed, out of memory) is retried by Ray
  ``max_retries`` times (once by default), then recorded as failed.
* ``OUT_ROOT/summary.json`` and ``OUT_ROOT/summary.md`` are rewritten atomically each time a
  scene finishes: per scene its status (``done``, ``skipped``, ``failed``, ``pending``), frames,
  IDs, H(I,M), the quality figures when the scene has ground truth, seconds and peak memory.

Ray is an optional dependency (``pip install 'lift3d[cluster]'``), imported here only.
"""

from __future__ import annotations

import glob
import json
import math
import os
import socket
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lift3d.errors import BackendUnavailable, InputError
from lift3d.io.atomic import write_json, write_text
from lift3d.pipeline import SegmentConfig, run_segment

SUMMARY_JSON = "summary.json"
SUMMARY_MD = "summary.md"
EXIT_CAP = 100  # exit code = number of failed scenes, capped below the shell's special codes
THREAD_VARS = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS", "NUMBA_NUM_THREADS")


@dataclass(frozen=True)
class BatchConfig:
    """How scenes are fanned out over Ray (what is run is the :class:`SegmentConfig`)."""

    address: str | None = None
    """Ray cluster to join (``auto``, ``HOST:PORT``, ``ray://HOST:10001``); None = $RAY_ADDRESS,
    else a new local Ray instance on all of this machine's cores."""
    cpus_per_scene: float = 1.0
    """CPUs each scene's task asks for; the threads inside it are held to this many."""
    gpus_per_scene: float = 0.0
    """GPUs each scene's task asks for (fractions share a GPU)."""
    max_retries: int = 1
    """Times Ray reruns a task whose worker died (killed, out of memory); exceptions raised by
    the scene itself are not retried: they are recorded as that scene's error."""
    fresh: bool = False
    """Ignore finished and cached results: run every scene from the start."""
    progress: bool = True
    """A progress bar over scenes."""

    @property
    def threads(self) -> int:
        """Threads a task may use: its CPUs, rounded up, at least one."""
        return max(1, math.ceil(self.cpus_per_scene))


# ---------------------------------------------------------------------------------------------
# Scenes and their output folders


def expand_scenes(items: Sequence[str | Path]) -> list[Path]:
    """Scene folders from folders, globs (``data/scene*``) and text files listing them (one
    folder or glob a line, ``#`` comments; relative lines are relative to the list file).
    Order kept, duplicates (same resolved folder) dropped."""
    found: list[Path] = []
    for item in items:
        found += _expand_one(str(item), Path.cwd(), allow_list=True)
    seen: set[Path] = set()
    unique = []
    for p in found:
        if p.resolve() not in seen:
            seen.add(p.resolve())
            unique.append(p)
    if not unique:
        raise InputError("no scenes given", None, "name scene folders, a glob, or a file listing them")
    return unique


def _expand_one(item: str, base: Path, allow_list: bool) -> list[Path]:
    path = Path(item) if Path(item).is_absolute() else base / item
    if glob.has_magic(item):
        hits = sorted(Path(p) for p in glob.glob(str(path)) if Path(p).is_dir())
        if not hits:
            raise InputError(f"no folder matches the pattern {item!r}", None,
                             "check the pattern (quote it so the shell leaves it alone)")
        return hits
    if path.is_dir():
        return [path]
    if path.is_file() and allow_list:
        lines = [ln.split("#", 1)[0].strip() for ln in path.read_text().splitlines()]
        out: list[Path] = []
        for ln in filter(None, lines):
            out += _expand_one(ln, path.parent, allow_list=False)
        return out
    raise InputError("not a scene folder, a glob or a list of scenes", path,
                     "give scene folders, a glob, or a text file with one folder a line")


def scene_names(paths: Sequence[Path]) -> list[str]:
    """Output folder name of each scene: its folder name; scenes whose folder names are equal
    get their parent folders prefixed (``a__scene0``, ``b__scene0``) until the names differ."""
    parts = [p.resolve().parts for p in paths]
    depth = [1] * len(parts)
    while True:
        names = ["__".join(pt[-d:]) for pt, d in zip(parts, depth)]
        clash = {n for n in names if names.count(n) > 1}
        grow = [i for i, n in enumerate(names) if n in clash and depth[i] < len(parts[i]) - 1]
        if not grow:
            return names
        for i in grow:
            depth[i] += 1


def output_is_current(scene_dir: str | Path, out_dir: str | Path, cfg: SegmentConfig) -> bool:
    """Whether ``out_dir`` holds a finished run of ``scene_dir`` with ``cfg``: ``report.json``
    written (the pipeline writes it last), made from the same scene folder with the same
    configuration, and the frame cache's fingerprint (scene frames + config + segmenter) equal
    to what a run would record now. The one place batch decides to skip a scene."""
    from lift3d.io import load_scene
    from lift3d.pipeline import run_fingerprint

    out = Path(out_dir)
    try:
        report = json.loads((out / "report.json").read_text())
        recorded = json.loads((out / "cache" / "run.json").read_text())
    except (OSError, ValueError):
        return False
    config = json.loads(json.dumps(asdict(cfg), default=str))
    if report.get("scene") != str(Path(scene_dir).resolve()) or report.get("config") != config:
        return False
    scene = load_scene(scene_dir, stride=cfg.stride, max_frames=cfg.max_frames)
    return recorded == run_fingerprint(scene, cfg, report.get("segmenter"))


# ---------------------------------------------------------------------------------------------
# Inside a task


def segment_scene(scene_dir: str, out_dir: str, cfg: SegmentConfig, fresh: bool = False) -> dict:
    """One scene: skipped when its output is current, else :func:`run_segment` (which resumes
    from the scene's cache). Returns its summary record (without the task's measurements)."""
    if not fresh and output_is_current(scene_dir, out_dir, cfg):
        report = json.loads((Path(out_dir) / "report.json").read_text())
        return {"status": "skipped", **scene_figures(report)}
    report = run_segment(scene_dir, out_dir, cfg, progress=False, fresh=fresh)
    return {"status": "done", **scene_figures(report)}


def scene_figures(report: dict) -> dict:
    """Figures of one scene's report for the summary: frames, IDs, H and, with ground truth,
    the quality figures (the flat keys of :func:`lift3d.run_figures.figures`)."""
    from lift3d.run_figures import figures

    f = figures(report)
    f.pop("s_per_frame", None)
    f["eps"] = report["consistency"]["eps"]
    f["segmenter"] = report.get("segmenter")
    f["timings_s"] = report.get("timings_s", {})
    return f


def run_task(fn: Callable[..., dict], args: tuple, threads: int) -> dict:
    """Body of every Ray task: hold threads to ``threads``, run ``fn(*args)`` and return its
    dict with the task's seconds, CPU seconds and peak memory; an exception becomes
    ``status: failed`` with a one-line ``error`` (and the ``traceback``)."""
    limit_threads(threads)
    per_task = reset_peak_rss()
    t0, c0 = time.perf_counter(), time.process_time()
    try:
        rec = fn(*args)
    except Exception as err:  # noqa: BLE001 - one scene's failure must not stop the others
        rec = {"status": "failed", "error": one_line(err), "traceback": traceback.format_exc()}
    rec.update(
        seconds=round(time.perf_counter() - t0, 3), cpu_seconds=round(time.process_time() - c0, 3),
        peak_rss_mb=round(peak_rss_mb(), 1), peak_rss_scope="task" if per_task else "worker",
        host=socket.gethostname(), pid=os.getpid(), threads=threads,
    )
    return rec


def thread_env(threads: int) -> dict[str, str]:
    """Environment of a task's worker: OpenMP, BLAS and numba pools sized to its CPUs (numba
    reads NUMBA_NUM_THREADS at import, and lift3d's kernels use all of numba's threads)."""
    return {k: str(threads) for k in THREAD_VARS}


def limit_threads(threads: int) -> None:
    """Hold the thread pools already imported in this process to ``threads`` (the environment
    of :func:`thread_env` covers the ones imported later)."""
    import cv2
    import numba

    numba.set_num_threads(min(threads, numba.config.NUMBA_NUM_THREADS))
    cv2.setNumThreads(threads)
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(threads)


def reset_peak_rss() -> bool:
    """Reset this process's peak resident memory (Linux ``clear_refs``), so that a worker that
    runs several tasks reports each one's own peak; False where it cannot."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mb() -> float:
    """Peak resident memory of this process in MiB (VmHWM, else ru_maxrss)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return rss / 2**20 if sys.platform == "darwin" else rss / 1024


def one_line(err: BaseException, limit: int = 300) -> str:
    """``err`` as one line: lift3d errors whole (they are written as one line: file, what is
    wrong, what to do), others prefixed with their type, first line, at most ``limit`` chars."""
    from lift3d.errors import Lift3DError

    lines = str(err).strip().splitlines()
    if isinstance(err, Lift3DError):
        return " ".join(ln.strip() for ln in lines)
    text = f"{type(err).__name__}: {lines[0]}" if lines else type(err).__name__
    return text if len(text) <= limit else text[: limit - 1] + "…"


# ---------------------------------------------------------------------------------------------
# The driver


def import_ray():
    """Ray, or one line saying how to install it."""
    try:
        import ray
    except ImportError:
        raise BackendUnavailable(
            "Ray is not installed", None, "pip install 'lift3d[cluster]' (or pip install ray)"
        ) from None
    return ray


def fan_out(
    fn: Callable[..., dict], calls: dict[str, tuple], opts: BatchConfig,
    on_done: Callable[[str, dict], None],
) -> None:
    """Run ``fn(*args)`` for every ``key: args`` of ``calls`` as one Ray task each and call
    ``on_done(key, record)`` as each finishes (in finishing order). Uses the Ray this process
    is connected to, else joins ``opts.address`` (or $RAY_ADDRESS), else starts a local one
    on all cores and shuts it down at the end."""
    ray = import_ray()
    started = not ray.is_initialized()
    if started:
        address = opts.address or os.environ.get("RAY_ADDRESS") or "local"
        try:
            ray.init(address=address, include_dashboard=False, log_to_driver=False,
                     configure_logging=False)
        except (ConnectionError, ValueError) as err:
            raise BackendUnavailable(
                f"cannot join the Ray cluster at {address!r} ({one_line(err)})", None,
                "start it with `ray start --head`, or check --address / $RAY_ADDRESS") from None
    try:
        task = ray.remote(run_task)
        resources = dict(
            num_cpus=opts.cpus_per_scene, num_gpus=opts.gpus_per_scene,
            max_retries=opts.max_retries, retry_exceptions=False,
            runtime_env={"env_vars": thread_env(opts.threads)},
        )
        # the task's name is its worker's process title while it runs (`ray::lift3d:<key>`)
        keys = {task.options(name=f"lift3d:{key}", **resources).remote(fn, args, opts.threads): key
                for key, args in calls.items()}
        pending = list(keys)
        while pending:
            ready, pending = ray.wait(pending, num_returns=1)
            for ref in ready:
                try:
                    rec = ray.get(ref)
                except ray.exceptions.RayError as err:  # the worker died, retries spent
                    rec = {"status": "failed", "error": (
                        f"task died (worker killed or out of memory), retried {opts.max_retries}x: "
                        f"{one_line(getattr(err, 'cause', None) or err)}")}
                on_done(keys[ref], rec)
    finally:
        if started:
            ray.shutdown()


def run_batch(
    scenes: Sequence[str | Path], out_root: str | Path, cfg: SegmentConfig = SegmentConfig(),
    opts: BatchConfig = BatchConfig(),
) -> dict:
    """Segment every scene of ``scenes`` (folders, globs, list files) into
    ``out_root/<scene name>/``, one Ray task each; write and return the summary."""
    from tqdm.auto import tqdm

    paths = expand_scenes(scenes)
    names = scene_names(paths)
    root = Path(out_root)
    before = previous_records(root)
    summary = new_summary(root, cfg, opts, dict(zip(names, paths)))
    write_summary(root, summary)
    bar = tqdm(total=len(names), desc="scenes", unit="scene", disable=not opts.progress)

    def on_done(name: str, rec: dict) -> None:
        summary["scenes"][name].update(keep_run_figures(rec, before.get(name), summary["scenes"][name]))
        _count(summary)
        write_summary(root, summary)
        bar.set_postfix(failed=summary["counts"]["failed"], refresh=False)
        bar.update(1)

    calls = {n: (str(p), str(root / n), cfg, opts.fresh) for n, p in zip(names, paths)}
    try:
        fan_out(segment_scene, calls, opts, on_done)
    finally:
        bar.close()
    return summary


def previous_records(root: Path) -> dict[str, dict]:
    """Per scene, the record of an earlier summary.json in ``root`` (empty when none)."""
    try:
        return json.loads((root / SUMMARY_JSON).read_text())["scenes"]
    except (OSError, ValueError, KeyError, TypeError):
        return {}


RUN_FIGURES = ("seconds", "cpu_seconds", "peak_rss_mb", "peak_rss_scope")


def keep_run_figures(rec: dict, before: dict | None, now: dict) -> dict:
    """A skipped scene keeps the seconds and peak memory of the run that made its output (from
    the earlier summary of the same scene); its check's own seconds become ``check_seconds``."""
    same = before is not None and before.get("scene") == now["scene"]
    if rec["status"] != "skipped" or not same or before.get("status") not in ("done", "skipped"):
        return rec
    return {**rec, "check_seconds": rec.get("seconds"),
            **{k: before[k] for k in RUN_FIGURES if k in before}}


def new_summary(root: Path, cfg: SegmentConfig, opts: BatchConfig, scenes: dict[str, Path]) -> dict:
    """The summary before any scene has finished: every scene ``pending``."""
    s = {
        "out_root": str(root.resolve()),
        "config": json.loads(json.dumps(asdict(cfg), default=str)),
        "batch": {k: v for k, v in asdict(opts).items() if k != "progress"},
        "scenes": {n: {"scene": str(p.resolve()), "out": n, "status": "pending"}
                   for n, p in scenes.items()},
    }
    _count(s)
    return s


def _count(summary: dict) -> None:
    statuses = [r["status"] for r in summary["scenes"].values()]
    summary["counts"] = {k: statuses.count(k) for k in ("done", "skipped", "failed", "pending")}


def write_summary(root: Path, summary: dict) -> None:
    """``summary.json`` and ``summary.md`` in ``root``, each written atomically."""
    write_json(root / SUMMARY_JSON, summary)
    write_text(root / SUMMARY_MD, summary_markdown(summary))


MD_COLUMNS = (
    ("n_frames", "frames", "d"), ("n_ids", "IDs", "d"), ("H", "H", ".4f"),
    ("sequence_iou", "seq IoU", ".3f"), ("JF", "J&F", ".3f"), ("inst_miou", "3D mIoU", ".3f"),
    ("seconds", "s", ".1f"), ("peak_rss_mb", "peak MiB", ".0f"),
)


def summary_markdown(summary: dict) -> str:
    """summary.md: counts, then one row per scene; failed scenes show their one-line error."""
    c = summary["counts"]
    rows = summary["scenes"]
    cols = [col for col in MD_COLUMNS if any(r.get(col[0]) is not None for r in rows.values())]
    head = ["scene", "status", *(h for _, h, _ in cols), "error"]
    lines = [
        f"# lift3d batch: {summary['out_root']}", "",
        f"{len(rows)} scenes: {c['done']} done, {c['skipped']} skipped (already finished), "
        f"{c['failed']} failed, {c['pending']} pending.", "",
        "| " + " | ".join(head) + " |", "|" + "---|" * len(head),
    ]
    for name, r in rows.items():
        cells = [_cell(r.get(k), spec) for k, _, spec in cols]
        err = str(r.get("error", "")).replace("|", "\\|")
        lines.append("| " + " | ".join([name, r["status"], *cells, err]) + " |")
    return "\n".join(lines) + "\n"


def _cell(v: Any, spec: str) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "–"
    return f"{int(v)}" if spec == "d" else format(v, spec)


def exit_code(summary: dict) -> int:
    """Number of failed scenes, capped at :data:`EXIT_CAP`; 0 when none failed."""
    return min(summary["counts"]["failed"], EXIT_CAP)


# ---------------------------------------------------------------------------------------------
