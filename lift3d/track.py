"""The tracker: per-frame masks that keep their IDs across frames.

The method (one step per frame t > 0):

1. every live ID's pixels in frame t-1 are carried to frame t through the geometry's dense
   matches (only matches above a confidence threshold);
2. a few representative points per ID are chosen among the carried pixels (K-Means on their
   coordinates, each centre snapped to the nearest carried pixel so it lies on the object) and
   given to the segmenter as point prompts, all IDs in one batched call;
3. prompted masks that disagree with the carried pixels are rejected; overlapping masks are
   filtered (a mask mostly covered by a better-ranked one is dropped, else it keeps its
   unclaimed pixels);
4. regions left unmasked above a minimum area are re-seeded from the segmenter's automatic
   masks with new IDs, so the mask count stays in equilibrium; on 3D geometry a smaller
   mask re-seeds too when the segmenter marks it ``isolated`` (a small whole object) and it
   is almost wholly unmasked, and a mask with fewer than ``min_carried`` valid 3D points in
   its unmasked part (a depth hole) does not re-seed: nothing could carry its ID on.

Beyond the method: an ID whose mask leaves the view and comes back gets its old ID back. Each
ID keeps a memory of the 3D voxels it covered; a re-seeded mask whose 3D points fall mostly
in the memory of an ID absent from the frame takes that ID instead of a new one (or of an ID
present, an unmasked part of it; a small whole object only from the voxels that ID covered in
two frames or more, its firm memory, so that one frame's merge is not carried on).

The tracker's state is a plain dataclass it is handed and returns, so a run can be saved after
every frame and resumed (:func:`save_state`, :func:`load_state`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lift3d.cameras import camera_depth
from lift3d.geometry.voxels import find_sorted, scene_scale, voxel_keys
from lift3d.segment.base import Mask, Segmenter, depth_kwargs
from lift3d.types import Geometry, PointMaps

__all__ = ["TrackConfig", "TrackState", "independent_labels", "load_state", "save_state",
           "scene_scale", "start", "track_frame", "track_sequence", "voxel_keys"]


@dataclass(frozen=True)
class TrackConfig:
    """Every threshold of the tracker. Areas are fractions of the frame's pixel count."""

    min_match_conf: float = 0.3
    """Matches below this confidence are not used to carry labels."""
    n_prompt_points: int = 5
    """K-Means clusters (= positive point prompts) per ID."""
    min_carried: int = 20
    """An ID needs at least this many carried pixels to be prompted in the next frame."""
    min_support: float = 0.5
    """A prompted mask must contain at least this share of the ID's carried pixels."""
    max_growth: float = 3.0
    """A prompted mask larger than this many times the carried pixel count is a leak: rejected."""
    warp_fallback: bool = True
    """When the prompt is rejected, keep the ID on its carried pixels (closed), if enough."""
    overlap_thr: float = 0.5
    """A mask that has lost more than this share of its area to better masks is dropped."""
    min_mask_area: float = 0.0005
    """Masks (prompted or re-seeded) smaller than this are dropped."""
    reseed_min_area: float = 0.005
    """Unmasked areas re-seeded with new IDs must be at least this large (2D geometry)..."""
    reseed_min_area_3d: float = 0.003
    """... and on 3D geometry, where a re-seeded mask is first matched against the IDs' 3D
    memory and the association later joins 3D fragments, so small masks are cheap: 0.3 % is
    230 pixels at 320x240, a 15 cm box across a room. At 0.5 % most small objects on the
    tables and shelves of ``make-scene --preset room`` were never masked; on 7-Scenes
    redkitchen (50 frames) 0.5 / 0.3 / 0.2 % leave 7.2 / 3.9 / 1.8 % of pixels unlabelled
    with 21.7 / 28.6 / 33.6 IDs per frame and H 0.749 / 0.809 / 0.773. On DAVIS, with flow,
    0.2 % left more fragments than tracklet linking joins (breakdance ID survival 0.67)."""
    reseed_isolated_area: float = 0.001
    """On 3D geometry, a mask the segmenter marks ``isolated`` (a small whole object, cut off
    from its surroundings by depth jumps and concave creases; the geometric segmenter's
    ``apart_*`` settings) re-seeds below the re-seeding area, down to this (77 pixels at
    320x240),..."""
    reseed_isolated_free: float = 0.9
    """...when at least this share of it is unmasked: a whole object nobody tracks, not a
    strip left along a tracked mask. Such a mask never takes the ID of an object present in
    the frame: the table that once held seed 1's cone took it back in every frame through
    its 3D memory. Room preset seeds 0-2, associated sequence IoU / AP50 / H: 0.503 / 0.340
    / 0.859 without isolated masks; 0.584 / 0.397 / 0.860 re-seeding them down to 0.05 %
    (no behind rule in the segmenter); 0.593 / 0.405 / 0.852 down to 0.1 %, 0.589 / 0.388
    / 0.852 at 0.15 %. 7-Scenes redkitchen, stride 4, first 15 frames, IDs in all / H:
    192 / 0.810 without; 247 / 0.800 at 0.05 % (50 frames: 705 / 0.797, 469 / 0.809
    without); with the behind rule 225 / 0.808 at 0.05 %, 208 / 0.808 at 0.1 %, 201 / 0.808
    at 0.15 %, and 193 / 0.808 with the segmenter's isolated regions but no re-seeding
    below 0.3 %."""
    isolated_firm_area: float = 0.01
    """A re-seeded ``isolated`` mask up to this share of the frame takes the ID of an object
    present in the frame only from its firm memory (voxels it covered in two frames or more):
    once the segmenter merged seed 1's cylinder into the table in one frame, the table's
    memory held it and took it back in every later frame that had it apart."""
    reseed_min_free: float = 0.7
    """An automatic mask re-seeds only if at least this share of it is unmasked..."""
    reseed_large_area: float = 0.02
    """...or if its unmasked part is at least this large (a big hole left by the prompts)."""
    reid: bool = True
    """Give re-entering objects their old ID back (needs 3D geometry)."""
    reid_voxel_rel: float = 0.015
    """Voxel size of the 3D ID memory, as a fraction of the scene scale (median depth)."""
    reid_min_overlap: float = 0.6
    """Share of a re-seeded mask's voxels that must lie in an ID's memory to reuse the ID."""
    reid_present: bool = True
    """Re-seeded masks may also extend an ID present in the frame (an unmasked part of a
    known object), not only revive absent ones."""
    max_kmeans_points: int = 1000
    """K-Means runs on at most this many carried pixels (an even subsample)."""
    memory_stride: int = 2
    """Pixel stride when adding a frame's labelled points to the 3D memory."""
    seed: int = 0
    """Random state of K-Means (results are deterministic for a seed)."""


