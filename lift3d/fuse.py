"""Fusion of per-frame pointmaps and ID maps into one labelled cloud.

Every valid pixel of every frame is an observation: a world point, a colour, a normal (from
the pointmap's neighbours, turned towards the camera) and a label with a weight (the
geometry's confidence). Observations are grouped by voxel; each voxel becomes one point with
the mean position, colour and normal, the number of observations, and the label that got the
largest share of the confidence-weighted votes (that share is its ``label_conf``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lift3d.geometry.voxels import (
    find_sorted,
    in_key_range,
    pack_keys,
    rows_in_key_range,
    scene_scale,
    unpack_keys,
    voxel_index,
    wide_keys,
)
from lift3d.types import Geometry, LabelledCloud, PointMaps


@dataclass(frozen=True)
class FuseConfig:
    """Fusion settings."""

    voxel: float | None = None
    """Voxel size in scene units; None = ``voxel_rel`` x scene scale (median depth)."""
    voxel_rel: float = 0.005
    """Voxel size relative to the scene scale, when ``voxel`` is None."""
    unlabelled_votes: bool = True
    """Unlabelled pixels (ID 0) vote for "unlabelled"; if False they do not vote at all."""
    min_obs: int = 1
    """Voxels with fewer observations are dropped."""
    stride: int = 1
    """Use every stride-th pixel in x and y (1 = all pixels)."""


def pixel_normals(points: np.ndarray, cam_centre: np.ndarray | None) -> np.ndarray:
    """Unit normals (H, W, 3) float32 of a pointmap by central differences.

    Turned to face ``cam_centre`` when given; zeros at the border and where undefined.
    """
    n = np.zeros_like(points, dtype=np.float32)
    dx = points[1:-1, 2:] - points[1:-1, :-2]
    dy = points[2:, 1:-1] - points[:-2, 1:-1]
    c = np.cross(dy, dx)  # OpenCV axes: y down x right -> normal towards the camera
    norm = np.linalg.norm(c, axis=-1, keepdims=True)
    c = np.where(norm > 0, c / np.maximum(norm, 1e-12), 0.0)
    if cam_centre is not None:
        view = cam_centre[None, None, :] - points[1:-1, 1:-1]
        flip = (c * view).sum(-1) < 0
        c[flip] *= -1
    n[1:-1, 1:-1] = c
    return n


def frame_normals(pm: PointMaps) -> np.ndarray:
    """A frame's per-pixel :func:`pixel_normals`, facing its camera when the pose is known
    (what fusion and the 3D associator both read; the pipeline computes them once)."""
    return pixel_normals(pm.points, None if pm.cam_to_world is None
                         else np.asarray(pm.cam_to_world)[:3, 3])


class FuseAccumulator:
    """Voxel fusion one frame at a time: :meth:`add` each frame, :meth:`cloud` at the end.

    Holds per occupied voxel the running sums of positions, colours and normals and the
    observation count, and per (voxel, label) the summed vote weight: memory grows with the
    scene's area, not its number of frames. Equal to :func:`fuse_points` on all frames'
    observations at once (bit for bit: every sum adds the observations in the same order).
    """

    def __init__(self, voxel: float, cfg: FuseConfig = FuseConfig()) -> None:
        self.voxel = float(voxel)
        self.cfg = cfg
        self._keys = np.zeros(0, np.int64)  # sorted voxel keys ...
        self._slot = np.zeros(0, np.int64)  # ... and each one's slot in the sums below
        self._n = np.zeros(0, np.int64)
        self._sums = np.zeros((0, 9), np.float64)  # position, colour, normal
        self._pair_keys = np.zeros(0, np.int64)  # sorted slot << 32 | label ...
        self._pair_slot = np.zeros(0, np.int64)
        self._pair_w = np.zeros(0, np.float64)
        self._votes: FusedVotes | None = None  # votes() since the last add

    @staticmethod
    def _lookup(keys: np.ndarray, slot: np.ndarray, n_slots: int, new: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        """Slots of ``new`` keys (any order, repeats); unseen keys get the next slots.
        Returns (slot per new key, updated sorted keys, their slots, slot count)."""
        uk, inv = np.unique(new, return_inverse=True)
        pos, found = find_sorted(keys, uk)
        us = np.empty(len(uk), np.int64)
        us[found] = slot[pos[found]]
        fresh = ~found
        us[fresh] = np.arange(n_slots, n_slots + int(fresh.sum()))
        keys = np.insert(keys, pos[fresh], uk[fresh])
        slot = np.insert(slot, pos[fresh], us[fresh])
        return us[inv.ravel()], keys, slot, n_slots + int(fresh.sum())

    @staticmethod
    def _add_in_order(total: np.ndarray, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
        """total[idx[k]] += w[k] in order k = 0, 1, ..., in place (``np.add.at`` adds one by
        one, as one bincount over all observations would: the old total first, then the new
        ones in order), so a frame costs no copy of the whole grid. Returns ``total``."""
        np.add.at(total, idx, w)
        return total

    def add(self, points: np.ndarray, colors: np.ndarray, normals: np.ndarray,
            labels: np.ndarray, weights: np.ndarray) -> None:
        """Add observations: points (N, 3), colors (N, 3) uint8, normals (N, 3), labels (N,)
        int, weights (N,) >= 0."""
        if len(points) == 0:
            return
        self._votes = None
        pts = np.asarray(points, np.float64)
        q = voxel_index(pts, self.voxel)
        if self._keys.dtype == np.int64 and not in_key_range(q):
            self._keys = wide_keys(unpack_keys(self._keys))  # same order, any range
        keys = pack_keys(q) if self._keys.dtype == np.int64 else wide_keys(q)
        vox, self._keys, self._slot, n_vox = self._lookup(self._keys, self._slot, len(self._n),
                                                          keys)
        grow = n_vox - len(self._n)
        self._n = np.concatenate([self._n, np.zeros(grow, np.int64)])
        self._n += np.bincount(vox, minlength=n_vox)
        sums = np.concatenate([self._sums, np.zeros((grow, 9))])
        obs = np.concatenate([pts, colors.astype(np.float64), normals.astype(np.float64)], 1)
        self._sums = self._add_in_order(sums, (vox[:, None], np.arange(9)), obs)
        lab = np.asarray(labels).astype(np.int64)
        w = np.asarray(weights).astype(np.float64)
        if not self.cfg.unlabelled_votes:
            keep = lab > 0
            vox, lab, w = vox[keep], lab[keep], w[keep]
        w = np.maximum(w, 1e-12)  # every observation votes, even at zero confidence
        pair, self._pair_keys, self._pair_slot, n_pairs = self._lookup(
            self._pair_keys, self._pair_slot, len(self._pair_w), (vox << 32) | lab)
        pw = np.concatenate([self._pair_w, np.zeros(n_pairs - len(self._pair_w))])
        self._pair_w = self._add_in_order(pw, pair, w)

    def add_frame(self, pm: PointMaps, image: np.ndarray, labels: np.ndarray,
                  normals: np.ndarray | None = None) -> None:
        """Add one frame's valid pixels (every ``cfg.stride``-th in x and y): its pointmaps,
        (H, W, 3) uint8 image and (H, W) int32 ID map; ``normals``: the frame's
        :func:`frame_normals`, when the caller has them already."""
        if pm.points is None:
            raise ValueError("fusion needs 3D geometry (points); flow geometry is 2D only")
        s = self.cfg.stride
        p = pm.points
        normals = frame_normals(pm) if normals is None else normals
        sel = pm.valid[::s, ::s]
        self.add(p[::s, ::s][sel], image[::s, ::s][sel], normals[::s, ::s][sel],
                 labels[::s, ::s][sel], pm.conf[::s, ::s][sel])

    def votes(self) -> FusedVotes:
        """Every occupied voxel (lexicographic voxel order, before the ``min_obs`` filter) and
        its per-label vote weights: what the association stage reads. Built once after the
        last :meth:`add` (the association, the fused labels and the cloud all read them)."""
        if self._votes is None:
            self._votes = self._build_votes()
        return self._votes

    def _build_votes(self) -> FusedVotes:
        order = self._slot  # slots in sorted-key order
        rank = np.empty(len(order), np.int64)
        rank[order] = np.arange(len(order))
        n_obs = self._n[order]
        sums = self._sums[order]
        pos = sums[:, 0:3] / np.maximum(n_obs, 1)[:, None]
        rgb = np.clip(np.rint(sums[:, 3:6] / np.maximum(n_obs, 1)[:, None]), 0, 255).astype(np.uint8)
        nsum = sums[:, 6:9] / np.maximum(n_obs, 1)[:, None]
        nlen = np.linalg.norm(nsum, axis=1, keepdims=True)
        nrm = np.where(nlen > 1e-9, nsum / np.maximum(nlen, 1e-12), 0.0)
        pg = rank[self._pair_keys >> 32]
        pl = self._pair_keys & 0xFFFFFFFF
        pw = self._pair_w[self._pair_slot]
        resort = np.lexsort((pl, pg))  # pairs by (voxel, label), as vote() sums them
        return FusedVotes(pos, rgb, nrm, n_obs, pg[resort], pl[resort].astype(np.int64),
                          pw[resort], self.voxel, self.cfg.min_obs)

    def labels(self, lut: np.ndarray | None = None) -> FusedLabels:
        """Every voxel's winning label and its vote share (:class:`FusedLabels`, every
        occupied voxel, before the ``min_obs`` filter).

        lut: optional (L,) int lookup table old label -> new label (the association's merges):
        the votes are counted under the new labels, as if every frame had carried them (equal
        up to the order of float additions) (IDs at or beyond ``len(lut)`` keep theirs).
        """
        return self._labels(self.votes(), lut)

    def _labels(self, v: FusedVotes, lut: np.ndarray | None) -> FusedLabels:
        """:meth:`labels` from this fusion's votes ``v`` (read once by the caller)."""
        pg, pl, pw = v.pair_voxel, v.pair_label, v.pair_weight
        if lut is not None and len(pl):
            inside = pl < len(lut)
            pl = np.where(inside, np.asarray(lut, np.int64)[np.minimum(pl, len(lut) - 1)], pl)
            key, inv = np.unique(pg * (int(pl.max()) + 1) + pl, return_inverse=True)
            # sums of the merged pairs, in (voxel, label) order: the order the votes had
            pw = np.bincount(inv.ravel(), pw, len(key))
            base = int(pl.max()) + 1
            pg, pl = key // base, key % base
        label, conf = winners(pg, pl, pw, len(v.n_obs))
        return FusedLabels(self._keys.copy(), label, conf, self.voxel)

    def cloud(self, lut: np.ndarray | None = None, labels: FusedLabels | None = None
              ) -> LabelledCloud:
        """The fused cloud: one point per voxel with at least ``cfg.min_obs`` observations, in
        lexicographic voxel order (as :func:`fuse_points`), labelled by :meth:`labels`
        (``lut``: see there), or by ``labels`` when given (this fusion's, computed earlier).
        """
        if len(self._n) == 0:
            return _empty_cloud()
        v = self.votes()
        fused = self._labels(v, lut) if labels is None else labels
        if len(fused.label) != len(v.n_obs):
            raise ValueError(f"fused labels of {len(fused.label)} voxels for a fusion of "
                             f"{len(v.n_obs)}")
        keep = v.n_obs >= self.cfg.min_obs
        return LabelledCloud(
            points=v.points[keep].astype(np.float32), colors=v.colors[keep],
            normals=v.normals[keep].astype(np.float32), labels=fused.label[keep],
            label_conf=fused.conf[keep], n_obs=v.n_obs[keep].astype(np.int32),
        )


@dataclass
class FusedLabels:
    """The fusion's verdict per voxel: sorted voxel ``keys`` (int64 :func:`pack_keys`, or
    24-byte :func:`wide_keys` for scenes beyond the packing), each one's winning ``label``
    (int32, 0 = "unlabelled" won) and its vote share ``conf`` (float32); ``voxel`` the size.

    :meth:`project` hands the verdict back to a frame: each pixel takes the label its voxel
    won over all frames, so the frames agree with each other and with the cloud."""

    keys: np.ndarray
    label: np.ndarray
    conf: np.ndarray
    voxel: float

    def at(self, points: np.ndarray) -> np.ndarray:
        """(N,) int64 label of the voxel holding each point (N, 3); 0 where no voxel is (a
        pixel fusion skipped, ``FuseConfig.stride``) or "unlabelled" won."""
        out = np.zeros(len(points), np.int64)
        if len(points) == 0 or len(self.keys) == 0:
            return out
        q = voxel_index(np.asarray(points, np.float64), self.voxel)  # as fusion keyed them
        if self.keys.dtype == np.int64:
            inside = rows_in_key_range(q)
            keys = pack_keys(q[inside])
        else:
            inside = np.ones(len(q), bool)
            keys = wide_keys(q)
        pos, found = find_sorted(self.keys, keys)
        idx = np.flatnonzero(inside)[found]
        out[idx] = self.label[pos[found]]
        return out

    def project(self, labels: np.ndarray, pm: PointMaps, min_area: float = 0.0) -> np.ndarray:
        """A frame's (H, W) ID map with the pixels of valid 3D whose voxel an ID won (not
        "unlabelled") relabelled with that ID, where the relabelled pixel lies in a
        4-connected region of its new ID (in the relabelled map, so with the ID's pixels that
        were there already) of at least ``min_area`` of the frame (a share): a seam moved
        onto the object it belongs to stays, a speck of an ID the frame does not hold there
        (a misaligned frame's points falling into the neighbour's voxels) goes. Other pixels
        keep theirs."""
        if pm.points is None or not pm.valid.any():
            return labels
        won = np.zeros(labels.shape, np.int64)
        won[pm.valid] = self.at(pm.points[pm.valid])
        change = (won > 0) & (won != labels)
        if min_area > 0 and change.any():
            from skimage.measure import label as regions

            # the regions of the relabelled map: a change joins its ID's region in the frame
            reg = regions(np.where(change, won, labels), background=0, connectivity=1)
            size = np.bincount(reg.ravel())
            held = np.bincount(reg.ravel(), (~change).ravel()) > 0  # had the ID there before
            change &= held[reg] | (size[reg] >= min_area * labels.size)
        out = np.array(labels, copy=True)
        out[change] = won[change].astype(out.dtype)
        return out

    def save(self, path: str | Path) -> None:
        """Write to ``path`` (.npz) atomically."""
        from lift3d.io.atomic import write_npz

        wide = self.keys.dtype != np.int64
        keys = self.keys.view(np.uint8).reshape(len(self.keys), -1) if wide else self.keys
        write_npz(path, keys=keys, wide=wide, label=self.label, conf=self.conf, voxel=self.voxel)

    @classmethod
    def load(cls, path: str | Path) -> FusedLabels:
        """Read what :meth:`save` wrote."""
        with np.load(path) as z:
            keys = z["keys"]
            if bool(z["wide"]):
                keys = np.ascontiguousarray(keys).view(np.dtype((np.void, 24))).ravel()
            return cls(keys, z["label"], z["conf"], float(z["voxel"]))


@dataclass
class FusedVotes:
    """The fusion's voxels and their label votes (:meth:`FuseAccumulator.votes`).

    points (V, 3) float64 mean positions; colors (V, 3) uint8; normals (V, 3) float64 unit
    (zeros where unknown); n_obs (V,) int64 observations per voxel; pair_voxel / pair_label /
    pair_weight (P,): one row per (voxel, label) with its summed confidence weight, sorted by
    (voxel, label); voxel: the voxel size; min_obs: voxels with fewer observations are not in
    the cloud (``n_obs >= min_obs`` selects the cloud's points, in order).
    """

    points: np.ndarray
    colors: np.ndarray
    normals: np.ndarray
    n_obs: np.ndarray
    pair_voxel: np.ndarray
    pair_label: np.ndarray
    pair_weight: np.ndarray
    voxel: float
    min_obs: int


def fuse_voxel(geometry: Geometry, cfg: FuseConfig = FuseConfig()) -> float:
    """The fusion voxel size: ``cfg.voxel``, else ``cfg.voxel_rel`` x the scene scale."""
    if cfg.voxel is not None:
        return float(cfg.voxel)
    s = scene_scale(geometry)
    return cfg.voxel_rel * (s if s > 0 else 1.0)


def fuse(
    geometry: Geometry, images: Sequence[np.ndarray], labels: Sequence[np.ndarray],
    cfg: FuseConfig = FuseConfig(), voxel: float | None = None,
) -> LabelledCloud:
    """Fuse all frames into a :class:`LabelledCloud` (frame by frame, a
    :class:`FuseAccumulator`).

    images: (H, W, 3) uint8 per frame; labels: (H, W) int32 per frame (IDs consistent across
    frames). ``voxel`` overrides the config's voxel size (scene units).
    """
    if geometry.kind != "3d":
        raise ValueError("fusion needs 3D geometry (points); flow geometry is 2D only")
    acc = FuseAccumulator(voxel if voxel is not None else fuse_voxel(geometry, cfg), cfg)
    for k in range(len(geometry)):
        acc.add_frame(geometry[k], images[k], labels[k])
    return acc.cloud()


def _empty_cloud() -> LabelledCloud:
    z = np.zeros((0, 3), np.float32)
    return LabelledCloud(z, np.zeros((0, 3), np.uint8), z, np.zeros(0, np.int32),
                         np.zeros(0, np.float32), np.zeros(0, np.int32))


def fuse_points(
    points: np.ndarray, colors: np.ndarray, normals: np.ndarray, labels: np.ndarray,
    weights: np.ndarray, voxel: float, cfg: FuseConfig = FuseConfig(),
) -> LabelledCloud:
    """Voxel-fuse observations: points (N, 3), colors (N, 3) uint8, normals (N, 3),
    labels (N,) int, weights (N,) >= 0. Returns one point per occupied voxel."""
    if len(points) == 0:
        return _empty_cloud()
    q = voxel_index(points, voxel)
    # 1-D keys sort far faster; lexicographic (x, y, z) order whatever the scene's extent
    key = pack_keys(q) if in_key_range(q) else wide_keys(q)
    _, vox, n_obs = np.unique(key, return_inverse=True, return_counts=True)
    vox = vox.ravel()
    n_vox = len(n_obs)

    def mean(a: np.ndarray) -> np.ndarray:
        return np.stack([np.bincount(vox, a[:, d], n_vox) for d in range(a.shape[1])], 1) / n_obs[:, None]

    pos = mean(points)
    rgb = np.clip(np.rint(mean(colors.astype(np.float64))), 0, 255).astype(np.uint8)
    nsum = mean(normals.astype(np.float64))
    nlen = np.linalg.norm(nsum, axis=1, keepdims=True)
    nrm = np.where(nlen > 1e-9, nsum / np.maximum(nlen, 1e-12), 0.0)

    label_out, conf_out = vote(vox, labels, weights, n_vox, cfg.unlabelled_votes)
    keep = n_obs >= cfg.min_obs
    return LabelledCloud(
        points=pos[keep].astype(np.float32), colors=rgb[keep], normals=nrm[keep].astype(np.float32),
        labels=label_out[keep], label_conf=conf_out[keep], n_obs=n_obs[keep].astype(np.int32),
    )


def vote(
    group: np.ndarray, labels: np.ndarray, weights: np.ndarray, n_groups: int,
    unlabelled_votes: bool = True,
) -> tuple[np.ndarray, np.ndarray]:
    """Confidence-weighted label vote per group.

    Returns (label (G,) int32, share of the weight the winner got (G,) float32). Ties go to
    the smaller label. Groups with no votes get label 0 and share 0.
    """
    labels = labels.astype(np.int64)
    w = weights.astype(np.float64)
    if not unlabelled_votes:
        keep = labels > 0
        group, labels, w = group[keep], labels[keep], w[keep]
    w = np.maximum(w, 1e-12)  # every observation votes, even at zero confidence
    base = int(labels.max()) + 1 if len(labels) else 1
    pair, inv = np.unique(group.astype(np.int64) * base + labels, return_inverse=True)
    pw = np.bincount(inv.ravel(), w, len(pair))
    pg, pl = pair // base, pair % base
    # winner per group: sort by group, then weight descending, then label ascending
    order = np.lexsort((pl, -pw, pg))
    return winners(pg, pl, pw, n_groups, order)


def winners(pg: np.ndarray, pl: np.ndarray, pw: np.ndarray, n_groups: int,
            order: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Winning label (int32, 0 for a group without pairs) and its weight share per group from
    (group, label, weight) pairs, one per (group, label), in any order: the most weight wins,
    ties go to the smaller label. ``order``: the pairs' ``np.lexsort((pl, -pw, pg))``, if at
    hand."""
    if order is None:
        order = np.lexsort((pl, -pw, pg))
    first = np.ones(len(order), bool)
    first[1:] = pg[order][1:] != pg[order][:-1]
    win = order[first]
    total = np.bincount(pg, pw, n_groups)
    label_out = np.zeros(n_groups, np.int32)
    conf_out = np.zeros(n_groups, np.float32)
    label_out[pg[win]] = pl[win]
    conf_out[pg[win]] = pw[win] / np.maximum(total[pg[win]], 1e-12)
    return label_out, conf_out
