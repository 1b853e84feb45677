"""Tracklet linking: the association stage on the 2D (flow) path.

On plain video the tracker's IDs churn: the segmenter splits the object into parts that differ
from frame to frame, a part's prompt is rejected, its pixels are re-seeded under a new ID, and
one object goes through dozens of short-lived IDs (the DAVIS dog: 19 -> 38 -> 63 -> 72 -> 139 ->
185, and a few hundred fragments on blackswan). This linker merges them back, from statistics
it streams frame by frame at a small working resolution (its memory grows with the number of
IDs and of touching ID pairs, never with the number of frames):

* per ID: first and last mask (a crop) and the last mask's mean flow, its pixels and its Lab
  colour histogram summed over frames, and how much the flow varies inside it (sample pairs
  ``boundary_offset`` apart within the ID);
* per pair of IDs that touch: how much the flow differs across their shared boundary (sample
  pairs ``boundary_offset`` apart straddling it), summed with the sample count;
* **handovers**: ID a ends at t-1 and ID b is born at t, and the optical flow carries a large
  share of a's last mask into b's first (or b's first mask comes mostly from a). The flow is
  DIS on the downscaled frames, computed here (the associator gets no matches from the
  geometry; it costs ~10-30 ms a frame beside the tracker's seconds);
* **gap links**: an ID that ends and one born 2 to ``max_gap`` frames later where the first's
  last mask, moved on by its flow, lands (one-to-one: Hungarian assignment on overlap times
  appearance).

Then :meth:`TrackletAssociator.solve` merges **groups**, not IDs, agglomeratively, the pair with
the most similar pooled colour histograms first, provided

* they look alike (``min_appearance``);
* if they touch, their boundary does not move differently: the flow difference across it is
  at most ``max_flow_contrast`` times the flow variation inside the steadier of the two
  (parts of one object, even an articulated one, differ across their boundary no more than
  inside; an object and what lies behind it do); if they never touch, a handover or gap link
  joins them (``min_handover``);
* the merged group stays smaller than ``max_group_share`` of the frame (per frame of its life):
  the background is not an object, and nothing joins it.

After each merge the evidence is pooled (histograms and boundary samples summed, the strongest
handover kept), so a group is judged as a whole. Single-link union-find over the same pairwise
tests chained the object into the background on every DAVIS sequence; pooling and the size
cap stop that.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

import numpy as np

from lift3d.associate.base import Association, Merge, pair_counts
from lift3d.associate.tracklets_config import TrackletConfig
from lift3d.types import PointMaps

__all__ = ["IdStats", "PairStats", "Snapshot", "TrackletAssociator", "agglomerate",
           "color_bins", "gap_links"]

_DIRS = np.array([(1, 0), (0, 1), (1, 1), (1, -1)])
"""Directions (dx, dy) of the sample pairs compared across ID boundaries."""


@dataclass
class Snapshot:
    """One ID's mask in one frame, at the working resolution: frame ``t``, ``(y0, x0)`` of the
    crop, the ``(h, w)`` bool crop, and its mean flow to the next frame ``(2,)`` (dx, dy in
    pixels per frame; NaN when unknown: the last frame, or the ID ended there)."""

    t: int
    y0: int
    x0: int
    mask: np.ndarray
    flow: np.ndarray = field(default_factory=lambda: np.full(2, np.nan, np.float32))

    @property
    def area(self) -> int:
        return int(self.mask.sum())


@dataclass
class IdStats:
    """What the linker keeps of one tracked ID: first and last snapshot, number of frames,
    pixels summed over frames, and the sum over frames of its normalised Lab histogram."""

    first: Snapshot
    last: Snapshot
    hist_sum: np.ndarray
    n_frames: int = 1
    area_sum: float = 0.0
    inner_n: float = 0.0
    inner_flow_diff: float = 0.0


@dataclass
class PairStats:
    """Two IDs that touch: frames where they do, boundary samples, and the sum over those
    samples of the flow difference (pixels per frame)."""

    n_frames: int = 0
    n_bnd: float = 0.0
    flow_diff: float = 0.0


class TrackletAssociator:
    """The :class:`~lift3d.associate.base.Associator` of the 2D path (see the module doc)."""

    name = "tracklets"

    def __init__(self, cfg: TrackletConfig | None = None) -> None:
        self.cfg = cfg or TrackletConfig()
        self.ids: dict[int, IdStats] = {}
        self.pairs: dict[tuple[int, int], PairStats] = {}
        self.handover: dict[tuple[int, int], float] = {}
        """(a, b): ID a ends at t-1 and ID b is born at t; the share of a's pixels at t-1 that
        the flow carries into b at t, or of b's pixels at t that come from a, the larger."""
        self._prev: tuple[int, np.ndarray, np.ndarray] | None = None  # (t, labels, grey)
        self._dis = None
        self.n_frames = 0
        self.shape: tuple[int, int] | None = None  # working resolution (H, W)

    # ------------------------------------------------------------------ streaming

    def add_frame(self, t: int, image: np.ndarray, labels: np.ndarray,
                  pointmaps: PointMaps | None = None, normals: np.ndarray | None = None) -> None:
        """Frame ``t``: (H, W, 3) uint8 RGB image and (H, W) int tracked IDs (pointmaps and
        normals are not used: this is the 2D path)."""
        import cv2

        from lift3d.checks import check_shape

        check_shape("labels", labels, (image.shape[0], image.shape[1]))
        h, w = labels.shape
        s = min(1.0, self.cfg.work_side / max(h, w))
        size = (max(1, round(w * s)), max(1, round(h * s)))
        lab = cv2.resize(np.asarray(labels, np.int32), size, interpolation=cv2.INTER_NEAREST)
        img = cv2.resize(np.ascontiguousarray(image), size, interpolation=cv2.INTER_AREA)
        lab_colour = cv2.cvtColor(img, cv2.COLOR_RGB2LAB)
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)
        self.shape = lab.shape
        self._add_ids(t, lab, color_bins(lab_colour, self.cfg.hist_bins))
        if self._prev is not None and self._prev[0] == t - 1 and self._prev[1].shape == lab.shape:
            flow = self._flow(self._prev[2], grey)
            self._add_motion(t - 1, self._prev[1], lab, flow)
        self._prev = (t, lab, grey)
        self.n_frames += 1

    def _flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        from lift3d.geometry.flow import dis_flow

        if self._dis is None:
            self._dis = dis_flow(self.cfg.flow_preset)
        return self._dis.calc(a, b, None)

    def _add_ids(self, t: int, lab: np.ndarray, bins: np.ndarray) -> None:
        nb = self.cfg.hist_bins ** 3
        ids, inv = np.unique(lab, return_inverse=True)
        inv = inv.reshape(lab.shape)
        hist = np.bincount((inv * nb + bins).ravel(), minlength=len(ids) * nb)
        hist = hist.reshape(len(ids), nb).astype(np.float32)
        area = hist.sum(1)
        boxes = _boxes(inv, len(ids))
        for k, i in enumerate(ids.tolist()):
            if i == 0:
                continue
            y0, y1, x0, x1 = boxes[k]
            snap = Snapshot(t, y0, x0, inv[y0:y1, x0:x1] == k)
            st = self.ids.get(i)
            if st is None:
                st = self.ids[i] = IdStats(first=snap, last=snap, hist_sum=np.zeros(nb, np.float32))
            else:
                st.last = snap
                st.n_frames += 1
            st.area_sum += float(area[k])
            st.hist_sum += hist[k] / area[k]

    def _add_motion(self, t0: int, prev: np.ndarray, cur: np.ndarray, flow: np.ndarray) -> None:
        """Handovers from frame t0 to t0 + 1, each ID's mean flow at t0 (kept for its last
        snapshot), and the flow differences across every boundary and inside every ID at t0."""
        ids, inv = np.unique(prev, return_inverse=True)
        inv = inv.ravel()
        n = np.bincount(inv, minlength=len(ids)).astype(np.float64)
        area_prev = dict(zip(ids.tolist(), n.tolist()))
        cur_ids, cur_n = np.unique(cur, return_counts=True)
        area_cur = dict(zip(cur_ids.tolist(), cur_n.tolist()))
        for (a, b), c in _handovers(prev, cur, flow).items():
            if a not in area_cur and self.ids[b].first.t == t0 + 1:  # a ends, b is born
                share = min(1.0, max(c / area_prev[a], c / area_cur[b]))
                self.handover[a, b] = max(self.handover.get((a, b), 0.0), share)
        fx = np.bincount(inv, weights=flow[..., 0].ravel(), minlength=len(ids)) / n
        fy = np.bincount(inv, weights=flow[..., 1].ravel(), minlength=len(ids)) / n
        for k, i in enumerate(ids.tolist()):
            st = self.ids.get(i)
            if st is not None and st.last.t == t0:
                st.last.flow = np.array([fx[k], fy[k]], np.float32)
        bnd, inner = _flow_contrast(prev, flow, self.cfg.boundary_offset)
        for i, (c, fd) in inner.items():
            st = self.ids.get(i)
            if st is not None:
                st.inner_n += c
                st.inner_flow_diff += fd
        for pair, (c, fd) in bnd.items():
            ps = self.pairs.get(pair)
            if ps is None:
                ps = self.pairs[pair] = PairStats()
            ps.n_frames += 1
            ps.n_bnd += c
            ps.flow_diff += fd

    # ------------------------------------------------------------------ decision

    def solve(self, fusion=None) -> Association:
        """The merges (``fusion`` is unused: the 2D path has no fused cloud)."""
        links = gap_links(self.ids, self.cfg)
        frame_area = float(np.prod(self.shape)) if self.shape else np.inf
        merges = agglomerate(self.ids, self.pairs, self.handover, links, self.cfg, frame_area)
        from lift3d.associate.base import groups_to_mapping

        return Association(groups_to_mapping([m.ids for m in merges]), merges, method=self.name)


