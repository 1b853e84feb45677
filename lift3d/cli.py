"""The `lift3d` command line: segment | consistency | make-scene | view | export | eval | info.

Errors meant for people (:class:`~lift3d.errors.Lift3DError`) print as one line and exit 1;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer

from lift3d.errors import Lift3DError

app = typer.Typer(
    add_completion=False, no_args_is_help=True,
    help="Lift 2D segmentation into 3D that stays consistent across views.",
)
_DEBUG = {"on": False}
SEGMENTER_HELP = ("auto | sam | geometric | classical (auto: sam if a checkpoint exists, else "
                  "geometric when the scene has depth, else classical).")
SET_HELP = ("Any setting of the configuration tree, NAME=VALUE, repeatable: "
            "track.min_support=0.6, associate.scene3d.shared_share=0.4, "
            "segmenter.geo_threshold=0.5 (the segmenter's own settings under segmenter.)")


@app.callback()
def _main(debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors.")) -> None:
    _DEBUG["on"] = debug


def friendly(fn):
    """Turn Lift3DError into one line on stderr and exit code 1 (unless --debug)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Lift3DError as err:
            if _DEBUG["on"]:
                raise
            typer.echo(f"lift3d: error: {err}", err=True)
            raise typer.Exit(1) from None
        except OSError as err:  # a write or read the code did not wrap: still one line
            if _DEBUG["on"]:
                raise
            # copies (shutil) name the source first and the destination second
            names = [str(n) for n in (err.filename, err.filename2) if n]
            where = " -> ".join(names) + ": " if names else ""
            typer.echo(f"lift3d: error: {where}{err.strerror or err}", err=True)
            raise typer.Exit(1) from None
        except KeyboardInterrupt:
            typer.echo("lift3d: interrupted: rerun the same command to resume", err=True)
            raise typer.Exit(130) from None

    return wrapper


