"""MASt3R's expensive results on disk: pair outputs and the global alignment.

Layout under the run's output folder (``OUT/cache/mast3r/``), every file written atomically::

    key.json                  what the results depend on (frames, settings, network)
    pairs/<i>_<j>.npz         one pair's pointmaps and confidences (descriptors too for the
                              consecutive pairs (i, i+1) the tracker matches)
    align.npz                 the aligned per-frame points, confidences, focals, principal
                              points and poses (network resolution)

A run killed after its inference resumes without running a pair again; a key that differs
(other frames, settings or weights) clears the folder first.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np

from lift3d.geometry.mast3r.align import AlignResult
from lift3d.geometry.mast3r.inference import PairResult
from lift3d.io.atomic import write_json, write_with

_DESC = ("desc_i", "desc_j", "desc_conf_i", "desc_conf_j")


def net_fingerprint(net) -> str:
    """A cheap digest of a network's weights: every tensor's name and shape, and the bytes of
    the first and last few (a different checkpoint differs there)."""
    h = hashlib.sha256()
    items = list(net.state_dict().items())
    for name, t in items:
        h.update(f"{name}:{tuple(t.shape)};".encode())
    for _, t in items[:4] + items[-4:]:
        h.update(t.detach().float().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


class Mast3rCache:
    """Pair outputs and the alignment of one scene, in ``folder`` (see the module docstring)."""

    def __init__(self, folder: str | Path, key: dict) -> None:
        self.folder = Path(folder)
        key = json.loads(json.dumps(key, default=str))
        kf = self.folder / "key.json"
        if kf.is_file():
            try:
                same = json.loads(kf.read_text()) == key
            except ValueError:
                same = False
            if not same:
                shutil.rmtree(self.folder)
        if not kf.is_file():
            write_json(kf, key)

    def _pair_path(self, i: int, j: int) -> Path:
        return self.folder / "pairs" / f"{i}_{j}.npz"

    def has_pair(self, i: int, j: int) -> bool:
        return self._pair_path(i, j).is_file()

    def save_pair(self, r: PairResult, with_desc: bool) -> None:
        arrays = dict(pts_i=r.pts_i, pts_j=r.pts_j, conf_i=r.conf_i, conf_j=r.conf_j)
        if with_desc and r.desc_i is not None:
            arrays.update({k: getattr(r, k) for k in _DESC})
        _save_npz(self._pair_path(r.i, r.j), arrays)

    def load_pair(self, i: int, j: int, with_desc: bool = False) -> PairResult | None:
        """The cached pair (i, j), or None; with ``with_desc`` None unless it has descriptors."""
        p = self._pair_path(i, j)
        if not p.is_file():
            return None
        with np.load(p) as z:
            if with_desc and "desc_i" not in z:
                return None
            desc = [z[k] for k in _DESC] if with_desc else []
            return PairResult(i, j, z["pts_i"], z["pts_j"], z["conf_i"], z["conf_j"], *desc)

    def add_desc(self, r: PairResult) -> None:
        """Add a pair's descriptors to its file (written whole, atomically)."""
        self.save_pair(r, with_desc=True)

    def save_alignment(self, res: AlignResult) -> None:
        arrays = {f"points_{k}": p for k, p in enumerate(res.points)}
        arrays.update({f"conf_{k}": c for k, c in enumerate(res.conf)})
        arrays.update(cam_to_world=res.cam_to_world, focals=res.focals, pp=res.pp,
                      pair_inlier=res.pair_inlier, n=np.array(len(res.points)))
        _save_npz(self.folder / "align.npz", arrays)

    def load_alignment(self) -> AlignResult | None:
        p = self.folder / "align.npz"
        if not p.is_file():
            return None
        with np.load(p) as z:
            n = int(z["n"])
            return AlignResult(
                points=[z[f"points_{k}"] for k in range(n)], conf=[z[f"conf_{k}"] for k in range(n)],
                cam_to_world=z["cam_to_world"], focals=z["focals"], pp=z["pp"],
                pair_inlier=z["pair_inlier"],
            )


def _save_npz(path: Path, arrays: dict) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.savez(f, **arrays)

    write_with(path, write)