@dataclass
class TrackState:
    """What the tracker carries from one frame to the next.

    frame: index of the last frame processed (-1 before the first).
    labels: (H, W) int32 ID map of that frame.
    next_id: the next unused ID.
    memory: {id: sorted unique int64 voxel keys} of the 3D points each ID covered.
    firm: {id: the keys of ``memory[id]`` the ID covered in at least two frames}: what one
    frame's mistake (an object merged into its support for a frame) cannot put there.
    voxel: voxel size of the memory in scene units (0 = no 3D memory).
    """

    frame: int = -1
    labels: np.ndarray | None = None
    next_id: int = 1
    memory: dict[int, np.ndarray] = field(default_factory=dict)
    firm: dict[int, np.ndarray] = field(default_factory=dict)
    voxel: float = 0.0


# ----------------------------------------------------------------------------- overlaps


def claim_masks(
    masks: list[np.ndarray], ids: list[int], shape: tuple[int, int], overlap_thr: float,
    min_area: int, labels: np.ndarray | None = None,
) -> np.ndarray:
    """Paint masks in the given order; each keeps only pixels not yet claimed.

    A mask that would keep less than ``1 - overlap_thr`` of its area, or fewer than
    ``min_area`` pixels, is dropped (it duplicates a better mask). ``labels`` (H, W) int32,
    if given, holds pixels already claimed (non-zero) and is updated in place.
    Returns the (H, W) int32 ID map.
    """
    out = np.zeros(shape, np.int32) if labels is None else labels
    for m, i in zip(masks, ids):
        area = int(m.sum())
        if area == 0:
            continue
        free = m & (out == 0)
        kept = int(free.sum())
        if kept < max(min_area, 1) or kept < (1.0 - overlap_thr) * area:
            continue
        out[free] = i
    return out


