"""The output folder of a run: its lock, the fingerprint that decides what a rerun may reuse,
and the removal of results that belong to another run.

* **Lock** (:class:`FolderLock`): ``OUT/.lift3d.lock`` holds an exclusive ``flock`` for as long
  as a run is alive, and says which process (pid, host, start time) holds it. The kernel drops
  the lock when that process dies, however it dies, so a lock file left by a killed run never
  blocks; a second live run into the folder fails at once (:class:`~lift3d.errors.OutputInUse`).
* **Fingerprint** (:func:`inputs_digest`, :func:`code_version`): what the inputs hold (every
  file under the scene folder: its size and modification time, and the content of small
  files) and which lift3d code made the results. A scene regenerated in place, or a new lift3d,
  changes it, and the cached per-frame results are not reused.
* **Stale results** (:func:`clear_results`): everything a run writes from its labels, removed
  before a run with another fingerprint starts, so nothing of the old run survives into the
  new one even when that run is killed before its first frame.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import socket
import time
from functools import cache
from pathlib import Path

from lift3d.errors import OutputError, OutputInUse
from lift3d.io.atomic import write_error

LOCK_NAME = ".lift3d.lock"
"""Lock file of a running run, in the output folder."""

RUN_JSON = Path("cache") / "run.json"
"""The fingerprint of the run whose per-frame results the folder holds."""

RESULTS = ("labels", "overlays", "cloud.ply", "cameras.json", "report.json",
           "cache/track_state.npz", "cache/association.json", "cache/fused_labels.npz")
"""What a run makes from its labels (relative to the output folder). Geometry backends' caches
(``cache/mast3r``) are not listed: they carry their own fingerprints."""

SMALL_FILE_BYTES = 64 * 1024
"""Input files up to this size are hashed (poses, intrinsics, metadata: a few KB each, cheap);
larger ones (images, depth, videos) enter the fingerprint by size and modification time."""


# ---------------------------------------------------------------------------------------------
# Lock


class FolderLock:
    """Exclusive lock on an output folder, held from :meth:`acquire` to :meth:`release`
    (or a ``with`` block). Creates the folder; raises :class:`OutputError` when it cannot be
    written and :class:`OutputInUse` when another live process holds it."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_NAME
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        import fcntl

        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        except OSError as err:
            raise write_error(self.path if self.folder.is_dir() else self.folder, err) from err
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            os.close(fd)
            raise OutputInUse(
                f"output folder is in use by another lift3d run ({holder})", self.folder,
                "wait for it to finish or give another -o",
            ) from None
        info = {"pid": os.getpid(), "host": socket.gethostname(),
                "started": time.strftime("%Y-%m-%dT%H:%M:%S%z")}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, (json.dumps(info) + "\n").encode(), 0)
        except OSError as err:
            os.close(fd)
            raise write_error(self.path, err) from err
        self._fd = fd
        return self

    def release(self) -> None:
        """Drop the lock (the file stays: removing it would race with a run taking it)."""
        if self._fd is not None:
            os.close(self._fd)  # closing the descriptor drops the flock
            self._fd = None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    """'pid N on host H since T' of a lock file's content, or what is known."""
    try:
        info = json.loads(os.pread(fd, 4096, 0).decode() or "{}")
        return f"pid {info['pid']} on host {info['host']} since {info['started']}"
    except (OSError, ValueError, KeyError, TypeError):
        return "a process that has not yet written its pid"


# ---------------------------------------------------------------------------------------------
# Fingerprint


def inputs_digest(source: str | Path) -> str:
    """SHA-256 of what the scene's files hold: the relative path, size and modification time
    (ns) of every file under ``source`` (or of ``source`` itself when it is a file), and the
    content of those up to :data:`SMALL_FILE_BYTES`. Folders holding a lift3d output folder
    (``cache/run.json``) are skipped: a run's own outputs are not its inputs."""
    root = Path(source)
    h = hashlib.sha256()
    files = [root] if root.is_file() else sorted(_input_files(root))
    for f in files:
        st = f.stat()
        rel = f.name if f == root else f.relative_to(root).as_posix()
        h.update(f"{rel}\0{st.st_size}\0{st.st_mtime_ns}\0".encode())
        if st.st_size <= SMALL_FILE_BYTES:
            h.update(hashlib.sha256(f.read_bytes()).digest())
    return h.hexdigest()


def _input_files(root: Path):
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        dirnames[:] = [d for d in dirnames if not (here / d / RUN_JSON).is_file()]
        for name in filenames:
            if name != LOCK_NAME:
                yield here / name


@cache
def code_version() -> str:
    """lift3d's version and a SHA-256 of its package sources: results made by other code are
    not reused (a fix to the tracker must not be hidden by a cache)."""
    import lift3d

    pkg = Path(lift3d.__file__).parent
    h = hashlib.sha256()
    for f in sorted(pkg.rglob("*.py")):
        h.update(f.relative_to(pkg).as_posix().encode() + b"\0" + f.read_bytes())
    return f"{lift3d.__version__}+{h.hexdigest()[:16]}"


# ---------------------------------------------------------------------------------------------
# Stale results


def clear_results(out: str | Path) -> None:
    """Remove the fingerprint and every result of :data:`RESULTS` from ``out``. The
    fingerprint goes first: a run killed half-way through this still finds no fingerprint
    and clears again."""
    out = Path(out)
    try:
        (out / RUN_JSON).unlink(missing_ok=True)
        for rel in RESULTS:
            p = out / rel
            if p.is_dir() and not p.is_symlink():
                shutil.rmtree(p)
            else:
                p.unlink(missing_ok=True)
    except OSError as err:
        raise write_error(Path(err.filename) if err.filename else out, err) from err


def check_writable(out: str | Path) -> None:
    """:class:`OutputError` naming the path unless ``out`` can be written, without creating
    anything: an existing folder gets a file created and removed in it (``os.access`` says
    yes on a read-only file system as root); a new one needs its first existing parent to be
    a writable folder."""
    import tempfile

    out = Path(out).expanduser().absolute()
    if out.is_dir():
        try:
            fd, tmp = tempfile.mkstemp(prefix=".lift3d-write-test.", dir=out)
            os.close(fd)
            os.unlink(tmp)
        except OSError as err:
            raise write_error(out, err) from err
        return
    if out.exists():
        raise OutputError("exists and is not a folder", out, "give a folder for the output (-o)")
    parent = next(p for p in out.parents if p.exists())
    if not parent.is_dir():
        raise OutputError(f"cannot create the output folder: {parent} is a file", out,
                          "a file is in the way of the folder: give another output path")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"cannot create the output folder: {parent} is not writable", out,
                          "give an output folder you can write to (-o)")


__all__ = ["FolderLock", "OutputError", "OutputInUse", "check_writable", "clear_results",
           "code_version", "inputs_digest"]