# ---------------------------------------------------------------------------- per frame


def color_bins(lab_colour: np.ndarray, n: int) -> np.ndarray:
    """(H, W) int64 joint bin in [0, n**3) of each pixel of an OpenCV 8-bit Lab image."""
    q = (lab_colour.astype(np.int64) * n) >> 8
    return (q[..., 0] * n + q[..., 1]) * n + q[..., 2]


def _boxes(inv: np.ndarray, n: int) -> np.ndarray:
    """(n, 4) int (y0, y1, x0, x1) bounding box (end exclusive) of each index of ``inv``."""
    hs, ws = inv.shape
    rows = np.zeros((n, hs), bool)
    cols = np.zeros((n, ws), bool)
    rows[inv, np.arange(hs)[:, None]] = True
    cols[inv, np.arange(ws)[None, :]] = True
    y0 = rows.argmax(1)
    y1 = hs - rows[:, ::-1].argmax(1)
    x0 = cols.argmax(1)
    x1 = ws - cols[:, ::-1].argmax(1)
    return np.stack([y0, y1, x0, x1], 1)


def _handovers(prev: np.ndarray, cur: np.ndarray, flow: np.ndarray) -> dict[tuple[int, int], float]:
    """{(a, b): pixels of ID a in ``prev`` that the flow carries into ID b != a in ``cur``}."""
    hs, ws = prev.shape
    ys, xs = np.mgrid[0:hs, 0:ws]
    qx = np.rint(xs + flow[..., 0]).astype(np.int64)
    qy = np.rint(ys + flow[..., 1]).astype(np.int64)
    inside = (qx >= 0) & (qx < ws) & (qy >= 0) & (qy < hs)
    a = prev[inside]
    b = cur[qy[inside], qx[inside]]
    keep = (a > 0) & (b > 0) & (a != b)
    return {k: float(v[0]) for k, v in pair_counts(a[keep], b[keep]).items()}