def init_labels(
    image: np.ndarray, segmenter: Segmenter, cfg: TrackConfig, first_id: int = 1,
    pointmaps: PointMaps | None = None,
) -> tuple[np.ndarray, int]:
    """Label one frame on its own from the segmenter's automatic masks.

    Smaller masks claim pixels first, so parts and small objects survive next to large
    masks. Returns the (H, W) int32 ID map (IDs from ``first_id``) and the next unused ID.
    ``pointmaps``: the frame's geometry; its depth reaches segmenters that read depth.
    """
    h, w = image.shape[:2]
    masks = segmenter.auto_masks(image, **frame_depth_kwargs(segmenter, pointmaps))
    order = sorted(range(len(masks)), key=lambda k: masks[k].area)
    segs = [masks[k].segmentation for k in order]
    ids = list(range(first_id, first_id + len(segs)))
    labels = claim_masks(segs, ids, (h, w), cfg.overlap_thr, int(cfg.min_mask_area * h * w))
    return _compact(labels, first_id)


def frame_depth_kwargs(segmenter: Segmenter, pm: PointMaps | None) -> dict:
    """The depth keywords (:func:`~lift3d.segment.base.depth_kwargs`) of a frame's geometry for
    ``segmenter``: the sensor depth, else the camera z of the frame's world points (MASt3R);
    ``{}`` for segmenters that ignore depth or frames without 3D geometry."""
    if pm is None or not getattr(segmenter, "uses_depth", False):
        return {}
    depth = pm.depth
    if depth is None and pm.points is not None and pm.cam_to_world is not None:
        depth = camera_depth(pm.points, pm.valid, pm.cam_to_world)
    return depth_kwargs(segmenter, depth, pm.K)


def _compact(labels: np.ndarray, first_id: int) -> tuple[np.ndarray, int]:
    """Renumber the IDs present to first_id, first_id+1, ... in order of appearance."""
    present = np.unique(labels)
    present = present[present > 0]
    lut = np.zeros(int(labels.max()) + 1 if labels.size else 1, np.int32)
    lut[present] = np.arange(first_id, first_id + len(present), dtype=np.int32)
    return lut[labels], first_id + len(present)


# ----------------------------------------------------------------------------- prompts


def carry_labels(
    prev_labels: np.ndarray, geometry: Geometry, i: int, j: int, cfg: TrackConfig
) -> dict[int, np.ndarray]:
    """Carry every ID of frame ``i`` to frame ``j`` through the matches.

    Returns {id: (N, 2) int32 pixel coordinates (x, y) in frame j}, for IDs with at least
    ``cfg.min_carried`` confident matches.
    """
    m = geometry.matches(i, j)
    keep = m.conf >= cfg.min_match_conf
    xy_i, xy_j = m.xy_i[keep], m.xy_j[keep]
    ids = prev_labels[xy_i[:, 1], xy_i[:, 0]]
    lab = ids > 0
    ids, xy_j = ids[lab], xy_j[lab]
    order = np.argsort(ids, kind="stable")
    ids, xy_j = ids[order], xy_j[order]
    uniq, start, count = np.unique(ids, return_index=True, return_counts=True)
    return {
        int(k): xy_j[s : s + c]
        for k, s, c in zip(uniq, start, count)
        if c >= cfg.min_carried
    }


