"""What every associator gives and takes: plain data, and the one way to apply it."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from lift3d.types import PointMaps

if TYPE_CHECKING:
    from lift3d.fuse import FuseAccumulator


@dataclass
class Merge:
    """One merge: ``ids`` (sorted, >= 2 tracked IDs) become ``into`` (the smallest of them).

    reason: short name of the evidence that decided it (``"superpoints"``, ``"convex"``,
    ``"consensus"``, ``"tracklet"``...); evidence: the figures behind it (JSON-ready), for
    report.json.
    """

    ids: list[int]
    into: int
    reason: str
    evidence: dict = field(default_factory=dict)


@dataclass
class Association:
    """The result of an associator: which tracked IDs are one object.

    mapping: {tracked ID: object ID} for the IDs that change (IDs absent keep theirs). An object
        ID is the smallest tracked ID of its group, so applying a mapping twice changes nothing
        (a run killed half-way through rewriting its labels resumes safely).
    merges: the groups and why, for report.json.
    """

    mapping: dict[int, int] = field(default_factory=dict)
    merges: list[Merge] = field(default_factory=list)
    method: str = "off"

    def lut(self, max_id: int) -> np.ndarray:
        """(max(max_id, largest mapped ID) + 1,) int32 lookup table: lut[old] = new."""
        top = max([max_id, *self.mapping.keys()]) if self.mapping else max_id
        lut = np.arange(top + 1, dtype=np.int32)
        for old, new in self.mapping.items():
            lut[old] = new
        return lut

    def to_json(self) -> dict:
        return {"method": self.method, "n_merged_ids": len(self.mapping),
                "n_objects_from_merges": len(self.merges),
                "merges": [asdict(m) for m in self.merges]}

    @classmethod
    def from_json(cls, doc: dict) -> Association:
        merges = [Merge(**m) for m in doc.get("merges", [])]
        return cls(groups_to_mapping([m.ids for m in merges]), merges, doc.get("method", "off"))


def groups_to_mapping(groups: Iterable[Iterable[int]]) -> dict[int, int]:
    """{id: smallest id of its group} for every id of every group of two or more; groups that
    share an ID are joined (union-find), so the mapping is transitive and idempotent."""
    parent: dict[int, int] = {}

    def find(a: int) -> int:
        root = a
        while parent.get(root, root) != root:
            root = parent[root]
        while parent.get(a, a) != root:  # path compression
            parent[a], a = root, parent[a]
        return root

    for g in groups:
        g = [int(x) for x in g]
        for a in g:
            parent.setdefault(a, a)
        for a in g[1:]:
            ra, rb = find(a), find(g[0])
            if ra != rb:
                lo, hi = min(ra, rb), max(ra, rb)
                parent[hi] = lo
    return {a: find(a) for a in parent if find(a) != a}


def apply_mapping(labels: np.ndarray, mapping: dict[int, int] | Association) -> np.ndarray:
    """``labels`` ((H, W) or any shape, int) with every mapped ID replaced; a new int32 array."""
    if not isinstance(mapping, Association):
        mapping = Association(mapping)
    labels = np.asarray(labels)
    if not mapping.mapping:
        return labels.astype(np.int32, copy=True)
    return mapping.lut(int(labels.max(initial=0)))[labels]


@runtime_checkable
class Associator(Protocol):
    """Decides which tracked IDs are one object.

    Streams: :meth:`add_frame` is called once per frame, in order, as frames finish tracking
    (also for frames a resumed run reads back); it keeps per-ID statistics only (memory grows
    with the number of IDs and the scene's area, never with the number of frames).
    :meth:`solve` is called once at the end.
    """

    name: str

    def add_frame(self, t: int, image: np.ndarray, labels: np.ndarray,
                  pointmaps: PointMaps | None, normals: np.ndarray | None = None) -> None:
        """Frame ``t``: (H, W, 3) uint8 image, (H, W) int32 tracked IDs, its geometry
        (``pointmaps.points`` is None on 2D flow geometry) and, on 3D geometry, its per-pixel
        normals when the caller computed them already (:func:`lift3d.fuse.frame_normals`;
        None: computed where needed)."""
        ...

    def solve(self, fusion: FuseAccumulator | None) -> Association:
        """The merges. ``fusion`` holds the fused cloud's per-(voxel, ID) votes on 3D
        geometry (:meth:`FuseAccumulator.votes`), None on 2D geometry."""
        ...


def pair_counts(a: np.ndarray, b: np.ndarray, weights: list[np.ndarray] | None = None
                ) -> dict[tuple[int, int], tuple]:
    """{(a, b): (count, *sums of each weight)} over the elements of the int arrays a, b
    (IDs below 2**32), in ascending order of (a, b)."""
    key = a.astype(np.int64) << 32 | b.astype(np.int64)
    uk, inv = np.unique(key, return_inverse=True)
    inv = inv.ravel()
    cols = [np.bincount(inv, minlength=len(uk))]
    cols += [np.bincount(inv, weights=w, minlength=len(uk)) for w in (weights or [])]
    mask = (1 << 32) - 1
    return {(k >> 32, k & mask): vals
            for k, *vals in zip(uk.tolist(), *(c.tolist() for c in cols), strict=True)}