@app.command()
@friendly
def segment(
    scene_dir: Path = typer.Argument(..., help="Scene folder (ScanNet/7-Scenes/TUM layout, or images)."),
    out: Path | None = typer.Option(
        None, "--out", "-o", help="Output folder (default: out/<scene folder name>/)."),
    geometry: str = typer.Option("rgbd", help="rgbd | flow | mast3r"),
    segmenter: str = typer.Option("auto", help=SEGMENTER_HELP),
    baseline: str = typer.Option("tracked", help="tracked (the method) | independent (each frame alone)."),
    associate: str = typer.Option(
        "auto", help="Merge tracked IDs that are one object: auto (3d on 3D geometry, tracklets on "
        "flow) | 3d | tracklets | off (the paper's method as written)."),
    stride: int = typer.Option(1, min=1, help="Use every n-th frame."),
    max_frames: int | None = typer.Option(None, min=1, help="Use at most this many frames."),
    eps: float | None = typer.Option(None, help="Radius of H(I,M), scene units (pixels for flow)."),
    h_frames: int | None = typer.Option(
        None, min=1, help="Measure H(I,M) on at most this many evenly spaced frames (default: "
        "every frame, exact over the whole sequence)."),
    sam_checkpoint: Path | None = typer.Option(None, help="SAM checkpoint file."),
    sam_model_type: str | None = typer.Option(None, help="vit_h | vit_l | vit_b (default: from the file)."),
    mast3r_checkpoint: Path | None = typer.Option(None, help="MASt3R checkpoint (.pth or .safetensors)."),
    device: str | None = typer.Option(None, help="cuda | mps | cpu (default: best available)."),
    max_side: int | None = typer.Option(
        None, min=16, help="Work on frames whose long side is at most this many pixels (for "
        "large photos); labels and cameras stay at the input resolution."),
    settings: list[str] = typer.Option([], "--set", help=SET_HELP + "."),
    fresh: bool = typer.Option(False, help="Ignore cached per-frame results in OUT."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
) -> None:
    """Segment every frame with IDs consistent across views; write labels, cloud, report."""
    from lift3d.pipeline import run_segment

    cfg = _segment_config(geometry, segmenter, baseline, stride, max_frames, eps, sam_checkpoint,
                          sam_model_type, mast3r_checkpoint, device, associate, max_side,
                          h_frames, settings)
    if out is None:  # one folder per scene: two scenes never share (and mix) one
        out = DEFAULT_OUT_ROOT / scene_output_name(scene_dir)
    report = run_segment(scene_dir, out, cfg, progress=not quiet, fresh=fresh)
    _print_summary(report, out)


DEFAULT_OUT_ROOT = Path("out")
"""Where `segment` writes without -o: DEFAULT_OUT_ROOT/<scene name>/."""


def scene_output_name(scene_dir: Path) -> str:
    """The default output folder name of a scene: its folder's name (a video's file stem)."""
    p = Path(scene_dir).expanduser().resolve()
    return p.stem if p.is_file() else p.name


def _segment_config(
    geometry: str, segmenter: str, baseline: str, stride: int, max_frames: int | None,
    eps: float | None, sam_checkpoint: Path | None, sam_model_type: str | None,
    mast3r_checkpoint: Path | None, device: str | None, associate: str = "auto",
    max_side: int | None = None, h_frames: int | None = None, settings: list[str] = (),
):
    """The SegmentConfig of `segment`'s options (`batch` takes the same ones), ``--set``
    items applied last."""
    from lift3d.associate import AssociateConfig
    from lift3d.config import SegmentConfig, SegmenterConfig, apply_settings
    from lift3d.geometry.config import GeometryConfig
    from lift3d.metrics.config import MetricConfig

    cfg = SegmentConfig(
        geometry=GeometryConfig(
            backend=geometry, device=device,
            mast3r_checkpoint=None if mast3r_checkpoint is None else str(mast3r_checkpoint)),
        segmenter=SegmenterConfig(
            name=segmenter, device=device, sam_model_type=sam_model_type,
            sam_checkpoint=None if sam_checkpoint is None else str(sam_checkpoint)),
        mode=baseline, stride=stride, max_frames=max_frames,
        metric=MetricConfig(eps=eps, max_frames=h_frames),
        associate=AssociateConfig(method=associate), max_side=max_side,
    )
    return apply_settings(cfg, settings)


def _print_summary(report: dict, out: Path) -> None:
    c = report["consistency"]
    h = "n/a" if c["H"] is None else f"{c['H']:.4f}"
    line = (
        f"{report['n_frames']} frames, {report['n_ids']} IDs ({report['ids_per_frame']:.1f}/frame), "
        f"H(I,M) = {h} (eps {c['eps']:.4g} {c['eps_units']})"
    )
    q = report.get("quality", {}).get("sequence")
    if q:
        line += f", sequence IoU {q['sequence_iou']:.3f}, per-frame IoU {q['frame_iou']:.3f}"
    typer.echo(line)
    typer.echo(f"wrote {out}/ (labels/, cloud.ply, cameras.json, report.json, overlays/)")


@app.command()
@friendly
def batch(
    scenes: list[str] = typer.Argument(..., help="Scene folders, globs, or text files listing them."),
    out: Path = typer.Option(..., "--out", "-o", help="Output root: one OUT/<scene name>/ per scene."),
    address: str | None = typer.Option(
        None, help="Ray cluster to join (auto | HOST:PORT | ray://HOST:10001); default: $RAY_ADDRESS, "
        "else a local Ray on all cores."),
    cpus_per_scene: float = typer.Option(1.0, min=0.01, help="CPUs per scene's task (and its threads)."),
    gpus_per_scene: float = typer.Option(0.0, min=0.0, help="GPUs per scene's task (SAM, MASt3R on CUDA)."),
    max_retries: int = typer.Option(1, min=0, help="Reruns of a task whose worker died (killed, OOM)."),
    geometry: str = typer.Option("rgbd", help="rgbd | flow | mast3r"),
    segmenter: str = typer.Option("auto", help=SEGMENTER_HELP),
    baseline: str = typer.Option("tracked", help="tracked (the method) | independent (each frame alone)."),
    associate: str = typer.Option(
        "auto", help="Merge tracked IDs that are one object: auto | 3d | tracklets | off (see segment)."),
    stride: int = typer.Option(1, min=1, help="Use every n-th frame."),
    max_frames: int | None = typer.Option(None, min=1, help="Use at most this many frames."),
    eps: float | None = typer.Option(None, help="Radius of H(I,M), scene units (pixels for flow)."),
    sam_checkpoint: Path | None = typer.Option(None, help="SAM checkpoint file."),
    sam_model_type: str | None = typer.Option(None, help="vit_h | vit_l | vit_b (default: from the file)."),
    mast3r_checkpoint: Path | None = typer.Option(None, help="MASt3R checkpoint (.pth or .safetensors)."),
    device: str | None = typer.Option(None, help="cuda | mps | cpu (default: best available)."),
    settings: list[str] = typer.Option([], "--set", help=SET_HELP + "."),
    fresh: bool = typer.Option(False, help="Ignore finished and cached results: rerun every scene."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bar."),
) -> None:
    """`segment` over many scenes, one Ray task each (resumable); exit code = scenes failed."""
    from lift3d.batch import BatchConfig, exit_code, run_batch

    cfg = _segment_config(geometry, segmenter, baseline, stride, max_frames, eps, sam_checkpoint,
                          sam_model_type, mast3r_checkpoint, device, associate, settings=settings)
    opts = BatchConfig(address=address, cpus_per_scene=cpus_per_scene, gpus_per_scene=gpus_per_scene,
                       max_retries=max_retries, fresh=fresh, progress=not quiet)
    summary = run_batch(scenes, out, cfg, opts)
    for name, rec in summary["scenes"].items():
        if rec["status"] == "failed":
            typer.echo(f"lift3d: {name} failed: {rec['error']}", err=True)
    c = summary["counts"]
    typer.echo(f"{len(summary['scenes'])} scenes: {c['done']} done, {c['skipped']} skipped, "
               f"{c['failed']} failed; wrote {out}/summary.json, summary.md")
    if exit_code(summary):
        raise typer.Exit(exit_code(summary))


@app.command("eval")
@friendly
def eval_cmd(
    dataset: Path = typer.Argument(..., help="DAVIS root, folder of scene folders, or one scene."),
    out: Path = typer.Option(Path("eval_out"), "--out", "-o", help="Output folder (runs are cached here)."),
    methods: str = typer.Option("tracked,associated,independent",
                                help="Comma-separated: tracked, associated, independent."),
    segmenter: str = typer.Option("classical", help="classical | geometric | sam | auto (same for all)."),
    geometry: str = typer.Option("auto", help="auto (flow: video, rgbd: RGB-D) | rgbd | flow | mast3r."),
    associate: str = typer.Option(
        "auto", help="Association of the `associated` method: auto | 3d | tracklets | off."),
    gt3d: Path | None = typer.Option(
        None, help="Labelled 3D ground truth of a one-scene dataset: ScanNet scan folder "
        "(*_vh_clean_2.ply + aggregation + segs json) or a PLY with a per-vertex instance/label."),
    max_frames: int | None = typer.Option(None, min=1, help="Use at most this many frames per sequence."),
    stride: int = typer.Option(1, min=1, help="Use every n-th frame."),
    sequences: str | None = typer.Option(None, help="Comma-separated subset of sequence names."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="No progress bars."),
    ray: bool = typer.Option(False, "--ray", help="One Ray task per run, as `lift3d batch` does."),
    address: str | None = typer.Option(None, help="With --ray: the Ray cluster to join (as `batch`)."),
    settings: list[str] = typer.Option(
        [], "--set", help=SET_HELP + "; --segmenter, --geometry, --associate, --stride and "
        "--max-frames win over the same names here."),
) -> None:
    """Run the method, the method + association and the per-frame baseline over a dataset;
    write results.json/.md, plots."""
    from lift3d.config import SegmentConfig, apply_settings
    from lift3d.evaluate import EvalConfig, evaluate

    def split(s: str | None) -> tuple[str, ...] | None:
        return None if s is None else tuple(x.strip() for x in s.split(",") if x.strip())

    cfg = EvalConfig(
        methods=split(methods) or (), segmenter=segmenter, geometry=geometry, associate=associate,
        gt3d=None if gt3d is None else str(gt3d), stride=stride, max_frames=max_frames,
        sequences=split(sequences), progress=not quiet,
        segment=apply_settings(SegmentConfig(overlays=False), settings),
    )
    engine = None
    if ray:
        from lift3d.batch import BatchConfig

        engine = BatchConfig(address=address, progress=False)
    results = evaluate(dataset, out, cfg, engine)
    for method, m in results.mean.items():
        figs = ", ".join(f"{k} {m[k]:.3f}" for k in ("H", "ap", "ap50", "ap25", "id_survival", "JF",
                                                      "seq_iou", "sequence_iou")
                         if m.get(k) is not None)
        typer.echo(f"{method}: {m['n_sequences']} sequences, {figs}")
    for line in results.verdicts:
        typer.echo(f"note: {line}")
    typer.echo(f"wrote {out}/results.json, results.md, plots/")


@app.command("consistency")
@friendly
def consistency_cmd(
    scene: Path = typer.Argument(..., help="Scene folder (any layout lift3d reads), or the output "
                                 "folder of `lift3d segment` (its report names the scene, geometry "
                                 "and radius of H)."),
    outputs: Path | None = typer.Option(
        None, "--outputs", "-m", help="Folder with one file per frame, named by the frame's stem: "
        "an ID map (.png, uint8/uint16) or a feature map (.npy/.npz, (H, W, D), any real dtype). "
        "Default: a segment folder's labels/."),
    out: Path | None = typer.Option(None, "--out", "-o", help="Where consistency.json and "
                                    "heatmaps/ go (default: OUTPUTS_DIR-consistency/, or "
                                    "SCENE/consistency/ for a segment folder's labels)."),
    eps: float | None = typer.Option(None, help="Radius of H, scene units (pixels for flow); "
                                     "default: the run's, else 1% of the scene scale."),
    geometry: str = typer.Option("auto", help="auto | rgbd | flow | mast3r (scene folders only)."),
    feature_resize: str = typer.Option(
        "bilinear", help="Maps of another resolution (same aspect ratio) are resized to the frame: "
        "ID maps by nearest neighbour (the map pixel nearest each frame pixel's centre), "
        "always; feature maps bilinear (per channel, pixel centres aligned, then normalised) "
        "or nearest."),
    precision: str = typer.Option("float32", help="Unit features stored as float32 or float16 "
                                  "(half the memory; H within about 1e-3, see consistency.json)."),
    heatmaps: bool = typer.Option(True, help="Write heatmaps/<frame>.png (per-pixel h)."),
) -> None:
    """H(I,M) of any model's per-pixel outputs: how much they agree across views.

    Prints H, the per-mask approximation beside it, and a reminder: H of a constant map is 1,
    so H is not quality. Writes consistency.json and a heat map of per-pixel h per frame.
    """
    from lift3d.metrics.outputs import OutputsConfig, is_run_dir, measure_outputs, summary_lines

    if out is None:
        out = (scene / "consistency" if outputs is None and is_run_dir(scene)
               else Path(f"{outputs}-consistency") if outputs is not None else Path("consistency"))
    cfg = OutputsConfig(eps=eps, geometry=geometry, feature_resize=feature_resize,
                        feature_dtype=precision, heatmaps=heatmaps)
    doc = measure_outputs(scene, outputs, out, cfg)
    for line in summary_lines(doc):
        typer.echo(line)
    typer.echo(f"wrote {out}/consistency.json"
               + (", heatmaps/" if (out / "heatmaps").is_dir() else ""))


@app.command("make-scene")
@friendly
def make_scene_cmd(
    out: Path = typer.Argument(..., help="Folder to write (ScanNet export layout + ground truth)."),
    seed: int = typer.Option(0, help="Random seed: same seed, same scene."),
    frames: int = typer.Option(30, min=2, help="Number of frames."),
    width: int = typer.Option(320, min=16),
    height: int = typer.Option(240, min=16),
    preset: str = typer.Option("objects", help="objects: primitives on the floor; room: "
                               "furniture (tables, chairs, shelves...) along walls."),
) -> None:
    """Generate a synthetic posed RGB-D scene with ground-truth instances."""
    from lift3d.synth import make_scene, preset_config

    path = make_scene(out, seed=seed, n_frames=frames, width=width, height=height,
                      config=preset_config(preset))
    typer.echo(f"wrote {path}")


@app.command()
@friendly
def info() -> None:
    """Which backends can run on this machine, and why not."""
    from lift3d.info import backend_report

    for name, ok, why in backend_report():
        typer.echo(f"{'ok ' if ok else 'no '} {name:<22} {why}")


@app.command("export")
@friendly
def export_cmd(
    out: Path = typer.Argument(..., help="output folder of `lift3d segment`"),
    to: str = typer.Option(..., "--to", help="format: ply | colmap | gaussian-grouping | nerfstudio"),
    dest: Path = typer.Option(..., "-o", "--dest", help="folder (or .ply file) to write"),
    # Annotated: plain defaults, so the function can also be called from Python
    mask_bits: Annotated[int | None, typer.Option(
        "--mask-bits", help="gaussian-grouping: 8 (default; its stock setup, at most 255 "
        "objects, the least observed folded into 0) or 16 (every object)")] = None,
    resolution: Annotated[int | None, typer.Option(
        "--resolution", help="gaussian-grouping: write images and masks at 1/N size "
        "(default 1); train with -r 1")] = None,
) -> None:
    """Export a lift3d output folder to the layout a 3D pipeline trains from.

    Prints the result and, for COLMAP layouts, a note when 3D Gaussian splatting would
    misplace the cameras; for Gaussian Grouping, the -r and num_classes to train with.
    """
    from lift3d.export import export, principal_point_offset

    gg = None
    given = {k: v for k, v in (("mask_bits", mask_bits), ("resolution", resolution))
             if v is not None}  # None: the config's own default
    if given:
        from lift3d.export.gaussian_grouping import GaussianGroupingConfig

        gg = GaussianGroupingConfig(**given)  # its checks refuse e.g. --resolution 0
    path = export(out, to, dest, gaussian_grouping=gg)
    typer.echo(f"lift3d export: wrote {to} to {path}")
    if to == "gaussian-grouping":
        import json

        from lift3d.export.gaussian_grouping import training_note

        for line in training_note(json.loads(path.read_text())).splitlines():
            typer.echo(f"lift3d export: {line}")
    if to in ("colmap", "gaussian-grouping"):
        off = principal_point_offset(Path(out) / "cameras.json")
        if off > 1.0:
            typer.echo(f"lift3d export: note: principal points are up to {off:.1f} px off the "
                       "image centre; 3D Gaussian splatting's loader assumes centred ones "
                       "(gsplat and nerfstudio read cx, cy)")


def _register_view() -> None:
    """`view` lives with the viewers (a front end; the core never imports it)."""
    from viewers.view import view_cmd

    app.command("view")(friendly(view_cmd))


_register_view()


def one_line_warning(message, category, filename, lineno, line=None) -> str:
    """Warnings as users read them: ``lift3d: warning: <message>`` (the message names the
    file at fault; lift3d's own source line would only be noise)."""
    return f"lift3d: warning: {message}\n"


def main() -> None:  # pragma: no cover - console entry
    import warnings

    warnings.formatwarning = one_line_warning
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)
