"""Finding and reading the released MASt3R checkpoint (the one place that reads weights).

Two published forms are accepted, recognised by content rather than by name:

* the official ``.pth`` (a torch zip archive ``{'model': state_dict, 'args': Namespace, ...}``),
  read with ``torch.load(weights_only=True)``: ``argparse.Namespace`` is allowed, any other
  pickled class is built as an inert placeholder, and globals torch blocks (``os``,
  ``subprocess``...) make the file unreadable; nothing from the file is ever executed;
* the Hugging Face hub ``model.safetensors`` (repository
  ``naver/MASt3R_ViTLarge_BaseDecoder_512_catmlpdpt_metric``), which stores each shared tensor
  once (the DPT's ``layer_rn.K`` / ``layer{K+1}_rn`` aliases).
"""

from __future__ import annotations

import argparse
import os
import pickle
import zipfile
from pathlib import Path

import torch
from torch import nn

from lift3d.errors import CheckpointError
from lift3d.weights import cache_dir, resolve_checkpoint

MAST3R_NAME = "MASt3R_ViTLarge_BaseDecoder_512_catmlpdpt_metric"
MAST3R_FILENAME = f"{MAST3R_NAME}.pth"
#: The hub form, looked for in the cache under this name.
MAST3R_SAFETENSORS_FILENAME = f"{MAST3R_NAME}.safetensors"
MAST3R_URLS = (
    f"https://download.europe.naverlabs.com/ComputerVision/MASt3R/{MAST3R_FILENAME}",
    f"https://huggingface.co/naver/{MAST3R_NAME}/resolve/main/model.safetensors",
)
MAST3R_ENV = "LIFT3D_MAST3R_CHECKPOINT"


def resolve_mast3r_checkpoint(explicit: str | Path | None = None,
                              download: bool | None = None) -> Path:
    """Path of the released checkpoint: ``explicit``, ``$LIFT3D_MAST3R_CHECKPOINT``, the user
    cache (``.pth`` or ``.safetensors`` name), else a download unless ``LIFT3D_OFFLINE=1``.

    Raises :class:`CheckpointError` naming the file and where to put it when it is missing.
    """
    if explicit is None and not os.environ.get(MAST3R_ENV):
        hub = cache_dir() / MAST3R_SAFETENSORS_FILENAME
        if hub.is_file() and not (cache_dir() / MAST3R_FILENAME).is_file():
            return hub
    return resolve_checkpoint(MAST3R_FILENAME, MAST3R_URLS, explicit, MAST3R_ENV, download)


class _Inert:
    """Stands in for any non-tensor object pickled in a checkpoint; keeps only its data."""

    def __new__(cls, *args, **kwargs):
        return super().__new__(cls)

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


def _is_safetensors(head: bytes) -> bool:
    if len(head) < 9:
        return False
    n = int.from_bytes(head[:8], "little")
    return 0 < n < (1 << 30) and head[8:9] == b"{"


def _torch_load(path: Path):
    allowed: list = [argparse.Namespace]
    try:
        unknown = torch.serialization.get_unsafe_globals_in_checkpoint(str(path))
    except (RuntimeError, ValueError, pickle.UnpicklingError, zipfile.BadZipFile, OSError):
        unknown = []
    allowed += [(_Inert, name) for name in unknown if name != "argparse.Namespace"]
    # zip archives are memory-mapped: the 2.7 GB of weights are not read twice
    mmap = zipfile.is_zipfile(path)
    with torch.serialization.safe_globals(allowed):
        return torch.load(path, map_location="cpu", weights_only=True, mmap=mmap)


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """The state dict stored in ``path`` (either published form), tensors on the CPU.

    Raises :class:`CheckpointError` if the file is missing, unreadable or holds no state dict.
    """
    path = Path(path)
    if not path.is_file():
        raise CheckpointError("checkpoint file not found", path, f"expected {MAST3R_FILENAME}")
    fix = f"download {MAST3R_FILENAME} again from {MAST3R_URLS[0]}"
    with open(path, "rb") as f:
        head = f.read(9)
    try:
        if _is_safetensors(head):
            from safetensors.torch import load_file

            obj = load_file(str(path), device="cpu")
        else:
            obj = _torch_load(path)
    except Exception as err:  # every reader's failure means the same thing to a person
        raise CheckpointError(
            f"not a readable MASt3R checkpoint ({type(err).__name__}: {str(err)[:200]})",
            path, fix,
        ) from err
    if isinstance(obj, dict) and isinstance(obj.get("model"), dict):
        obj = obj["model"]
    if not isinstance(obj, dict) or not obj or not all(
        isinstance(v, torch.Tensor) for v in obj.values()
    ):
        raise CheckpointError("file holds no state dict (tensors by name)", path, fix)
    if all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return obj


def _fill_aliases(net: nn.Module, sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Add entries for parameters the model reaches under several names when the file
    stores only one of them (safetensors keeps each shared tensor once)."""
    groups: dict[int, list[str]] = {}
    for name, mod in net.named_modules(remove_duplicate=False):
        for pname, _ in mod.named_parameters(prefix=name, recurse=False):
            groups.setdefault(id(mod), []).append(pname)
    sd = dict(sd)
    for names in groups.values():
        by_suffix: dict[str, list[str]] = {}
        for n in names:
            by_suffix.setdefault(n.rsplit(".", 1)[-1], []).append(n)
        for same in by_suffix.values():
            have = [n for n in same if n in sd]
            for n in same:
                if n not in sd and have:
                    sd[n] = sd[have[0]]
    return sd


def load_into(net: nn.Module, path: str | Path) -> None:
    """Load the weights of ``path`` into ``net`` strictly (``net`` may live on the meta
    device: its tensors are then replaced by the file's, converted to float32).

    Raises :class:`CheckpointError` listing missing / unexpected / mis-shaped tensors.
    """
    path = Path(path)
    sd = _fill_aliases(net, read_state_dict(path))
    sd = {k: v.float() if v.is_floating_point() else v for k, v in sd.items()}
    want = {k: tuple(v.shape) for k, v in net.state_dict().items()}
    missing = sorted(set(want) - set(sd))
    unexpected = sorted(set(sd) - set(want))
    shapes = [f"{k} {tuple(sd[k].shape)} vs {want[k]}" for k in want
              if k in sd and tuple(sd[k].shape) != want[k]]
    if missing or unexpected or shapes:
        parts = []
        for label, items in (("missing", missing), ("unexpected", unexpected),
                             ("wrong shape", shapes)):
            if items:
                parts.append(f"{len(items)} {label} (e.g. {', '.join(items[:3])})")
        raise CheckpointError(
            "checkpoint does not match the MASt3R architecture: " + "; ".join(parts), path,
            f"use the released {MAST3R_FILENAME} (or build Mast3rNet with the file's model_args)",
        )
    meta = any(p.is_meta for p in net.parameters())
    net.load_state_dict(sd, strict=True, assign=meta)
