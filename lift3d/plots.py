"""Figures of `lift3d eval` (matplotlib, Agg backend: no display needed).

* :func:`per_frame_plot`: per-frame IoU (one ID per sequence: solid; best ID per frame:
  dashed) and per-frame H(I,M), one colour per method;
* :func:`strip_plot`: the ID overlays of each method (one row each) on the same evenly spaced
  frames, so a person can see IDs flicker (colours change from frame to frame) or hold;
* :func:`summary_plot`: per sequence and method (and their mean), H, the 3D AP figures (AP,
  AP50, AP25) and the ID figures (ID survival, sequence-level IoU).

Every figure is written atomically (:func:`lift3d.io.atomic.write_with`) as PNG.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

METHOD_COLOURS = {"tracked": "tab:blue", "associated": "tab:green", "independent": "tab:orange"}


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> str:
    from lift3d.io.atomic import write_with

    write_with(path, lambda tmp: fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight"))
    _plt().close(fig)
    return str(path)


def _curve(values) -> np.ndarray | None:
    if values is None:
        return None
    arr = np.array([np.nan if v is None else v for v in values], np.float64)
    return None if np.isnan(arr).all() else arr


def per_frame_plot(name: str, curves: dict, path: Path) -> str:
    """Per-frame IoU (when measured) and H of each method. curves: {method:
    :class:`lift3d.evaluate.PerFrame`} (H (F,), iou_sequence and iou_frame (F,) or None; None
    entries = undefined)."""
    plt = _plt()
    has_iou = any(_curve(c.iou_sequence) is not None for c in curves.values())
    fig, axes = plt.subplots(2 if has_iou else 1, 1, figsize=(9, 5.5 if has_iou else 3),
                             sharex=True, squeeze=False)
    axes = axes[:, 0]
    for method, c in curves.items():
        col = METHOD_COLOURS.get(method)
        if has_iou:
            for key, style, rule in (("iou_sequence", "-", "one ID per sequence"),
                                     ("iou_frame", "--", "best ID per frame")):
                y = _curve(getattr(c, key))
                if y is not None:
                    axes[0].plot(y, style, color=col, label=f"{method}, {rule}")
        h = _curve(c.H)
        if h is not None:
            axes[-1].plot(h, "-", color=col, label=method)
    if has_iou:
        axes[0].set_ylabel("IoU")
        axes[0].set_ylim(-0.02, 1.02)
        axes[0].legend(fontsize=7, loc="lower left")
        axes[0].set_title(f"{name}: per-frame IoU and H(I,M)")
    else:
        axes[0].set_title(f"{name}: per-frame H(I,M)")
    axes[-1].set_ylabel("H(I,M)")
    axes[-1].set_xlabel("frame (index after stride)")
    axes[-1].set_ylim(-0.02, 1.02)
    axes[-1].legend(fontsize=7, loc="lower left")
    for ax in axes:
        ax.grid(alpha=0.3)
    return _save(fig, path)


def strip_plot(name: str, images: list[np.ndarray], rows: dict[str, list[np.ndarray]],
               frame_names: list[str], path: Path) -> str:
    """A grid of ID overlays: one row per method, one column per frame.

    images: the chosen frames, (H, W, 3) uint8 RGB; rows: {method: ID maps (H, W) int of the
    same frames}; frame_names: their names (column titles)."""
    from lift3d.overlay import id_anchors, overlay
    from lift3d.palette import picture_colors

    plt = _plt()
    n_r, n_c = len(rows), len(images)
    h, w = images[0].shape[:2]
    fig, axes = plt.subplots(n_r, n_c, figsize=(2.2 * n_c * w / max(h, 1) * 0.75, 2.0 * n_r),
                             squeeze=False)
    for r, (method, labs) in enumerate(rows.items()):
        colors = picture_colors(labs)  # per row: each method has its own ID space
        for c, (img, lab) in enumerate(zip(images, labs)):
            ax = axes[r, c]
            ax.imshow(overlay(img, lab, colors=colors))
            for i, x, y in id_anchors(lab, max_n=6, min_frac=0.02):
                ax.text(x, y, str(i), fontsize=5, ha="center", va="center", color="white",
                        bbox=dict(boxstyle="round,pad=0.15", fc="black", alpha=0.55, lw=0))
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(frame_names[c], fontsize=8)
            if c == 0:
                ax.set_ylabel(f"{method}\n{colors[0].size} IDs shown", fontsize=8)
    fig.suptitle(f"{name}: IDs on a strip of frames (same colour and number = same ID; "
                 "colours chosen per row, largest IDs most distinct)", fontsize=9)
    fig.subplots_adjust(wspace=0.03, hspace=0.05)
    return _save(fig, path)


def _load_rgb(path: str | None, hw: tuple[int, int]) -> np.ndarray:
    import cv2

    img = cv2.imread(str(path), cv2.IMREAD_COLOR) if path else None
    if img is None:
        return np.zeros((*hw, 3), np.uint8)
    img = img[..., ::-1]
    if img.shape[:2] != hw:
        img = cv2.resize(img, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(img)


def sequence_plots(seq, entry, out: Path, methods, strip_frames: int) -> list[str]:
    """The per-frame plot and the strip of one evaluated sequence (entry: its
    :class:`lift3d.evaluate.SequenceResult`), from the runs in ``out/<seq>/<method>/`` (labels/
    and cameras.json); returns the written paths."""
    from lift3d.io.outputs import read_cameras, read_label_png

    folder = out / "plots"
    curves = {m: entry.methods[m].per_frame for m in methods}
    written = [per_frame_plot(seq.name, curves, folder / f"{seq.name}_per_frame.png")]
    cams = read_cameras(out / seq.name / methods[0] / "cameras.json")
    picks = np.unique(np.linspace(0, len(cams) - 1, min(strip_frames, len(cams))).round().astype(int))
    rows = {m: [read_label_png(out / seq.name / m / "labels" / f"{cams[k]['name']}.png")
                for k in picks] for m in methods}
    hw = rows[methods[0]][0].shape
    images = [_load_rgb(cams[k].get("image"), hw) for k in picks]
    written.append(strip_plot(seq.name, images, rows, [cams[k]["name"] for k in picks],
                              folder / f"{seq.name}_strip.png"))
    return written


SUMMARY_FIGURES = (("H", "H(I,M)"), ("ap", "3D AP (IoU 0.50:0.90)"), ("ap50", "3D AP50"),
                   ("ap25", "3D AP25"), ("id_survival", "ID survival (IoU, one ID / best ID per frame)"),
                   ("seq_iou", "IoU, one ID per sequence"),
                   ("sequence_iou", "sequence IoU (pooled)"))


def summary_plot(results, path: Path) -> str:
    """Grouped bars: per sequence and for the mean over sequences, each method's H, 3D AP
    figures and ID figures (those measured). results: :class:`lift3d.evaluate.EvalResults`."""
    plt = _plt()
    seqs = list(results.sequences)
    methods = list(results.mean)

    def value(s: str | None, m: str, key: str):
        if s is None:
            return results.mean[m].get(key)
        return getattr(results.sequences[s].methods[m].figures, key)

    figs = [(k, t) for k, t in SUMMARY_FIGURES
            if any(value(s, m, k) is not None for s in seqs for m in methods)]
    groups = [*seqs, None]  # None: the mean
    ncol = min(len(figs), 4)
    nrow = -(-len(figs) // ncol)
    fig, axes = plt.subplots(nrow, ncol, squeeze=False,
                             figsize=(max(4, 1.0 * len(groups) + 1.5) * ncol, 3.2 * nrow))
    x = np.arange(len(groups))
    width = 0.8 / max(len(methods), 1)
    for ax, (key, title) in zip(axes.ravel(), figs):
        for k, m in enumerate(methods):
            vals = [value(s, m, key) for s in groups]
            vals = [np.nan if v is None else v for v in vals]
            ax.bar(x + (k - (len(methods) - 1) / 2) * width, vals, width, label=m,
                   color=METHOD_COLOURS.get(m))
        ax.set_xticks(x)
        ax.set_xticklabels([*seqs, "mean"], rotation=30, ha="right", fontsize=7)
        ax.set_ylim(0, 1)
        ax.set_title(title, fontsize=9)
        ax.grid(axis="y", alpha=0.3)
    for ax in axes.ravel()[len(figs):]:
        ax.axis("off")
    axes[0, 0].legend(fontsize=7)
    fig.tight_layout()
    return _save(fig, path)
