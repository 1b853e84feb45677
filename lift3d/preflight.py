"""Checks a run makes before its expensive work: option values, checkpoint files and the device.

A bad ``--eps`` used to surface after tracking (when the metric ran), a missing or empty SAM
checkpoint after the scene and its geometry were loaded; each is now one line before anything
is read. Only what can be checked cheaply is checked here (a file's presence and size, not its
tensors); loading still validates the rest.
"""

from __future__ import annotations

import math
from pathlib import Path

from lift3d.config import SegmentConfig, resolve_segmenter
from lift3d.errors import CheckpointError, ConfigError

MODES = ("tracked", "independent")
"""Values of ``SegmentConfig.mode``."""


def check_run(cfg: SegmentConfig) -> None:
    """Raise a one-line :class:`~lift3d.errors.Lift3DError` for the first thing in ``cfg``
    that would make the run fail later: ``--eps``, the mode, the checkpoints, the device."""
    eps = cfg.metric.eps
    if eps is not None and not (isinstance(eps, (int, float)) and math.isfinite(eps) and eps > 0):
        raise ConfigError(f"--eps must be a positive number (scene units, pixels for flow), "
                          f"got {eps!r}", None, "omit --eps to use 1% of the scene's scale")
    if cfg.mode not in MODES:
        raise ConfigError(f"unknown mode {cfg.mode!r}", None, f"use one of {', '.join(MODES)}")
    if resolve_segmenter(cfg.segmenter) == "sam" and cfg.segmenter.sam_checkpoint is not None:
        from lift3d.segment.sam_checkpoint import check_checkpoint_file

        check_checkpoint_file(cfg.segmenter.sam_checkpoint)
    _check_segmenter_options(cfg)
    if cfg.geometry.backend == "mast3r" and cfg.geometry.mast3r_checkpoint is not None:
        _check_file(Path(cfg.geometry.mast3r_checkpoint), "MASt3R checkpoint")
    for device in {cfg.segmenter.device, cfg.geometry.device} - {None, "auto"}:
        from lift3d.device import pick_device

        pick_device(device)


def _check_segmenter_options(cfg: SegmentConfig) -> None:
    """The weight-free segmenters' settings (``--set segmenter.NAME=VALUE``) by name and
    type. ``auto`` without SAM becomes geometric or classical by the scene's depth, unknown
    here: it is checked against the geometric settings, which hold the classical ones. SAM's
    are checked when it is built."""
    name = resolve_segmenter(cfg.segmenter)
    if not cfg.segmenter.options or name == "sam":
        return
    from lift3d.segment import build_segmenter  # a weight-free one costs nothing to make

    build_segmenter("geometric" if cfg.segmenter.name == "auto" else name,
                    **cfg.segmenter.options)


def _check_file(path: Path, what: str) -> None:
    path = path.expanduser()
    if not path.is_file():
        raise CheckpointError(f"{what} file not found", path, "check the path")
    if path.stat().st_size == 0:
        raise CheckpointError(f"{what} file is empty (0 bytes: an interrupted download?)", path,
                              "download it again")
