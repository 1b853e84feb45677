"""The 3D associator: tracked IDs that are parts of one object, judged on the fused cloud.

Evidence, in the spirit of the training-free 3D methods but written for tracked IDs on a
streamed voxel cloud:

* **Superpoints** (as ScanNet's Segmentator on meshes, SAM3D and SAI3D over its segments): a
  Felzenszwalb graph segmentation of the fused voxels over a k-NN graph on normals,
  with convex creases made cheap to cross (LCCP's convexity, so a box is one superpoint and
  its contact with the floor is a cut). The IDs' fused votes are pooled per superpoint; two
  IDs that each put most of their votes into one superpoint are one object (both directions
  must agree, as SAM3D's bidirectional merging).
* **Boundary convexity** (LCCP): over the adjacent voxel pairs across two IDs' 3D boundary,
  the share of convex or flat ones. An object is mostly convex; its contact with the floor,
  a wall or a neighbour is concave.
* **View consensus** (MaskClustering's idea without the masks): the segmenter's coarser
  masks are not handed to the associator, so per frame it records which IDs are seen
  together and which of those touch (a depth-continuous 2D boundary). Parts of one object
  touch in nearly every view that sees both; two objects that only look adjacent from a few
  viewpoints do not, and that vetoes their merge.
* **Structure**: an ID that is large and planar (floor, wall) merges only with structure, so
  the room never swallows what stands in it.
* **Support direction** (gravity): a concave seam where one ID's surface faces down and the
  other meets it from below with its side is a part hanging from another (a table's leg
  under its top, a lamp's pole under its shade): one object. Objects rest on upward-facing
  surfaces, so a box on a table (the table's side of the seam faces up) is never taken for
  one. Up is the floor's normal (structure, oriented towards the cameras), found near the
  cameras' average up; never read from the data's axes.
* **Held parts** (gravity again): nothing rests on a vertical surface, so a part whose upward
  and downward faces both meet another's side-facing surface at concave creases is held by
  it: a shelf's board between its sides, a seat against a chair's back.
* **Thin parts**: a board seen from both sides (a shelf's side panel, a chair's back) gets
  one ID per face; the faces lie a few voxels apart with opposed normals facing away from
  each other, which two separate objects cannot show (their facing sides face each other).
* **Shared surfaces**: two IDs each with most of its votes on voxels the other voted on too
  labelled one surface in turn (the tracker relabelled a wall between frames): one.
* **Fragments** (once, after the other rules): an ID seen in a frame or two whose surface
  an ID seen longer won in the fused votes (the tracker lost the object for a frame and
  re-seeded it), or that lives in a superpoint one ID holds, joins that ID.

Memory: per-ID and per-ID-pair counters gathered frame by frame (nothing per frame is kept);
:meth:`SceneAssociator.solve` reads the fusion's per-(voxel, ID) votes once.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lift3d.associate.base import Association, Merge, groups_to_mapping, pair_counts
from lift3d.associate.scene3d_config import Scene3DConfig
from lift3d.types import PointMaps

_QUERY_CHUNK = 1 << 16
"""Voxels per k-NN query (bounds the query's temporary arrays)."""
# per-pair counters gathered per frame: frames seeing both, frames they touch in, boundary
# pixels (contact, convex, concave), and the frames' weights (the smaller ID's pixels there)
_COVIS, _TOUCH, _CONTACT, _CONVEX, _CONCAVE, _COVIS_PX, _TOUCH_PX = range(7)
_N_COUNTERS = 7


@dataclass
class VoxelGraph:
    """The fused voxels' adjacency: edges (E, 2) int32 voxel indices (i < j), each edge's
    normal dot product ``dot`` (E,), its convexity ``conv`` (E,) ((n_i - n_j) . (p_i - p_j) /
    |p_i - p_j|: > 0 convex, < 0 concave), colour distance ``dcol`` (E,) in [0, 1] and how
    far it leaves the surface ``off`` (E,) (max over its ends of |n . (p_i - p_j)| /
    |p_i - p_j|: 0 along a plane, 1 straight out of it) (float32)."""

    edges: np.ndarray
    dot: np.ndarray
    conv: np.ndarray
    dcol: np.ndarray
    off: np.ndarray

    def step(self, cfg: Scene3DConfig, sel=slice(None)) -> np.ndarray:
        """(E,) bool, or for the edges ``sel`` picks: normals parallel but the edge leaves
        their plane (``cfg.step_off``): a step between two parallel surfaces (a box's front
        before the panel behind it)."""
        return (self.dot[sel] > cfg.flat_dot) & (self.off[sel] > cfg.step_off)


@dataclass
class FixedEvidence:
    """What the rounds of judging share (none of it depends on the merges so far): the voxel
    graph, the superpoint per voxel (V,), each voxel's winning ID (V,) before any merge, and
    each superpoint's shape (keyed by superpoint index + 1)."""

    graph: VoxelGraph
    sp: np.ndarray
    winners: np.ndarray
    sp_shapes: dict


def fixed_evidence(votes, cfg: Scene3DConfig) -> FixedEvidence:
    """:class:`FixedEvidence` of the fused votes (built once per solve)."""
    graph = voxel_graph(votes, cfg)
    sp = superpoints(graph, len(votes.n_obs), cfg)
    return FixedEvidence(graph, sp, voxel_winners(votes)[0],
                         id_shapes(sp + 1, votes.points, votes.voxel))


@dataclass
class PairEvidence:
    """What the rules saw for one pair of IDs (JSON-ready through :meth:`to_json`)."""

    a: int
    b: int
    figures: dict = field(default_factory=dict)
    reasons: list = field(default_factory=list)
    vetoes: list = field(default_factory=list)
    round: int = 0


class SceneAssociator:
    """Merges tracked IDs over the fused cloud (see the module docstring); ``name`` "3d"."""

    name = "3d"

    def __init__(self, cfg: Scene3DConfig = Scene3DConfig()) -> None:
        self.cfg = cfg
        self.frames_seen: dict[int, int] = {}
        self.pairs: dict[tuple[int, int], np.ndarray] = {}
        self.cam_up = np.zeros(3)
        """Sum of the cameras' up axes (-y in OpenCV camera axes), world frame."""

    # ------------------------------------------------------------------ streamed, per frame
    def add_frame(self, t: int, image: np.ndarray, labels: np.ndarray,
                  pointmaps: PointMaps | None, normals: np.ndarray | None = None) -> None:
        """Count which IDs frame ``t`` sees together and, with 3D points, which of them touch
        (depth-continuous 2D boundary) and how convex that boundary is (``normals``: the
        frame's :func:`lift3d.fuse.frame_normals`, when the caller has them)."""
        cfg = self.cfg
        ids, counts = np.unique(labels[labels > 0], return_counts=True)
        seen = ids[counts >= cfg.min_pixels]
        for i in seen.tolist():
            self.frames_seen[i] = self.frames_seen.get(i, 0) + 1
        if pointmaps is not None and pointmaps.cam_to_world is not None:
            self.cam_up -= np.asarray(pointmaps.cam_to_world, np.float64)[:3, 1]
        if len(seen) < 2:
            return
        ia, ib = np.triu_indices(len(seen), 1)
        px = dict(zip(ids.tolist(), counts.tolist(), strict=True))
        for a, b in zip(seen[ia].tolist(), seen[ib].tolist(), strict=True):
            row = self._pair(a, b)
            row[_COVIS] += 1
            row[_COVIS_PX] += min(px[a], px[b])
        if pointmaps is None or pointmaps.points is None:
            return
        in_view = set(seen.tolist())
        for (a, b), c in frame_contacts(labels, pointmaps, cfg, normals).items():
            if a in self.frames_seen and b in self.frames_seen:
                row = self._pair(a, b)
                row[_CONTACT:_CONCAVE + 1] += c
                touch = c[0] >= cfg.contact_px
                row[_TOUCH] += touch
                if touch and a in in_view and b in in_view:
                    row[_TOUCH_PX] += min(px[a], px[b])
        return

    def _pair(self, a: int, b: int) -> np.ndarray:
        key = (a, b) if a < b else (b, a)
        row = self.pairs.get(key)
        if row is None:
            row = self.pairs[key] = np.zeros(_N_COUNTERS, np.int64)
        return row

    # ------------------------------------------------------------------ once, at the end
    def solve(self, fusion) -> Association:
        """The merges, from the fused votes (None on 2D geometry: nothing to judge)."""
        if fusion is None:
            return Association(method=self.name)
        votes = fusion.votes()
        if len(votes.n_obs) == 0:
            return Association(method=self.name)
        accepted = associate_rounds(votes, self.pairs, self.cfg, self.cam_up, self.frames_seen)
        mapping = groups_to_mapping([(e.a, e.b) for e in accepted])
        merges = []
        groups: dict[int, list[int]] = {}
        for old, new in mapping.items():
            groups.setdefault(new, [new]).append(old)
        for into, ids in sorted(groups.items()):
            ids = sorted(ids)
            links = [e for e in accepted if mapping.get(e.a, e.a) == into]
            reasons = sorted({r for e in links for r in e.reasons})
            merges.append(Merge(ids=ids, into=into, reason="+".join(reasons), evidence={
                "links": [{"ids": [e.a, e.b], "reasons": e.reasons, "round": e.round, **e.figures}
                          for e in links]}))
        return Association(mapping, merges, self.name)


# ---------------------------------------------------------------------- per-frame evidence
def frame_contacts(labels: np.ndarray, pm: PointMaps, cfg: Scene3DConfig,
                   normals: np.ndarray | None = None) -> dict[tuple[int, int], np.ndarray]:
    """Per pair of IDs that meet in this frame: (contact px, convex px, concave px) along
    their 2D boundary, counting only depth-continuous neighbouring pixels (contact), and
    among those the convexity of the surfaces one pixel further in on either side.
    ``normals``: the frame's :func:`lift3d.fuse.frame_normals`, if the caller has them."""
    from lift3d.fuse import frame_normals

    p, valid = pm.points, pm.valid
    centre = None if pm.cam_to_world is None else np.asarray(pm.cam_to_world)[:3, 3]
    normals = frame_normals(pm) if normals is None else normals
    dist = np.linalg.norm(p - (0.0 if centre is None else centre), axis=-1)
    focal = float(pm.K[0, 0]) if pm.K is not None else None
    los, his, vals = [], [], []
    for axis in (0, 1):
        lo, hi, v = _boundary(labels, p, valid, normals, dist, focal, axis, cfg)
        los.append(lo)
        his.append(hi)
        vals.append(v)
    vals = np.concatenate(vals)
    counts = pair_counts(np.concatenate(los), np.concatenate(his), [vals[:, d] for d in range(3)])
    return {k: np.array(c[1:], np.float64).astype(np.int64) for k, c in counts.items()}


def _boundary(labels, p, valid, normals, dist, focal, axis, cfg):
    """Boundary pixel pairs along ``axis`` (0: vertical, 1: horizontal neighbours): their IDs
    (a < b: two arrays) and per pair (contact, convex, concave) indicators."""
    def sl(lo, hi):
        return (slice(lo, hi), slice(None)) if axis == 0 else (slice(None), slice(lo, hi))

    n = labels.shape[axis]
    # pixels x-1 | x, x+1 | x+2: the boundary lies between x and x+1 (centre pair)
    a_in, a, b, b_in = sl(0, n - 3), sl(1, n - 2), sl(2, n - 1), sl(3, n)
    la, lb = labels[a], labels[b]
    m = (la != lb) & (la > 0) & (lb > 0) & valid[a] & valid[b]
    if not m.any():
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros((0, 3))
    gap = np.linalg.norm(p[a][m] - p[b][m], axis=-1)
    foot = dist[a][m] / focal if focal else np.full(gap.shape, np.median(gap))
    contact = gap < cfg.depth_jump * np.maximum(foot, 1e-9)
    side = (labels[a_in][m] == la[m]) & (labels[b_in][m] == lb[m]) & valid[a_in][m] & valid[b_in][m]
    pa, pb = p[a_in][m], p[b_in][m]
    na, nb = normals[a_in][m], normals[b_in][m]
    d = pa - pb
    conv = ((na - nb) * d).sum(-1) / np.maximum(np.linalg.norm(d, axis=-1), 1e-12)
    flat = (na * nb).sum(-1) > cfg.flat_dot
    judged = contact & side & (np.abs(na).sum(-1) > 0) & (np.abs(nb).sum(-1) > 0)
    convex = judged & (flat | (conv > 0))
    concave = judged & ~flat & (conv <= 0)
    lo, hi = np.minimum(la[m], lb[m]).astype(np.int64), np.maximum(la[m], lb[m]).astype(np.int64)
    return lo, hi, np.stack([contact, convex, concave], 1).astype(np.float64)


# ---------------------------------------------------------------------- the fused cloud
def voxel_winners(votes) -> tuple[np.ndarray, np.ndarray]:
    """Per voxel the ID (> 0) with the most vote weight (0 where only "unlabelled" voted) and
    the voxel's total positive vote weight."""
    from lift3d.fuse import winners

    n = len(votes.n_obs)
    pos = votes.pair_label > 0
    pg, pl, pw = votes.pair_voxel[pos], votes.pair_label[pos], votes.pair_weight[pos]
    return winners(pg, pl, pw, n)[0].astype(np.int64), np.bincount(pg, pw, n)


def voxel_graph(votes, cfg: Scene3DConfig = Scene3DConfig()) -> VoxelGraph:
    """Edges between fused voxels: each voxel's ``cfg.knn`` nearest neighbours within
    ``cfg.knn_radius`` voxels (a k-NN graph rather than grid adjacency, so that surfaces seen
    from afar, sparser than one point per voxel, stay connected), with their geometry."""
    from scipy.spatial import cKDTree

    p, n = votes.points, votes.normals
    if len(p) < 2:
        z = np.zeros(0)
        return VoxelGraph(np.zeros((0, 2), np.int64), z, z, z, z)
    k = min(cfg.knn + 1, len(p))
    tree = cKDTree(p, balanced_tree=False, compact_nodes=False)  # built once: faster so
    nn = np.empty((len(p), k - 1), np.int32)
    for s in range(0, len(p), _QUERY_CHUNK):  # float64 distances for a chunk at a time
        dist, idx = tree.query(p[s:s + _QUERY_CHUNK], k=k, workers=-1,  # every core: same
                               distance_upper_bound=cfg.knn_radius * votes.voxel)
        nn[s:s + _QUERY_CHUNK] = np.where(np.isfinite(dist), idx, -1)[:, 1:]
    c = votes.colors.astype(np.float32)
    parts = []
    for col in range(k - 1):  # one neighbour rank at a time: memory ~ voxels, not edges
        j = nn[:, col].astype(np.int64)
        i = np.flatnonzero(j >= 0)
        j = j[i]
        # each edge once: i -> j is kept when i < j, or when j does not list i (not mutual);
        # a membership test instead of sorting millions of keys
        keep = (i < j) | ~(nn[j] == i[:, None]).any(1)
        i, j = np.minimum(i, j)[keep], np.maximum(i, j)[keep]
        ni, nj = n[i], n[j]
        d = p[i] - p[j]
        known = (np.abs(ni).sum(1) > 0) & (np.abs(nj).sum(1) > 0)
        dot = np.where(known, (ni * nj).sum(1), 0.0).astype(np.float32)
        length = np.maximum(np.linalg.norm(d, axis=1), 1e-12)
        conv = (((ni - nj) * d).sum(1) / length).astype(np.float32)
        off = (np.maximum(np.abs((ni * d).sum(1)), np.abs((nj * d).sum(1))) / length).astype(np.float32)
        dcol = (np.linalg.norm(c[i] - c[j], axis=1) / np.float32(255.0 * np.sqrt(3.0))).astype(np.float32)
        parts.append((i.astype(np.int32), j.astype(np.int32), dot, conv, dcol, off))
    i, j, dot, conv, dcol, off = (np.concatenate(x) for x in zip(*parts, strict=True))
    return VoxelGraph(np.stack([i, j], 1), dot, conv, dcol, off)


def superpoints(graph: VoxelGraph, n: int, cfg: Scene3DConfig) -> np.ndarray:
    """(n,) int64 superpoint index per voxel: Felzenszwalb-Huttenlocher over the k-NN graph,
    edge weight 1 - n_i . n_j (+ colour), convex edges discounted; small segments merged."""
    w = np.clip(1.0 - graph.dot, 0.0, 2.0) + cfg.sp_colour_weight * graph.dcol
    w = np.where(graph.conv > 0, w * cfg.sp_convex_discount, w)
    w = np.where(graph.step(cfg), np.maximum(w, cfg.sp_step_weight), w)
    order = np.argsort(w, kind="stable")
    from lift3d.associate._felzenszwalb import segment_graph

    return segment_graph(graph.edges[order, 0], graph.edges[order, 1], w[order], n,
                         cfg.sp_k, cfg.sp_min_voxels)


@dataclass
class IdShape:
    """The voxels an ID won: how many, their centroid (3,), extent (voxels: 4 sigma along the
    main axis), flatness (smallest sigma / largest sigma) and the plane normal (3,) (the
    axis of least spread)."""

    n: int
    centre: np.ndarray
    extent: float
    flatness: float
    normal: np.ndarray


def id_shapes(lab: np.ndarray, points: np.ndarray, voxel: float) -> dict[int, IdShape]:
    """:class:`IdShape` per ID (> 0) of the voxel winners ``lab`` (V,) at ``points`` (V, 3)."""
    ids, inv, cnt = np.unique(lab, return_inverse=True, return_counts=True)
    inv = inv.ravel()
    origin = points.mean(0) if len(points) else np.zeros(3)
    p = points - origin
    s1 = np.stack([np.bincount(inv, p[:, d], len(ids)) for d in range(3)], 1)
    s2 = np.stack([np.bincount(inv, p[:, d] * p[:, e], len(ids))
                   for d in range(3) for e in range(3)], 1)
    mean = s1 / cnt[:, None]
    cov = s2.reshape(-1, 3, 3) / cnt[:, None, None] - mean[:, :, None] * mean[:, None, :]
    ev, vec = np.linalg.eigh(cov)  # ascending
    sd = np.sqrt(np.clip(ev, 0, None))
    return {i: IdShape(int(cnt[k]), mean[k] + origin, float(4 * sd[k, 2] / voxel),
                       float(sd[k, 0] / max(sd[k, 2], 1e-12)), vec[k, :, 0])
            for k, i in enumerate(ids.tolist()) if i > 0}


def structure_ids(shapes: dict[int, IdShape], touching: set[tuple[int, int]], voxel: float,
                  cfg: Scene3DConfig) -> set[int]:
    """IDs that are room structure: large and planar (floor, walls), or planar pieces that
    touch such a one in 3D and lie in its plane (a shadow on the floor, a strip of wall the
    segmenter cut off). ``touching``: pairs (a < b) of IDs adjacent in the voxel grid."""
    big = {i: s for i, s in shapes.items() if s.n >= cfg.min_voxels}
    core = {i for i, s in big.items()
            if s.extent > cfg.structure_extent and s.flatness < cfg.structure_flatness}
    out = set(core)
    for i, s in big.items():
        if i in core or s.flatness >= cfg.piece_flatness:
            continue
        for j in core:
            n, c = shapes[j].normal, shapes[j].centre
            if ((min(i, j), max(i, j)) in touching and abs(float(n @ s.normal)) > cfg.plane_cos
                    and abs(float(n @ (s.centre - c))) < cfg.plane_dist * voxel):
                out.add(i)
                break
    return out


def associate_rounds(votes, pairs: dict, cfg: Scene3DConfig, cam_up: np.ndarray | None = None,
                     frames_seen: dict[int, int] | None = None) -> list[PairEvidence]:
    """The accepted links (pairs of IDs, each a group's smallest ID at the time) over up to
    ``cfg.rounds`` rounds: after each, the rules judge again with the merged groups as IDs
    (two parts that each held 40 % of a superpoint hold 80 % together). ``cam_up``: the
    cameras' (summed) up direction, world frame; None: no gravity, no ``attached`` rule.
    ``frames_seen``: {ID: frames that saw it}; None: no ``absorbed`` rule. Fragments are
    absorbed once, after the rounds, into the final groups: a fragment on the seam of two
    objects would otherwise chain them (room seed 2: a chair joined the table)."""
    fixed = fixed_evidence(votes, cfg)
    links: list[PairEvidence] = []
    mapping: dict[int, int] = {}
    rounds = 0
    for rounds in range(cfg.rounds):
        ev = judge_pairs(votes, _merge_pairs(pairs, mapping), cfg, fixed, mapping, cam_up)
        new = [e for e in ev.values() if e.reasons and not e.vetoes]
        if not new:
            break
        for e in new:
            e.round = rounds
        links += new
        mapping = groups_to_mapping([(e.a, e.b) for e in links])
    else:
        rounds += 1
    if frames_seen is not None and cfg.absorb_part <= 1:
        ev = judge_pairs(votes, _merge_pairs(pairs, mapping), cfg, fixed, mapping, cam_up,
                         _merge_seen(frames_seen, mapping))
        for e in ev.values():
            if "absorbed" in e.reasons and not e.vetoes:
                e.round = rounds
                e.reasons = ["absorbed"]  # the other rules had their rounds
                links.append(e)
    return links


def _merge_pairs(pairs: dict, mapping: dict[int, int]) -> dict:
    """The per-frame pair counters with IDs replaced by their groups (rows summed)."""
    if not mapping:
        return pairs
    out: dict = {}
    for (a, b), row in pairs.items():
        a, b = mapping.get(a, a), mapping.get(b, b)
        if a != b:
            key = (min(a, b), max(a, b))
            out[key] = out.get(key, 0) + row
    return out


def _merge_seen(seen: dict[int, int] | None, mapping: dict[int, int]) -> dict[int, int] | None:
    """Frames that saw each group: at most the sum of its members' (an upper bound)."""
    if seen is None or not mapping:
        return seen
    out: dict[int, int] = {}
    for i, n in seen.items():
        g = mapping.get(i, i)
        out[g] = out.get(g, 0) + n
    return out


def judge_pairs(votes, pairs: dict, cfg: Scene3DConfig, fixed: FixedEvidence | None = None,
                mapping: dict[int, int] | None = None, cam_up: np.ndarray | None = None,
                frames_seen: dict[int, int] | None = None
                ) -> dict[tuple[int, int], PairEvidence]:
    """Every pair of IDs some rule has an opinion on, with the rules' figures, the reasons to
    merge and the vetoes; IDs taken through ``mapping`` (the groups merged so far).
    ``fixed``: :func:`fixed_evidence` of ``votes`` (built here when None). ``frames_seen``:
    {ID: frames that saw it}, for the ``absorbed`` rule (None: off)."""
    from lift3d.associate.base import apply_mapping

    mapping = mapping or {}
    fixed = fixed_evidence(votes, cfg) if fixed is None else fixed
    graph, sp, sp_shapes = fixed.graph, fixed.sp, fixed.sp_shapes
    lab = apply_mapping(fixed.winners, mapping).astype(np.int64) if mapping else fixed.winners
    shapes = id_shapes(lab, votes.points, votes.voxel)
    big = {i for i, s in shapes.items() if s.n >= cfg.min_voxels}
    ev: dict[tuple[int, int], PairEvidence] = {}

    def get(a: int, b: int) -> PairEvidence:
        key = (a, b) if a < b else (b, a)
        if key not in ev:
            ev[key] = PairEvidence(*key)
        return ev[key]

    # the 3D seams between IDs, and which IDs are room structure
    la, lb = lab[graph.edges[:, 0]], lab[graph.edges[:, 1]]
    cross = (la != lb) & (la > 0) & (lb > 0)
    lo, hi = np.minimum(la, lb)[cross], np.maximum(la, lb)[cross]
    step = graph.step(cfg, cross)  # parallel surfaces apart: neither flat nor convex
    convex = ~step & ((graph.dot[cross] > cfg.flat_dot) | (graph.conv[cross] > 0))
    pk, pinv = np.unique((lo << 32) | hi, return_inverse=True)
    n_edges = np.bincount(pinv.ravel(), minlength=len(pk))
    n_convex = np.bincount(pinv.ravel(), convex.astype(np.float64), len(pk))
    # the two faces of one thin part: normals opposed and facing away from each other
    opposed = (graph.dot[cross] < -cfg.thin_dot) & (graph.conv[cross] > 0)
    n_opposed = np.bincount(pinv.ravel(), opposed.astype(np.float64), len(pk))
    touching = {(k >> 32, k & 0xFFFFFFFF) for k, c in zip(pk.tolist(), n_edges.tolist(), strict=True)
                if c >= cfg.min_boundary}
    structure = structure_ids(shapes, touching, votes.voxel, cfg)
    up = gravity(lab, votes, shapes, structure, cam_up, cfg) if cfg.attach else None
    hanging = holding = np.zeros(len(pk), bool)
    if up is not None:
        sides = _seam_sides(lab, votes, graph, cross, up, cfg)
        hanging = attachments(sides, pinv, len(pk), cfg)
        if cfg.held_min_edges > 0:
            holding = holdings(sides, graph, cross, pinv, len(pk), cfg)

    # superpoints: shared homes
    pos = votes.pair_label > 0
    s_of, l_of, w_of = sp[votes.pair_voxel[pos]], votes.pair_label[pos], votes.pair_weight[pos]
    if mapping:
        l_of = apply_mapping(l_of, mapping).astype(np.int64)
    key, inv = np.unique(s_of * (int(l_of.max(initial=0)) + 1) + l_of, return_inverse=True)
    base = int(l_of.max(initial=0)) + 1
    ws = np.bincount(inv.ravel(), w_of, len(key))
    ks, kl = key // base, key % base
    id_total = np.bincount(kl, ws)
    sp_total = np.bincount(ks, ws)
    share = ws / id_total[kl]
    part = ws / sp_total[ks]
    home = (share >= cfg.sp_share) & (part >= cfg.sp_min_part)
    hs, hl, hsh = ks[home], kl[home], share[home]
    o = np.argsort(hs, kind="stable")
    hs, hl, hsh = hs[o], hl[o], hsh[o]
    # runs of one superpoint (none when no ID has a home: e.g. random-weight SAM's masks)
    starts = np.flatnonzero(np.r_[True, hs[1:] != hs[:-1]]) if len(hs) else np.zeros(0, np.int64)
    ends = np.r_[starts[1:], len(hs)] if len(hs) else starts
    # a superpoint as large as a room's wall is no evidence that what lies in it is one
    # object; it still joins pieces of structure (floor, walls)
    absorbed: set[tuple[int, int]] = set()
    for s0, s1 in zip(starts.tolist(), ends.tolist(), strict=True):
        allowed = structure if sp_shapes[int(hs[s0]) + 1].extent > cfg.sp_max_extent else big
        members = [(int(hl[k]), float(hsh[k])) for k in range(s0, s1) if int(hl[k]) in allowed]
        for x in range(len(members)):
            for y in range(x + 1, len(members)):
                e = get(members[x][0], members[y][0])
                e.figures["superpoint_share"] = [round(members[x][1], 3), round(members[y][1], 3)]
                e.reasons.append("superpoints")

    # one surface labelled by two IDs in turn: most of each one's votes lie on voxels the
    # other voted on too
    if cfg.shared_share <= 1 and len(l_of):
        for (a, b), sh in _shared_surfaces(votes.pair_voxel[pos], l_of, w_of, id_total,
                                           cfg.shared_share).items():
            e = get(a, b)
            e.figures["shared_share"] = sh
            e.reasons.append("shared")

    # fragments: short-lived IDs whose surface another ID won, or that live in a superpoint
    # one ID holds; each joins one ID, the first way found
    if len(ks) and cfg.absorb_part <= 1 and frames_seen is not None:
        into: dict[int, tuple[int, str, float]] = {}
        lv = lab[votes.pair_voxel[pos]]
        other = (lv != l_of) & (lv > 0)
        ck, cinv = np.unique(l_of[other] * base + lv[other], return_inverse=True)
        cshare = np.bincount(cinv.ravel(), w_of[other], len(ck)) / id_total[ck // base]
        for small, won, sh in zip((ck // base).tolist(), (ck % base).tolist(), cshare.tolist(),
                                  strict=True):
            if (sh >= cfg.absorb_cover and frames_seen.get(small, 0) <= cfg.absorb_frames
                    and frames_seen.get(won, 0) > frames_seen.get(small, 0)
                    and (won in big or won in structure) and sh > into.get(small, (0, "", 0))[2]):
                into[small] = (won, "absorbed_cover", sh)
        o = np.lexsort((kl, -ws, ks))
        top = o[np.r_[True, ks[o][1:] != ks[o][:-1]]]  # per superpoint its largest holder
        holder = np.zeros(int(ks.max()) + 1, np.int64)
        holder_w = np.zeros(int(ks.max()) + 1)
        holder[ks[top]], holder_w[ks[top]] = kl[top], ws[top]
        frag = ((share >= cfg.sp_share) & (kl != holder[ks])
                & (holder_w[ks] >= cfg.absorb_part * sp_total[ks])
                & (id_total[kl] <= cfg.absorb_ratio * holder_w[ks]))
        for s_, small, sh in zip(ks[frag].tolist(), kl[frag].tolist(), share[frag].tolist(),
                                 strict=True):
            held = int(holder[s_])
            room = sp_shapes[s_ + 1].extent > cfg.sp_max_extent
            if (small not in into and frames_seen.get(small, 0) <= cfg.absorb_frames
                    and held in (structure if room else big)):
                into[small] = (held, "absorbed_share", sh)
        for small, (held, figure, sh) in sorted(into.items()):
            e = get(small, held)
            e.figures[figure] = round(sh, 3)
            e.reasons.append("absorbed")
            absorbed.add((min(small, held), max(small, held)))

    # 3D boundary convexity, and parts hanging from another's underside
    pos_of = {k: x for x, k in enumerate(pk.tolist())}
    for k, c, nc in zip(pk.tolist(), n_edges.tolist(), n_convex.tolist(), strict=True):
        a, b = k >> 32, k & 0xFFFFFFFF
        if a not in big or b not in big:
            continue
        need = max(cfg.min_boundary, cfg.min_boundary_rel * np.sqrt(min(shapes[a].n, shapes[b].n)))
        if c < need:
            continue
        e = get(a, b)
        e.figures["boundary_edges"] = int(c)
        e.figures["convex_share"] = round(nc / c, 3)
        no = float(n_opposed[pos_of[k]])
        e.figures["opposed_share"] = round(no / c, 3)
        e.figures["convex_3d_ok"] = nc / c >= cfg.convex_share
        if (max(shapes[a].extent, shapes[b].extent) > cfg.room_extent
                and not (a in structure and b in structure)):
            continue  # a room-sized piece (a corner of two walls) is no part of furniture
        if nc / c >= min(cfg.convex_share, cfg.convex_share_seen):
            e.reasons.append("convex")
        if hanging[pos_of[k]]:
            e.reasons.append("attached")
        if holding[pos_of[k]]:
            e.reasons.append("held")
        if cfg.thin_share <= 1 and no >= cfg.min_boundary and no / c >= cfg.thin_share:
            e.reasons.append("thin")

    # vetoes: structure; and for the convexity rule, what the views say about the seam
    for (a, b), e in ev.items():
        if (a in structure) != (b in structure) and "shared" not in e.reasons and not (
                (a, b) in absorbed and (a not in big or b not in big)):
            e.vetoes.append("structure")  # a fragment too small to judge may join structure
        row = pairs.get((a, b), np.zeros(_N_COUNTERS, np.int64))
        e.figures["covisible"] = int(row[_COVIS])
        e.figures["touching"] = int(row[_TOUCH])
        e.figures["touching_px_share"] = round(float(row[_TOUCH_PX]) / max(int(row[_COVIS_PX]), 1), 3)
        j = int(row[_CONVEX] + row[_CONCAVE])
        share2d = float(row[_CONVEX]) / j if j else 0.0
        e.figures["convex_share_2d"] = round(share2d, 3)
        ok3d = e.figures.pop("convex_3d_ok", False)
        if ("superpoints" in e.reasons
                and e.figures.get("convex_share", 1.0) < cfg.sp_concave_veto):
            # one superpoint, yet where the two IDs meet the seam is mostly concave: two
            # objects whose flat faces line up (boxes side by side against a wall)
            e.reasons.remove("superpoints")
        for rule in ("superpoints", "absorbed"):
            if (rule in e.reasons and row[_COVIS] >= cfg.sp_min_covisible
                    and not _agree(row, cfg.sp_consensus, cfg)):
                # seen together often, yet hardly ever touching: two things in one superpoint
                # (a superpoint that grew over a wall of cupboards), not one object
                e.reasons.remove(rule)
        if "convex" in e.reasons:
            # a seam judged convex in 3D is checked in the views: both in view and touching
            # in most views that see both (view consensus), and convex there too; IDs never
            # seen together (one died, the other was born later) need a clearer 3D seam
            if row[_COVIS] == 0:
                keep = cfg.convex_unseen and e.figures["convex_share"] >= cfg.convex_share_unseen
            else:
                seen = row[_TOUCH] >= 1 and _agree(row, cfg.consensus, cfg)
                keep = seen and ((ok3d and share2d >= cfg.convex_share_2d) or (
                    e.figures["convex_share"] >= cfg.convex_share_seen
                    and share2d >= cfg.convex_share_2d_sharp))
            if not keep:
                e.reasons.remove("convex")
        for rule, least in (("attached", cfg.min_covisible), ("held", cfg.min_covisible),
                            ("thin", cfg.thin_min_covisible)):
            if (rule in e.reasons and row[_COVIS] >= least
                    and not _agree(row, cfg.consensus, cfg)):
                # parts of one object touch in most views that see both
                e.reasons.remove(rule)
    return ev


def _shared_surfaces(voxel: np.ndarray, label: np.ndarray, weight: np.ndarray,
                     id_total: np.ndarray, least: float) -> dict[tuple[int, int], list[float]]:
    """Pairs of IDs (a < b) each of which has at least ``least`` of its vote weight
    (``id_total``, by ID) on voxels the other voted on too, with those two shares; from the
    votes' (voxel, label, weight) rows."""
    base = int(label.max(initial=0)) + 1
    key, inv = np.unique(voxel * base + label, return_inverse=True)
    w = np.bincount(inv.ravel(), weight, len(key))
    v, lab = key // base, key % base  # sorted by voxel, then label
    ka, kb, wa, wb = [], [], [], []
    for d in range(1, len(v)):
        same = v[d:] == v[:-d]
        if not same.any():
            break
        i = np.flatnonzero(same)
        ka.append(lab[i])
        kb.append(lab[i + d])
        wa.append(w[i])
        wb.append(w[i + d])
    if not ka:
        return {}
    out = {}
    for (a, b), (_, sa, sb) in pair_counts(np.concatenate(ka), np.concatenate(kb),
                                           [np.concatenate(wa), np.concatenate(wb)]).items():
        fa, fb = sa / max(id_total[a], 1e-12), sb / max(id_total[b], 1e-12)
        if fa >= least and fb >= least:
            out[(a, b)] = [round(fa, 3), round(fb, 3)]
    return out


def _agree(row: np.ndarray, share: float, cfg: Scene3DConfig) -> bool:
    """View consensus: two IDs touch in at least ``share`` of the views that see both, each
    view weighted by the smaller ID's pixels in it (``cfg.consensus_by_pixels``; a view that
    shows a sliver of one of them hardly sees their seam) or counted once."""
    by_views = bool(row[_TOUCH] >= share * row[_COVIS])
    if cfg.consensus_by_pixels:
        return by_views or bool(row[_TOUCH_PX] >= share * row[_COVIS_PX])
    return by_views


def gravity(lab: np.ndarray, votes, shapes: dict[int, IdShape], structure: set[int],
            cam_up: np.ndarray | None, cfg: Scene3DConfig) -> np.ndarray | None:
    """Unit up vector: the normal of the largest structure ID whose plane lies within
    acos(``cfg.gravity_cos``) of the cameras' average up and whose voxels face up (a floor,
    not a ceiling: voxel normals face the cameras); else the cameras' average up; None
    without cameras."""
    if cam_up is None or not np.linalg.norm(cam_up) > 0:
        return None
    cam = np.asarray(cam_up, np.float64) / np.linalg.norm(cam_up)
    best, size = cam, 0
    for i in sorted(structure):
        s = shapes[i]
        n = s.normal * np.sign(float(s.normal @ votes.normals[lab == i].sum(0)) or 1.0)
        if float(n @ cam) >= cfg.gravity_cos and s.n > size:
            best, size = n / np.linalg.norm(n), s.n
    return best


@dataclass
class _SeamSides:
    """The two ends of each 3D seam edge (the graph's edges between two IDs): ``lo`` / ``hi``
    (E,) the voxel on the pair's smaller / larger ID's side; per voxel (V,) bool whether its
    normal is known and faces ``up``, ``down`` (within acos(``attach_cos``) of up, of -up) or
    sideways (``side``: neither); ``height`` (V,) along up, in voxels."""

    lo: np.ndarray
    hi: np.ndarray
    known: np.ndarray
    up: np.ndarray
    down: np.ndarray
    side: np.ndarray
    height: np.ndarray


def _seam_sides(lab: np.ndarray, votes, graph: VoxelGraph, cross: np.ndarray,
                up: np.ndarray, cfg: Scene3DConfig) -> _SeamSides:
    """:class:`_SeamSides` of the seam edges ``cross`` (bool over the graph's edges) between
    the IDs ``lab`` (V,) of the voxels of ``votes``, with ``up`` the unit up vector."""
    e = graph.edges[cross]
    la, lb = lab[e[:, 0]], lab[e[:, 1]]
    nu = votes.normals @ up
    known = np.abs(votes.normals).sum(1) > 0
    return _SeamSides(
        lo=np.where(la < lb, e[:, 0], e[:, 1]), hi=np.where(la < lb, e[:, 1], e[:, 0]),
        known=known, up=known & (nu > cfg.attach_cos), down=known & (nu < -cfg.attach_cos),
        side=known & (np.abs(nu) <= cfg.attach_cos), height=votes.points @ up / votes.voxel)


def holdings(sides: _SeamSides, graph: VoxelGraph, cross: np.ndarray, pinv: np.ndarray,
             n_pairs: int, cfg: Scene3DConfig) -> np.ndarray:
    """(n_pairs,) bool per pair of IDs across the 3D boundary (``sides``: its edges' ends,
    ``cross``: which of the graph's edges they are, ``pinv``: each one's pair): one ID (a board) ends against
    the other's side-facing surface (a panel) with concave creases both above it (its
    upward face meets the panel) and below it (its downward face meets the panel): a shelf's
    board between its sides or against its back, a seat against a chair's back. Nothing
    rests on a vertical surface, so a part held there from above and below belongs to it;
    an object standing on a support shows no downward face at the panel (two boxes side by
    side, a box on a board against the back panel)."""
    concave = (graph.conv[cross] < 0) & (graph.dot[cross] <= cfg.flat_dot)
    inv = pinv.ravel()

    def count(m):
        return np.bincount(inv, m.astype(np.float64), n_pairs)

    def board_in_panel(board, panel):
        above = count(concave & sides.up[board] & sides.side[panel])
        below = count(concave & sides.down[board] & sides.side[panel])
        return (above >= cfg.held_min_edges) & (below >= cfg.held_min_edges)

    return board_in_panel(sides.lo, sides.hi) | board_in_panel(sides.hi, sides.lo)


def attachments(sides: _SeamSides, pinv: np.ndarray, n_pairs: int, cfg: Scene3DConfig
                ) -> np.ndarray:
    """(n_pairs,) bool per pair of IDs across the 3D boundary (``sides``: its edges' ends,
    ``pinv``: each one's pair): one ID's seam faces down and the other's meets it from below
    with its side (see :class:`Scene3DConfig`, ``attach_*``)."""
    h = sides.height
    inv = pinv.ravel()

    def side_stats(v):
        kn = np.bincount(inv, sides.known[v].astype(np.float64), n_pairs)
        down = np.bincount(inv, sides.down[v].astype(np.float64), n_pairs)
        side = np.bincount(inv, sides.side[v].astype(np.float64), n_pairs)
        return down / np.maximum(kn, 1), side / np.maximum(kn, 1), kn > 0

    v_lo, v_hi = sides.lo, sides.hi
    d_lo, s_lo, k_lo = side_stats(v_lo)
    d_hi, s_hi, k_hi = side_stats(v_hi)
    dz = np.bincount(inv, h[v_lo] - h[v_hi], n_pairs) / np.maximum(np.bincount(inv, None, n_pairs), 1)
    lo_hangs_hi = (d_hi >= cfg.attach_down) & (s_lo >= cfg.attach_side) & (-dz >= cfg.attach_below)
    hi_hangs_lo = (d_lo >= cfg.attach_down) & (s_hi >= cfg.attach_side) & (dz >= cfg.attach_below)
    return (lo_hangs_hi | hi_hangs_lo) & k_lo & k_hi