def _flow_contrast(lab: np.ndarray, flow: np.ndarray, offset: int
                   ) -> tuple[dict[tuple[int, int], tuple[float, float]], dict[int, tuple[float, float]]]:
    """Over pixel pairs ``offset`` apart (four directions): {(a, b) with a < b: (samples,
    sum |flow_a - flow_b|)} for pairs in two different IDs, and {a: (samples, sum |flow
    difference|)} for pairs inside one ID. ``lab`` (H, W) int IDs, ``flow`` (H, W, 2)."""
    hs, ws = lab.shape
    p, q, fd, ii, ifd = [], [], [], [], []
    for dx, dy in _DIRS * offset:
        y0, y1, x0, x1 = max(0, -dy), hs - max(0, dy), max(0, -dx), ws - max(0, dx)
        sa = (slice(y0, y1), slice(x0, x1))
        sb = (slice(y0 + dy, y1 + dy), slice(x0 + dx, x1 + dx))
        la, lb = lab[sa], lab[sb]
        diff = np.linalg.norm(flow[sa] - flow[sb], axis=-1)
        same = (la == lb) & (la > 0)
        ii.append(la[same])
        ifd.append(diff[same])
        m = (la != lb) & (la > 0) & (lb > 0)
        p.append(np.minimum(la[m], lb[m]))
        q.append(np.maximum(la[m], lb[m]))
        fd.append(diff[m])
    across = pair_counts(np.concatenate(p), np.concatenate(q), [np.concatenate(fd)])
    ii = np.concatenate(ii)
    inside = pair_counts(ii, ii, [np.concatenate(ifd)])
    return ({k: (float(c), float(f)) for k, (c, f) in across.items()},
            {k[0]: (float(c), float(f)) for k, (c, f) in inside.items()})


