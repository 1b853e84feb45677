"""Atomic file writes: a temp file in the same folder, then ``os.replace``.

A run killed half-way leaves either the old file or the new one, never a truncated one.
"""

from __future__ import annotations

import errno
import json
import os
import secrets
from collections.abc import Callable
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from lift3d.errors import OutputError

FILE_MODE = 0o666
"""Mode of a new file before the umask (what ``open(path, "w")`` uses)."""

_TMP_TRIES = 100
"""Random names tried before giving up on a temp file (tempfile's TMP_MAX is 10000)."""


def _create_temp(folder: Path, prefix: str, suffix: str) -> Path:
    """Create a new empty file ``folder/<prefix><random><suffix>`` exclusively, with mode
    :data:`FILE_MODE` less the umask: the kernel applies the umask as it does for
    ``open(path, "w")``, so no process-wide state is read or swapped."""
    flags = os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) \
        | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
    for _ in range(_TMP_TRIES):
        tmp = folder / f"{prefix}{secrets.token_hex(4)}{suffix}"
        try:
            fd = os.open(tmp, flags, FILE_MODE)
        except FileExistsError:
            continue
        os.close(fd)
        return tmp
    raise FileExistsError(errno.EEXIST, f"no free temporary name {prefix}*{suffix}", str(folder))


TMP_MARK = ".tmp-"
"""Temporary files are ``.<target name>.tmp-<random><suffix>`` beside their target: a process
killed between creating one and renaming it leaves it behind (:func:`remove_temporaries`)."""


def remove_temporaries(folder: str | Path) -> int:
    """Delete the temporary files that writers killed mid-write left under ``folder`` (any
    depth); return how many. Only for a folder no other process writes (the caller holds its
    lock): a live writer's temporary file would go too."""
    n = 0
    for p in Path(folder).rglob(f".*{TMP_MARK}*"):
        if p.is_file() and not p.is_symlink():
            p.unlink(missing_ok=True)
            n += 1
    return n


@contextmanager
def atomic_path(path: str | Path, suffix: str | None = None):
    """Yield a temp path next to ``path``; on success it is renamed onto ``path``.

    ``suffix`` defaults to the target's suffix, so writers that pick a format by extension
    (OpenCV, Open3D) still do.
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        # not tempfile.mkstemp: it creates 0600 whatever the umask, and results must be as
        # readable as any file the user creates (other users, containers mounting the folder)
        tmp = _create_temp(path.parent, f".{path.name}{TMP_MARK}",
                           suffix if suffix is not None else path.suffix)
    except OSError as err:
        raise write_error(path, err) from err
    try:
        yield Path(tmp)
        os.replace(tmp, path)
    except OSError as err:  # disk full, quota, file system gone read-only while writing
        raise write_error(path, err) from err
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def write_error(path: Path, err: OSError) -> OutputError:
    """One-line :class:`OutputError` naming ``path`` for an OSError raised while writing it.
    The file is left as it was (the temp file is removed), so a rerun resumes."""
    why = err.strerror or str(err) or type(err).__name__
    if isinstance(err, (NotADirectoryError, FileExistsError)):
        fix = "a file is in the way of the folder: give another output path"
    elif err.errno == errno.ENOSPC or err.errno == errno.EDQUOT:
        fix = "free some space, then rerun the same command to resume"
    elif err.errno in (errno.EROFS, errno.EACCES, errno.EPERM):
        fix = "give an output folder you can write to (-o)"
    else:
        fix = "check the output folder, then rerun the same command to resume"
    return OutputError(f"cannot write ({why})", path, fix)


def write_bytes(path: str | Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_text(path: str | Path, text: str) -> None:
    write_bytes(path, text.encode("utf-8"))


def write_json(path: str | Path, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, default=_json_default) + "\n")


def write_with(path: str | Path, writer: Callable[[Path], None]) -> None:
    """Call ``writer(tmp_path)`` and move the result onto ``path`` atomically."""
    with atomic_path(path) as tmp:
        writer(tmp)


def write_npz(path: str | Path, **arrays: Any) -> None:
    """``np.savez`` of ``arrays`` onto ``path`` atomically (the name is kept as given: no
    ``.npz`` is appended)."""
    import numpy as np

    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:  # a file object: savez would append .npz to a name
            np.savez(f, **arrays)

    write_with(path, write)


def _json_default(o: Any) -> Any:
    import numpy as np

    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
