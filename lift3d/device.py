"""Which torch device a model runs on: CUDA, then Apple MPS, then the CPU; ``--device`` wins."""

from __future__ import annotations

from typing import TYPE_CHECKING

from lift3d.errors import BackendUnavailable, Lift3DError

if TYPE_CHECKING:
    import torch

AUTO = ("", "auto", None)


def device_status() -> list[tuple[str, bool, str]]:
    """(device, usable here, why) for ``cuda``, ``mps`` and ``cpu``, in order of preference."""
    import torch

    rows = []
    if torch.cuda.is_available():
        rows.append(("cuda", True, f"{torch.cuda.device_count()} GPU(s): "
                     f"{torch.cuda.get_device_name(0)}"))
    elif torch.version.cuda is None:
        rows.append(("cuda", False, f"this torch {torch.__version__} is built without CUDA"))
    else:
        rows.append(("cuda", False, f"torch has CUDA {torch.version.cuda} but sees no GPU"))
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        rows.append(("mps", True, "Apple Metal GPU"))
    elif mps is not None and mps.is_built():
        rows.append(("mps", False, "torch has MPS but this machine offers no Metal GPU"))
    else:
        rows.append(("mps", False, "not an Apple-silicon build of torch"))
    rows.append(("cpu", True, f"{torch.get_num_threads()} threads"))
    return rows


def pick_device(requested: str | None = None) -> torch.device:
    """The device to run on: ``requested`` if given (``cuda``, ``cuda:1``, ``mps``, ``cpu``),
    else the first usable of cuda, mps, cpu.

    Raises :class:`BackendUnavailable` when the requested device is not usable here.
    """
    import torch

    if requested in AUTO:
        usable = [name for name, ok, _ in device_status() if ok]
        return torch.device(usable[0])
    try:
        dev = torch.device(requested)
    except (RuntimeError, ValueError) as err:
        raise Lift3DError(
            f"unknown device {requested!r}", None, "use auto, cuda, cuda:N, mps or cpu"
        ) from err
    status = {name: (ok, why) for name, ok, why in device_status()}
    ok, why = status.get(dev.type, (True, ""))
    if not ok:
        raise BackendUnavailable(
            f"--device {requested} is not usable here: {why}", None,
            "use --device auto (or cpu)",
        )
    if dev.type == "cuda" and dev.index is not None and dev.index >= torch.cuda.device_count():
        raise BackendUnavailable(
            f"--device {requested}: only {torch.cuda.device_count()} GPU(s) here", None,
            "use --device cuda (the first GPU)",
        )
    return dev
