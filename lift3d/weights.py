"""Where model checkpoints come from: one place for every model lift3d loads.

Order of lookup for a checkpoint file:
1. an explicit path (``--sam-checkpoint PATH``, ``--mast3r-checkpoint PATH``);
2. an environment variable naming a file (``LIFT3D_SAM_CHECKPOINT``...);
3. the user cache: ``$LIFT3D_CACHE``, else ``$XDG_CACHE_HOME/lift3d``, else ``~/.cache/lift3d``;
4. a download from the official location into the cache (atomic: temp file + rename),
   unless ``LIFT3D_OFFLINE=1`` or downloading fails, in which case a
   :class:`~lift3d.errors.CheckpointError` says which file to put where.
"""

from __future__ import annotations

import os
import shutil
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from lift3d.errors import CheckpointError


def cache_dir() -> Path:
    """The user cache folder for checkpoints (not created here)."""
    if os.environ.get("LIFT3D_CACHE"):
        return Path(os.environ["LIFT3D_CACHE"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "lift3d"


def resolve_checkpoint(
    filename: str,
    urls: Sequence[str],
    explicit: str | Path | None = None,
    env_var: str | None = None,
    download: bool | None = None,
) -> Path:
    """Return the path of checkpoint ``filename``, downloading it if needed and allowed.

    ``explicit`` wins and must exist. ``download=None`` means "unless LIFT3D_OFFLINE=1".
    """
    if explicit is not None:
        p = Path(explicit).expanduser()
        if not p.is_file():
            raise CheckpointError("checkpoint file not found", p, f"expected the file {filename}")
        return p
    if env_var and os.environ.get(env_var):
        p = Path(os.environ[env_var]).expanduser()
        if not p.is_file():
            raise CheckpointError(f"checkpoint named by ${env_var} not found", p)
        return p
    target = cache_dir() / filename
    if target.is_file():
        return target
    if download is None:
        download = os.environ.get("LIFT3D_OFFLINE", "") not in ("1", "true", "yes")
    where = f"put {filename} at {target}" + (f" (or set ${env_var})" if env_var else "")
    if not download:
        raise CheckpointError(
            f"checkpoint {filename} is not available offline", None,
            f"download it from {urls[0]} and {where}",
        )
    errors = []
    for url in urls:
        try:
            _download(url, target)
            return target
        except (urllib.error.URLError, OSError, TimeoutError) as err:
            errors.append(f"{url}: {err}")
    raise CheckpointError(
        f"could not download {filename} ({'; '.join(errors)})", None,
        f"download it from {urls[0]} by hand and {where}",
    )


def _download(url: str, target: Path) -> None:
    from tqdm.auto import tqdm

    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.part")
    with urllib.request.urlopen(url, timeout=30) as resp:
        total = int(resp.headers.get("Content-Length") or 0) or None
        with open(tmp, "wb") as f, tqdm(
            total=total, unit="B", unit_scale=True, desc=f"downloading {target.name}"
        ) as bar:
            while chunk := resp.read(1 << 20):
                f.write(chunk)
                bar.update(len(chunk))
    if total is not None and tmp.stat().st_size != total:
        tmp.unlink(missing_ok=True)
        raise OSError(f"incomplete download: {tmp.stat().st_size} of {total} bytes")
    shutil.move(str(tmp), str(target))
