"""What can run on this machine: segmenters, geometry backends, devices (``lift3d info``).

Light to import: packages are looked up with ``importlib.util.find_spec`` (not imported) and
checkpoints by path; only the device rows import torch.
"""

from __future__ import annotations

import os
from importlib.util import find_spec

from lift3d.errors import CheckpointError
from lift3d.weights import cache_dir

# Official MASt3R checkpoint (naver/mast3r README); the mast3r backend owns the real lookup.
MAST3R_FILENAME = "MASt3R_ViTLarge_BaseDecoder_512_catmlpdpt_metric.pth"
MAST3R_ENV_VAR = "LIFT3D_MAST3R_CHECKPOINT"


def backend_report() -> list[tuple[str, bool, str]]:
    """Rows ``(backend, usable here, why)``: segmenters, geometry sources, then devices.

    Names are ``segmenter:classical``, ``segmenter:geometric``, ``segmenter:sam``,
    ``geometry:rgbd``, ``geometry:flow``, ``geometry:mast3r``, ``device:cuda``, ``device:mps``,
    ``device:cpu``. Never downloads.
    """
    rows = [
        ("segmenter:classical", *_module_row("lift3d.segment.classical", "weight-free, CPU")),
        ("segmenter:geometric", *_module_row(
            "lift3d.segment.geometric", "weight-free, CPU, reads depth (auto on RGB-D scenes)")),
        ("segmenter:sam", *_sam_row()),
        ("geometry:rgbd", *_package_row("open3d", "posed RGB-D back-projection")),
        ("geometry:flow", *_package_row("cv2", "OpenCV optical flow (2D matches)")),
        ("geometry:mast3r", *_mast3r_row()),
    ]
    rows += [(f"device:{name}", ok, why) for name, ok, why in _device_rows()]
    return rows


def default_segmenter(sam_checkpoint: str | None = None) -> str:
    """``sam`` when segment-anything is installed and a SAM checkpoint is on this machine
    (``sam_checkpoint``, ``$LIFT3D_SAM_CHECKPOINT`` or the user cache), else ``classical``.

    Never downloads: a first run offline, or without the weights, still works out of the box.
    """
    if find_spec("segment_anything") is None or find_spec("torch") is None:
        return "classical"
    from lift3d.segment.sam_checkpoint import find_sam_checkpoint

    try:
        find_sam_checkpoint(sam_checkpoint, "auto", download=False)
    except CheckpointError:
        return "classical"
    return "sam"


def format_report(rows: list[tuple[str, bool, str]]) -> str:
    """The report as aligned text lines: ``name  yes|no  why``."""
    width = max(len(name) for name, _, _ in rows)
    return "\n".join(
        f"{name:<{width}}  {'yes' if ok else 'no ':<3}  {why}" for name, ok, why in rows
    )


def _module_row(module: str, what: str) -> tuple[bool, str]:
    if find_spec(module) is None:
        return False, f"{module} is not part of this installation"
    return True, what


def _package_row(package: str, what: str) -> tuple[bool, str]:
    if find_spec(package) is None:
        pip = {"cv2": "opencv-python-headless"}.get(package, package)
        return False, f"package {package} is not installed (pip install {pip})"
    return True, what


def _sam_row() -> tuple[bool, str]:
    if find_spec("segment_anything") is None or find_spec("torch") is None:
        return False, "needs torch and segment-anything (pip install segment-anything)"
    from lift3d.segment.sam_checkpoint import find_sam_checkpoint

    try:
        path = find_sam_checkpoint(None, "auto", download=False)
    except CheckpointError as err:
        return False, f"{err} (downloaded automatically on first use when online)"
    return True, f"checkpoint {path}"


def _mast3r_row() -> tuple[bool, str]:
    if find_spec("torch") is None:
        return False, "needs torch"
    if os.environ.get(MAST3R_ENV_VAR):
        path = os.path.expanduser(os.environ[MAST3R_ENV_VAR])
        if os.path.isfile(path):
            return True, f"checkpoint {path} (from ${MAST3R_ENV_VAR})"
        return False, f"${MAST3R_ENV_VAR} names {path}, which does not exist"
    cached = cache_dir() / MAST3R_FILENAME
    if cached.is_file():
        return True, f"checkpoint {cached}"
    return False, (
        f"no checkpoint: put {MAST3R_FILENAME} at {cached}, set ${MAST3R_ENV_VAR}, "
        "or pass --mast3r-checkpoint (downloaded on first use when online)"
    )


def _device_rows() -> list[tuple[str, bool, str]]:
    if find_spec("torch") is None:
        return [("cuda", False, "torch not installed"), ("mps", False, "torch not installed"),
                ("cpu", False, "torch not installed")]
    from lift3d.device import device_status

    return device_status()