def representative_points(xy: np.ndarray, k: int, seed: int, max_points: int = 1000) -> np.ndarray:
    """K-Means on pixel coordinates; each centre snapped to its nearest member pixel.

    xy: (N, 2) int pixel coordinates. Returns (min(k, distinct), 2) float32 pixel coordinates
    with pixel centres at integer + 0.5 (the Segmenter prompt convention).
    """
    from sklearn.cluster import KMeans
    from threadpoolctl import threadpool_limits

    pts = np.unique(xy, axis=0).astype(np.float32)
    if len(pts) > max_points:
        pts = pts[np.linspace(0, len(pts) - 1, max_points).astype(np.int64)]
    k = min(k, len(pts))
    if k <= 1:
        centre = pts.mean(0, keepdims=True)
        chosen = pts[np.argmin(((pts - centre) ** 2).sum(1))][None]
        return chosen + 0.5
    # One thread: tiny problems, and OpenMP's spinning workers make them 40x slower on a
    # loaded machine (measured: 0.27 s vs 7 ms per fit with 10 busy processes on 2 cores).
    with threadpool_limits(1):
        km = KMeans(n_clusters=k, n_init=1, random_state=seed).fit(pts)
    d = ((pts[:, None, :] - km.cluster_centers_[None].astype(np.float32)) ** 2).sum(-1)
    chosen = pts[np.argmin(d, axis=0)]
    return np.unique(chosen, axis=0) + 0.5


def prompt_ids(
    image: np.ndarray, carried: dict[int, np.ndarray], segmenter: Segmenter, cfg: TrackConfig,
    depth_kw: dict | None = None,
) -> tuple[list[int], list[np.ndarray], list[float]]:
    """Prompt the segmenter once for all carried IDs and keep the masks that agree.

    Returns (ids, masks (H, W) bool, ranks) of accepted masks, ranked by
    score x support (the share of carried pixels the mask covers). ``depth_kw``: the frame's
    :func:`frame_depth_kwargs`, for segmenters that read depth.
    """
    if not carried:
        return [], [], []
    ids = sorted(carried)
    prompts = [
        representative_points(carried[i], cfg.n_prompt_points, cfg.seed, cfg.max_kmeans_points)
        for i in ids
    ]
    n = max(len(p) for p in prompts)
    points = np.zeros((len(ids), n, 2), np.float32)
    point_labels = np.full((len(ids), n), -1, np.int32)
    for b, p in enumerate(prompts):
        points[b, : len(p)] = p
        point_labels[b, : len(p)] = 1
    masks, scores = segmenter.prompt(image, points, point_labels, **(depth_kw or {}))
    out_ids, out_masks, ranks = [], [], []
    for b, i in enumerate(ids):
        xy = carried[i]
        mask = masks[b]
        support = float(mask[xy[:, 1], xy[:, 0]].mean())
        area = int(mask.sum())
        if support >= cfg.min_support and area <= cfg.max_growth * len(xy):
            out_ids.append(i)
            out_masks.append(mask)
            ranks.append(float(scores[b]) * support)
        elif cfg.warp_fallback:
            warped = _warped_mask(xy, image.shape[:2])
            out_ids.append(i)
            out_masks.append(warped)
            ranks.append(0.0)  # after every accepted prompt
    return out_ids, out_masks, ranks