# ---------------------------------------------------------------------------- decision


def appearance(h1: np.ndarray, h2: np.ndarray) -> float:
    """Bhattacharyya coefficient of two histograms (each normalised here): 1 = identical."""
    s1, s2 = float(h1.sum()), float(h2.sum())
    if s1 <= 0 or s2 <= 0:
        return 0.0
    return float(np.sqrt(h1 / s1 * (h2 / s2)).sum())


def _moved_overlap(a: Snapshot, b: Snapshot) -> int:
    """Pixels of ``a``'s mask, moved on by its flow for ``b.t - a.t`` frames, inside ``b``'s."""
    v = np.nan_to_num(a.flow) * (b.t - a.t)
    dy, dx = int(round(a.y0 + v[1])) - b.y0, int(round(a.x0 + v[0])) - b.x0
    ha, wa = a.mask.shape
    hb, wb = b.mask.shape
    y0, y1 = max(0, dy), min(hb, dy + ha)
    x0, x1 = max(0, dx), min(wb, dx + wa)
    if y0 >= y1 or x0 >= x1:
        return 0
    return int((a.mask[y0 - dy : y1 - dy, x0 - dx : x1 - dx] & b.mask[y0:y1, x0:x1]).sum())


def gap_links(ids: dict[int, IdStats], cfg: TrackletConfig) -> dict[tuple[int, int], float]:
    """{(ended, born): overlap share} for IDs that end and IDs born 2 to ``max_gap`` frames
    later where the ended one's last mask, moved on by its flow, covers at least
    ``min_gap_overlap`` of the smaller mask; one-to-one by Hungarian assignment on
    overlap share times appearance. (A birth right after an end is a handover, counted while
    streaming.)"""
    from scipy.optimize import linear_sum_assignment

    last_t = max((s.last.t for s in ids.values()), default=0)
    ended = [i for i, s in ids.items() if s.last.t < last_t]
    born = [i for i, s in ids.items() if s.first.t > 0]
    if not ended or not born:
        return {}
    score = np.zeros((len(ended), len(born)))
    shares = np.zeros((len(ended), len(born)))
    for r, i in enumerate(ended):
        a = ids[i].last
        for c, j in enumerate(born):
            b = ids[j].first
            if not 2 <= b.t - a.t <= cfg.max_gap:
                continue
            ov = _moved_overlap(a, b)
            share = ov / max(min(a.area, b.area), 1)
            if share < cfg.min_gap_overlap:
                continue
            sim = appearance(ids[i].hist_sum, ids[j].hist_sum)
            if sim < cfg.min_appearance:
                continue
            score[r, c], shares[r, c] = share * sim, share
    rows, cols = linear_sum_assignment(-score)
    return {(ended[r], born[c]): float(shares[r, c]) for r, c in zip(rows, cols) if score[r, c] > 0}


@dataclass
class _Group:
    """A group of IDs during agglomeration, with its pooled statistics."""

    members: list[int]
    hist: np.ndarray
    area: float
    inner_n: float
    inner_flow_diff: float
    first: int
    last: int
    version: int = 0
    steps: list[dict] = field(default_factory=list)


