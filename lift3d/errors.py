"""Exceptions for people: each names the file (or thing) at fault and what to do about it.

The CLI catches :class:`Lift3DError` and prints ``str(err)`` as one line; tracebacks only
with ``--debug``.
"""

from __future__ import annotations

from pathlib import Path


class Lift3DError(Exception):
    """Base class of every error lift3d raises on purpose."""

    def __init__(self, message: str, path: str | Path | None = None, fix: str | None = None):
        self.path = None if path is None else Path(path)
        self.fix = fix
        parts = [f"{self.path}: {message}" if self.path is not None else message]
        if fix:
            parts.append(fix)
        super().__init__(" — ".join(parts))


class InputError(Lift3DError):
    """An input file or folder is missing, unreadable, or not what it should be."""


class FormatNotRecognised(InputError):
    """A scene folder matches none of the known layouts."""


class ShapeError(Lift3DError):
    """An array handed to a public function has the wrong shape or dtype."""


class CheckpointError(Lift3DError):
    """A model checkpoint is missing, corrupt, or does not match the architecture."""


class BackendUnavailable(Lift3DError):
    """An optional backend cannot run here (missing package, weights, or device)."""


class OutputError(Lift3DError):
    """An output folder or file cannot be written (read-only, disk full, a file in the way)."""


class OutputInUse(OutputError):
    """Another lift3d run holds the output folder's lock."""


class ConfigError(Lift3DError):
    """An option value is out of range or names something that does not exist here."""