def _warped_mask(xy: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """The carried pixels as a mask, closed to fill the holes between matches."""
    import cv2

    m = np.zeros(hw, np.uint8)
    m[xy[:, 1], xy[:, 0]] = 1
    m = cv2.morphologyEx(m, cv2.MORPH_CLOSE, np.ones((3, 3), np.uint8))
    return m.astype(bool)


# ----------------------------------------------------------------------------- 3D memory


def update_memory(
    state: TrackState, labels: np.ndarray, points: np.ndarray, valid: np.ndarray, stride: int
) -> None:
    """Add each ID's valid 3D points of this frame to its voxel memory (in place); voxels
    it had already make its firm memory."""
    lab = labels[::stride, ::stride]
    sel = (lab > 0) & valid[::stride, ::stride]
    ids = lab[sel]
    pts = points[::stride, ::stride][sel]
    for i in np.unique(ids):
        keys = voxel_keys(pts[ids == i], state.voxel)
        old = state.memory.get(int(i))
        if old is None:
            state.memory[int(i)] = keys
            continue
        again = np.intersect1d(old, keys, assume_unique=True)
        if len(again):
            firm = state.firm.get(int(i))
            state.firm[int(i)] = again if firm is None else np.union1d(firm, again)
        state.memory[int(i)] = np.union1d(old, keys)


def reidentify(
    mask_points: np.ndarray, state: TrackState, candidates: set[int], cfg: TrackConfig,
    firm: set[int] = frozenset(),
) -> int | None:
    """The candidate ID whose memory holds most of these points' voxels, if enough; else None.
    IDs in ``firm`` are judged on their firm memory only (voxels seen in two frames)."""
    if not candidates or len(mask_points) == 0 or state.voxel <= 0:
        return None
    keys = voxel_keys(mask_points, state.voxel)
    best, best_share = None, cfg.reid_min_overlap
    for i in candidates:
        mem = (state.firm if i in firm else state.memory).get(i)
        if mem is None:
            continue
        # keys and memories are sorted and unique (the memory grows with the IDs)
        share = find_sorted(mem, keys)[1].mean()
        if share >= best_share:
            best, best_share = i, share
    return best


# ----------------------------------------------------------------------------- steps


def start(
    image: np.ndarray, geometry: Geometry, segmenter: Segmenter, cfg: TrackConfig
) -> tuple[np.ndarray, TrackState]:
    """Label frame 0 from automatic masks; return its ID map and the tracker state."""
    labels, next_id = init_labels(image, segmenter, cfg, pointmaps=geometry[0])
    voxel = cfg.reid_voxel_rel * scene_scale(geometry) if cfg.reid else 0.0
    state = TrackState(frame=0, labels=labels, next_id=next_id, voxel=voxel)
    if voxel > 0:
        pm = geometry[0]
        update_memory(state, labels, pm.points, pm.valid, cfg.memory_stride)
    return labels, state


def track_frame(
    state: TrackState, t: int, image: np.ndarray, geometry: Geometry, segmenter: Segmenter,
    cfg: TrackConfig,
) -> tuple[np.ndarray, dict[int, float], TrackState]:
    """Label frame ``t`` given the state after frame ``t - 1``.

    Returns the (H, W) int32 ID map, {id: rank score} of the masks kept, and the new state.
    """
    h, w = image.shape[:2]
    n_px = h * w
    carried = carry_labels(state.labels, geometry, state.frame, t, cfg)
    depth_kw = frame_depth_kwargs(segmenter, geometry[t])  # once: prompts and re-seeding
    ids, masks, ranks = prompt_ids(image, carried, segmenter, cfg, depth_kw)
    order = sorted(range(len(ids)), key=lambda k: -ranks[k])
    labels = claim_masks(
        [masks[k] for k in order], [ids[k] for k in order], (h, w), cfg.overlap_thr,
        int(cfg.min_mask_area * n_px),
    )
    scores = {ids[k]: ranks[k] for k in order if (labels == ids[k]).any()}
    next_id = _reseed(labels, image, geometry, t, segmenter, state, cfg, depth_kw)
    new_state = TrackState(
        frame=t, labels=labels, next_id=next_id, memory=state.memory, firm=state.firm,
        voxel=state.voxel
    )
    if new_state.voxel > 0:
        pm = geometry[t]
        update_memory(new_state, labels, pm.points, pm.valid, cfg.memory_stride)
    return labels, scores, new_state


def unmasked_region(labels: np.ndarray, min_area: int) -> np.ndarray:
    """The (H, W) bool region left to re-seed: unlabelled pixels (``labels == 0``) minus the
    8-connected specks of fewer than ``min_area`` pixels, which no new mask could fill."""
    import cv2

    n, comp, stats, _ = cv2.connectedComponentsWithStats(
        (labels == 0).astype(np.uint8), connectivity=8
    )
    big = stats[:, cv2.CC_STAT_AREA] >= min_area
    big[0] = False  # component 0 is the labelled pixels
    return big[comp]


def reseed_area(cfg: TrackConfig, geometry: Geometry) -> float:
    """The least re-seeded area, as a share of the frame, for this geometry (3D or 2D)."""
    return cfg.reseed_min_area_3d if geometry.kind == "3d" else cfg.reseed_min_area


def _reseed(
    labels: np.ndarray, image: np.ndarray, geometry: Geometry, t: int, segmenter: Segmenter,
    state: TrackState, cfg: TrackConfig, depth_kw: dict | None = None,
) -> int:
    """Fill unmasked regions from automatic masks (in place); return the next unused ID.

    The segmenter is asked only for masks that can add to the unmasked regions of at least
    the re-seeding area (``where``): SAM then decodes only its grid points there. With depth
    on 3D geometry, also for those that can add to unmasked regions of at least
    ``reseed_isolated_area``, where a mask re-seeds only if the segmenter marks it
    ``isolated`` (:func:`_reseeds_isolated`).
    Frame t's depth reaches segmenters with ``uses_depth`` (``depth_kw``: its
    :func:`frame_depth_kwargs`, when the caller has them already).
    """
    h, w = labels.shape
    min_area = int(reseed_area(cfg, geometry) * h * w)
    next_id = state.next_id
    if depth_kw is None:
        depth_kw = frame_depth_kwargs(segmenter, geometry[t])
    where = unmasked_region(labels, max(min_area, 1))
    # isolated masks come only from segmenters that read depth, and only count on 3D geometry
    small_area = (int(cfg.reseed_isolated_area * h * w) if geometry.kind == "3d" and depth_kw
                  else None)
    asked = where if small_area is None else unmasked_region(
        labels, max(min(small_area, min_area), 1))
    if not asked.any():
        return next_id
    found = segmenter.auto_masks(image, where=asked, **depth_kw)
    masks = sorted(found, key=lambda m: m.area)
    present = set(np.unique(labels).tolist())
    candidates = set(state.memory) if cfg.reid_present else set(state.memory) - present
    has_3d = state.voxel > 0 and geometry.points is not None
    for m in masks:
        free = m.segmentation & (labels == 0)
        n_free = int(free.sum())
        whole = False
        if not _reseeds(m, n_free, where, min_area, cfg, h * w):
            whole = small_area is not None and _reseeds_isolated(m, n_free, small_area, cfg)
            if not whole:
                continue
        sel = free & geometry.valid[t]
        if geometry.kind == "3d" and int(sel.sum()) < cfg.min_carried:
            # no 3D point can carry it to the next frame or fuse it: it would be a new ID in
            # every frame that re-seeds it (7-Scenes: 67 one-frame IDs on depth holes)
            continue
        new_id = None
        if has_3d and cfg.reid:
            # a small whole object is no unmasked part of an ID present in the frame: its
            # voxels lie in the memory of the table it stood on wherever it was once merged
            # into the table (seed 1's cone took the table's ID in every frame)
            cands = candidates - present if whole else candidates
            # a larger one takes a present ID only where that ID's memory is firm: one frame
            # that merged seed 1's cylinder into the table put it in the table's memory
            firm = present if m.isolated and m.area <= cfg.isolated_firm_area * h * w else set()
            new_id = reidentify(geometry.points[t][sel], state, cands, cfg, firm)
        if new_id is None:
            new_id = next_id
            next_id += 1
        labels[free] = new_id
    return next_id


def _reseeds(m: Mask, n_free: int, where: np.ndarray, min_area: int, cfg: TrackConfig,
             n_px: int) -> bool:
    """An automatic mask re-seeds: it reaches the unmasked regions of the re-seeding area
    (``where``) with at least ``min_area`` unmasked pixels, mostly unmasked or a big hole."""
    big = n_free >= cfg.reseed_large_area * n_px
    return (n_free >= max(min_area, 1) and (n_free >= cfg.reseed_min_free * m.area or big)
            and bool((m.segmentation & where).any()))


def _reseeds_isolated(m: Mask, n_free: int, small_area: int, cfg: TrackConfig) -> bool:
    """A small whole object re-seeds below the re-seeding area (``reseed_isolated_free``)."""
    return (m.isolated and n_free >= max(small_area, 1)
            and n_free >= cfg.reseed_isolated_free * m.area)


def track_sequence(
    images: Sequence[np.ndarray], geometry: Geometry, segmenter: Segmenter, cfg: TrackConfig,
    state: TrackState | None = None, on_frame=None, collect: bool = True,
) -> list[np.ndarray]:
    """Track over all frames (resuming after ``state.frame`` if a state is given).

    images: a sequence of (H, W, 3) uint8 (a lazy one is read one frame at a time; the
    tracker holds only the last frame's labels and the ID memory). ``on_frame(t, labels,
    scores, state)`` is called after each frame (for caching and progress). Returns the ID
    maps of the frames processed by this call (an empty list when ``collect`` is False).
    """
    out = []
    if state is None or state.frame < 0:
        labels, state = start(images[0], geometry, segmenter, cfg)
        if collect:
            out.append(labels)
        if on_frame:
            on_frame(0, labels, {}, state)
    for t in range(state.frame + 1, len(images)):
        labels, scores, state = track_frame(state, t, images[t], geometry, segmenter, cfg)
        if collect:
            out.append(labels)
        if on_frame:
            on_frame(t, labels, scores, state)
    return out


def independent_labels(
    images: Sequence[np.ndarray], segmenter: Segmenter, cfg: TrackConfig, on_frame=None,
    first: int = 0, collect: bool = True, geometry: Geometry | None = None,
) -> list[np.ndarray]:
    """The baseline: every frame labelled on its own (IDs restart at 1 in each frame).

    Frames ``first`` .. end; ``on_frame(t, labels, {}, None)`` after each. ``geometry``:
    optional, its depth reaches segmenters that read depth.
    """
    out = []
    for t in range(first, len(images)):
        pm = geometry[t] if geometry is not None else None
        labels, _ = init_labels(images[t], segmenter, cfg, pointmaps=pm)
        if collect:
            out.append(labels)
        if on_frame:
            on_frame(t, labels, {}, None)
    return out


# ----------------------------------------------------------------------------- persistence


def save_state(path: str | Path, state: TrackState) -> None:
    """Write the state to ``path`` (.npz) atomically."""
    from lift3d.io.atomic import write_npz

    labels = state.labels if state.labels is not None else np.zeros((0, 0), np.int32)
    write_npz(path, frame=state.frame, labels=labels, next_id=state.next_id, voxel=state.voxel,
              **_packed("mem", state.memory), **_packed("firm", state.firm))


def load_state(path: str | Path) -> TrackState:
    """Read a state written by :func:`save_state`."""
    with np.load(path) as z:
        return TrackState(
            frame=int(z["frame"]), labels=z["labels"].astype(np.int32),
            next_id=int(z["next_id"]), memory=_unpacked(z, "mem"), firm=_unpacked(z, "firm"),
            voxel=float(z["voxel"]),
        )


def _packed(name: str, memory: dict[int, np.ndarray]) -> dict[str, np.ndarray]:
    """{id: keys} as three arrays ``NAME_ids``, ``NAME_len``, ``NAME_keys`` for an .npz."""
    ids = np.array(sorted(memory), np.int64)
    keys = np.concatenate([memory[i] for i in ids]) if len(ids) else np.zeros(0, np.int64)
    return {f"{name}_ids": ids, f"{name}_len": np.array([len(memory[i]) for i in ids], np.int64),
            f"{name}_keys": keys}


def _unpacked(z, name: str) -> dict[int, np.ndarray]:
    """What :func:`_packed` wrote (empty when the file has none of it)."""
    if f"{name}_ids" not in z.files:
        return {}
    ids, lens, keys = z[f"{name}_ids"], z[f"{name}_len"], z[f"{name}_keys"]
    bounds = np.concatenate([[0], np.cumsum(lens)])
    return {int(i): keys[bounds[k] : bounds[k + 1]] for k, i in enumerate(ids)}