def agglomerate(ids: dict[int, IdStats], pairs: dict[tuple[int, int], PairStats],
                handover: dict[tuple[int, int], float], links: dict[tuple[int, int], float],
                cfg: TrackletConfig, frame_area: float = np.inf) -> list[Merge]:
    """Merge groups of IDs (module doc): most similar pooled appearance first, if they look
    alike and move together across a shared boundary or handed over enough pixels. Returns
    one :class:`Merge` per group of two or more IDs, its evidence the merge steps."""
    groups = {i: _Group([i], s.hist_sum.astype(np.float64), s.area_sum, s.inner_n,
                        s.inner_flow_diff, s.first.t, s.last.t) for i, s in ids.items()}
    # edges[g][h] = [boundary samples, flow difference sum, largest handover share, largest
    # gap-link share]: sums pool boundaries; a handover is one event, so the strongest counts
    edges: dict[int, dict[int, list[float]]] = {i: {} for i in ids}

    def edge(a: int, b: int) -> list[float]:
        e = edges[a].get(b)
        if e is None:
            e = edges[a][b] = edges[b][a] = [0.0, 0.0, 0.0, 0.0]
        return e

    for (a, b), ps in pairs.items():
        if a in ids and b in ids:
            e = edge(a, b)
            e[0] += ps.n_bnd
            e[1] += ps.flow_diff
    for (a, b), c in handover.items():
        if a in ids and b in ids:
            e = edge(a, b)
            e[2] = max(e[2], c)
    for (a, b), c in links.items():
        e = edge(a, b)
        e[3] = max(e[3], c)

    def cost(a: int, b: int) -> tuple[float, dict] | None:
        e = edges[a][b]
        ga, gb = groups[a], groups[b]
        sim = appearance(ga.hist, gb.hist)
        if sim < cfg.min_appearance:
            return None
        span = max(ga.last, gb.last) - min(ga.first, gb.first) + 1
        if (ga.area + gb.area) / span > cfg.max_group_share * frame_area:
            return None  # as large as the background: nothing more joins it
        ev = {"appearance": round(sim, 3), "handover": round(max(e[2], e[3]), 3)}
        if e[0] > 0:  # they touch: their boundary's motion decides
            inner = min(ga.inner_flow_diff / max(ga.inner_n, 1.0),
                        gb.inner_flow_diff / max(gb.inner_n, 1.0))
            ev["flow_diff"] = round(e[1] / e[0], 3)
            ev["flow_contrast"] = round(e[1] / e[0] / (inner + cfg.flow_noise), 3)
            if ev["flow_diff"] > cfg.max_flow_diff or ev["flow_contrast"] > cfg.max_flow_contrast:
                return None
            ev["kind"] = "motion"
        elif ev["handover"] >= cfg.min_handover:
            ev["kind"] = "gap" if e[3] > e[2] else "handover"
        else:
            return None
        return 1.0 - sim, ev

    heap: list = []

    def push(a: int, b: int) -> None:
        c = cost(a, b)
        if c is not None:
            heapq.heappush(heap, (c[0], a, b, groups[a].version, groups[b].version, c[1]))

    for a in edges:
        for b in edges[a]:
            if a < b:
                push(a, b)
    while heap:
        _, a, b, va, vb, ev = heapq.heappop(heap)
        if a not in groups or b not in groups or groups[a].version != va or groups[b].version != vb:
            continue
        keep, gone = min(a, b), max(a, b)
        g, h = groups[keep], groups.pop(gone)
        g.steps += h.steps + [{"ids": [keep, gone], "order": len(ids) - len(groups), **ev}]
        g.members += h.members
        g.hist += h.hist
        g.area += h.area
        g.inner_n += h.inner_n
        g.inner_flow_diff += h.inner_flow_diff
        g.first, g.last = min(g.first, h.first), max(g.last, h.last)
        g.version += 1
        for k, e in edges.pop(gone).items():
            del edges[k][gone]
            if k != keep:
                e2 = edge(keep, k)
                e2[0] += e[0]
                e2[1] += e[1]
                e2[2], e2[3] = max(e2[2], e[2]), max(e2[3], e[3])
        edges[keep].pop(gone, None)
        for k in edges[keep]:
            push(keep, k)
    merges = []
    for i, g in sorted(groups.items()):
        if len(g.members) < 2:
            continue
        kinds = sorted({s["kind"] for s in g.steps})
        first = min(ids[m].first.t for m in g.members)
        last = max(ids[m].last.t for m in g.members)
        merges.append(Merge(sorted(int(m) for m in g.members), int(i), "+".join(kinds),
                            {"frames": [int(first), int(last)], "steps": g.steps}))
    return merges
