"""A weight-free segmenter that reads depth (the ``geometric`` backend).

Where the classical segmenter (:mod:`lift3d.segment.classical`) splits an image at colour
edges, this one splits it where the surface does: at depth discontinuities (one object in
front of another, or of the floor) and at concave creases (an object standing on the floor,
the floor meeting a wall), and keeps together what is geometrically continuous and convex
(the faces of a box shaded differently, a two-coloured object). Colour is a weak term, and
the only one where the depth is missing.

Per image and depth map, once (cached for the last pair seen, like SAM's embedding):

1. **Surface**: the depth has its holes of at most ``fill_px`` pixels (the flying-pixel band
   the rgbd backend drops at every discontinuity) filled from the valid pixel nearby most
   like them in colour, so the filled depth steps where the colour does; farther pixels
   have no depth ("untrusted"). It is resized with the image to ``work_side`` (nearest
   neighbour, so depths never mix across a discontinuity) and back-projected with K in the
   camera frame: points, and normals (cross product of one-sided differences, each the side
   with the smaller depth change, averaged over ``normal_smooth`` pixels of the same surface
   and of similar normal so a normal never spans a discontinuity or a crease), oriented
   towards the camera.
2. **Fine regions**: Felzenszwalb-Huttenlocher graph segmentation of a feature image that
   stacks colour, normal and log-depth channels: superpixels that stop at colour, crease and
   depth edges alike; then cut where the inverse depth breaks between two pixels
   (``split_jump_rel``), which Felzenszwalb's smoothing and minimum size let a region run
   over when the surface in front is a few pixels wide (a shelf's edge before the wall).
3. **Boundary evidence**: every pair of 4-neighbour pixels (p, q) on the boundary of two fine
   regions is probed ``probe_px`` pixels inside each side (p', q'; nearer where the region is
   thinner, so the evidence is about these two regions), away from the smoothed normals of
   the boundary itself. The pair is a *cut* when

   * depth jumps: neither side's tangent plane (point and normal at p', resp. q') predicts
     the other side's depth to within ``jump_rel`` (relative); on a continuous surface, even
     one seen at a grazing angle, at least one does;
   * or the surface folds concavely: the normals differ by more than ``crease_deg`` and the
     fold is not convex, ``(n_p' - n_q') . (P_p' - P_q') / (|..| |..|) < convex_min`` (the
     convexity test of LCCP, Stein et al. 2014; an object's surface is mostly convex, its
     contact with the floor or a wall is concave).

   Pairs with an untrusted pixel carry no geometric evidence.
4. **Merging**: the fine regions are merged greedily on their adjacency graph, as in the
   classical segmenter (mutual most-similar neighbours per round), with the dissimilarity of
   two regions read from all the pixel pairs of their shared boundary::

       d = g * (cut_share + colour_weight * min(c, 1)) + (1 - g) * c

   ``g`` the share of boundary pairs with geometric evidence, ``cut_share`` the share of
   those that are cuts (counting ``prior_pairs`` more pairs, half of them cuts, so that a
   short boundary is weak evidence either way), ``c`` the distance of the regions' mean colours over
   ``colour_scale`` (CIELAB). Because the evidence is summed over the boundary, merged
   regions are judged on their whole shared boundary, never on region-wide averages (a
   region's centroid can lie anywhere once it is large). Middle level: ``geo_threshold / 2``;
   coarse level: ``geo_threshold``, then regions below ``min_area_frac`` of the image join
   their most similar neighbour, unless they stand apart (``apart_*``): compact, cut off
   by depth jumps and concave creases along most of their boundary, and in front of what
   surrounds them, as a small whole object is. Such regions (of any size) come out of
   ``auto_masks`` marked ``isolated``.

``auto_masks`` returns the coarse regions; ``prompt`` picks regions of the hierarchy under
the clicks exactly as the classical segmenter does (this class inherits its prompt logic).
Region scores: ``c_r / (c_r + score_offset)``, ``c_r`` the boundary-weighted mean
dissimilarity to the region's neighbours.

Without a depth map (``depth=None``) it is the classical segmenter. Without K it assumes a
pinhole camera of ``fov_deg`` horizontal field of view centred on the image.
"""

from __future__ import annotations

import hashlib
import warnings
from dataclasses import dataclass

import cv2
import numpy as np

from lift3d.cameras import backproject, centred_intrinsics, pixel_grid, scale_intrinsics
from lift3d.checks import check_shape, with_settings
from lift3d.segment.base import Mask
from lift3d.segment.classical import (
    ClassicalConfig,
    ClassicalSegmenter,
    _collect_edges,
    _RegionGraph,
    _Segmentation,
    merge_levels,
    segment_image,
)


@dataclass(frozen=True)
class GeometricConfig(ClassicalConfig):
    """Settings of the geometric segmenter. The prompt settings (``min_point_share``,
    ``extent_factor``, ``region_penalty``, ``max_area_frac``, ``size_penalty``) and
    ``min_area_frac`` / ``max_rounds`` mean what they mean in :class:`ClassicalConfig`; its
    colour thresholds apply only without depth."""

    work_side: int = 320
    """Images and depth maps are segmented with their longer side resized to this (pixels),
    down or up, so that the pixel-sized settings below mean the same share of any image:
    depth sensors resolve no finer, and it keeps a frame at ~0.15 s."""
    fine_scale: float = 60.0
    """Felzenszwalb ``scale`` of the fine level on the stacked feature image."""
    colour_feature: float = 1.0
    """Weight of the RGB channels (in [0, 1]) in the fine level's feature image."""
    normal_feature: float = 0.5
    """Weight of the unit normal's three channels in the feature image."""
    depth_feature: float = 3.0
    """Weight of log depth in the feature image (a 10% depth jump = 0.3)."""
    fill_px: float = 3.0
    """Invalid depth pixels within this distance (pixels of the input depth map) of a valid
    one take its depth (the rgbd backend drops a band of about 2 pixels at every depth
    discontinuity); farther ones are untrusted and segmented by colour."""
    normal_step: int = 2
    """Pixel step of the finite differences behind the normals."""
    normal_smooth: int = 5
    """Box size (pixels) over which normals are averaged (valid pixels only)."""
    smooth_max_deg: float = 60.0
    """Normals are averaged only with neighbours whose unsmoothed normal is within this angle,
    so a crease stays sharp even in a thin region (a skirting board, a table's edge) whose
    probes read normals next to it. Per-frame best IoU (every 3rd frame), seeds 0-2 / room
    preset seeds 0-1, and 7-Scenes redkitchen tracked (stride 4, 20 frames) IDs in all / H:
    no limit 0.904 / 0.656, 197 / 0.77; 90: 0.912 / 0.693, 184 / 0.79; 60: 0.922 / 0.718,
    183 / 0.81; 45: 0.927 / 0.719, 230 / 0.71 (real normals are noisier: a tighter limit
    leaves them unsmoothed and fragments real surfaces)."""
    split_jump_rel: float = 0.03
    """The fine regions are cut where the inverse depth breaks between neighbouring pixels
    by more than this share (:func:`split_at_jumps`); 0: off. A shelf's 3-pixel front edge
    is then no longer given to the wall behind it (room seed 2, frame 8: shelf pixels in
    masks mostly not the shelf 166 -> 55). Room preset, without -> with the cut (parts of
    any size kept), tracked sequence IoU: seeds 0-2 0.554 -> 0.592, 10-12 0.533 -> 0.583,
    20-22 0.493 -> 0.531 (with ``split_min_px`` 3: 0.595, 0.558, 0.538); associated (before
    the ``held`` rule) sequence IoU / AP50: seeds 0-2 0.677 / 0.581 -> 0.653 / 0.536 (two
    boxes side by side joined by one superpoint, a box joined to a wall piece by a convex
    seam), 10-12 0.650 / 0.593 -> 0.699 / 0.634, 20-22 0.640 / 0.595 -> 0.675 / 0.579;
    objects preset seeds 0-2 associated 0.956 -> 0.971. Chosen on seeds 0-2 and 10-12
    together (20-22 were made after the choice); 0.05: room seeds 0-2 associated 0.627."""
    split_min_px: int = 3
    """Parts of a fine region cut off by depth breaks that are smaller than this (pixels)
    stay with the region's largest part. Room seed 2, frame 8, shelf pixels in masks mostly
    not the shelf: 55 at 1, 71 at 3, 84 at 8 (166 without the cut); segmentation time over
    three room frames, against no cut: x1.44 at 1, x1.12 at 2, x1.06 at 3, x1.03 at 8 (1-pixel
    parts are mostly depth noise, and each is a region the merging must judge)."""
    probe_px: int = 4
    """Boundary evidence is read this many pixels inside each region (beyond the normal
    smoothing's reach across the boundary)."""
    probe_in_region: bool = True
    """Probes stop where their fine region ends (a thin region is read close to its edge)."""
    jump_rel: float = 0.03
    """A boundary pair is a depth jump when neither side's tangent plane predicts the other
    side's depth within this share of it."""
    crease_deg: float = 20.0
    """Normals differing by more than this (degrees) across a boundary pair are a crease."""
    convex_min: float = 0.0
    """A crease is convex (kept together) when the LCCP convexity ``(n_a - n_b) . d``
    (unit vectors) exceeds this; below it the crease cuts."""
    prior_pairs: float = 4.0
    """The cut share of a boundary starts as this many pairs, half of them cuts: a short
    boundary (a corner where two regions touch) is no evidence that they are one surface."""
    colour_scale: float = 20.0
    """Colour distance (CIELAB) that counts as a full cut where there is no depth."""
    colour_weight: float = 0.1
    """Weight of the (capped) colour distance beside the geometric evidence."""
    geo_threshold: float = 0.4
    """Neighbouring regions merge while their dissimilarity is below this (coarse level; the
    middle level uses half). Per-frame best IoU per object on generated scenes (seeds 0-2,
    every 3rd frame): 0.893 at 0.3, 0.904 at 0.4, 0.908 at 0.5 (where under-segmentation
    starts to grow: 2.2% of objects vs 1.1%); real 7-Scenes frames look no worse at 0.4."""
    score_offset: float = 0.2
    """Offset in the region score ``c / (c + score_offset)``."""
    min_point_share: float = 0.3
    """As in :class:`ClassicalConfig` (0.15 there): a region needs this share of a prompt's
    positive points. Here a coarse region is a whole surface, so one stray click of the
    tracker's five (20%) would pull in the whole floor and get the mask rejected as a leak;
    tracked seeds 0-2, sequence / per-frame IoU: 0.761 / 0.815, 0.863 / 0.847, 0.844 / 0.807
    at 0.15; 0.826 / 0.853, 0.857 / 0.848, 0.852 / 0.823 at 0.3 (seed 0: 0.815 / 0.828 at
    0.5)."""
    fov_deg: float = 60.0
    """Horizontal field of view assumed when no K is given."""
    apart_min_frac: float = 0.0005
    """A coarse region below ``min_area_frac`` is kept, not joined to a neighbour, when it
    stands apart (a small whole object: a cup on a table, a box on a shelf): at least this
    share of the image (38 pixels at 320x240, the tracker's smallest mask),..."""
    apart_cut_share: float = 0.6
    """...at least this share of its boundary pairs cuts (depth jumps, concave creases; the
    image border counts as boundary, not as a cut),..."""
    apart_behind_share: float = 0.3
    """...at most this share of its boundary pairs depth jumps to something nearer (an object
    stands in front of what surrounds it; the floor seen through a gap between a chair's
    slats is behind it),..."""
    apart_compactness: float = 0.3
    """...and compact: ``4 pi area / perimeter^2`` at least this (perimeter in 4-neighbour
    boundary pairs, so a disc scores 0.62 and a square 0.79; a sliver along an edge far
    less). Room preset seeds 0-2, every 3rd frame: of 736 coarse regions under 0.2 % before
    the joining, 22 are a whole object (IoU >= 0.5); cut share 0.6 and compactness 0.3 keep
    18 of them and 163 others (chair legs and slats, mostly), 0.7 / 0.3 keep 13. The
    behind share, on 7-Scenes redkitchen (12 frames, stride 16): 8.7 regions under 0.2 %
    kept per frame without it, 5.4 at 0.3, 3.0 at 0.15; on the room preset 0.3 loses one
    object in some frames (seed 1's blob, partly hidden behind a chair). The tracker's use
    of these masks: :attr:`lift3d.track.TrackConfig.reseed_isolated_area`."""


class GeometricSegmenter(ClassicalSegmenter):
    """Depth-aware region segmentation behind the Segmenter interface (module docstring).

    ``auto_masks`` and ``prompt`` take ``depth=`` ((H, W) float32 metres, 0 = invalid) and
    ``K=`` ((3, 3)) keywords; the segmentation is cached for the last (image, depth, K).
    """

    name = "geometric"
    uses_depth = True

    def __init__(self, cfg: GeometricConfig = GeometricConfig(), **overrides):
        # build_segmenter("geometric", jump_rel=0.05) passes config fields as keywords.
        super().__init__()
        self.cfg = with_settings(cfg, overrides, "geometric segmenter")
        self._image_key: tuple | None = None

    def auto_masks(
        self, image: np.ndarray, where: np.ndarray | None = None,
        depth: np.ndarray | None = None, K: np.ndarray | None = None,
    ) -> list[Mask]:
        """Coarse regions as masks, largest first (see :meth:`ClassicalSegmenter.auto_masks`);
        depth (H, W) float32 metres (0 invalid) and K (3, 3) of ``image``."""
        self._embed_rgbd(image, depth, K)
        return super().auto_masks(image, where)

    def prompt(
        self, image: np.ndarray, points: np.ndarray, point_labels: np.ndarray,
        depth: np.ndarray | None = None, K: np.ndarray | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Masks from point prompts (contract in :class:`lift3d.segment.base.Segmenter`),
        on the hierarchy of ``image`` with its ``depth`` and ``K``."""
        self._embed_rgbd(image, depth, K)
        return super().prompt(image, points, point_labels)

    def _embed_rgbd(
        self, image: np.ndarray, depth: np.ndarray | None, K: np.ndarray | None
    ) -> _Segmentation:
        check_shape("image", image, (None, None, 3), np.uint8)
        image = np.ascontiguousarray(image)
        if depth is not None:
            check_shape("depth", depth, image.shape[:2])
            depth = np.ascontiguousarray(depth, np.float32)
        if K is not None:
            check_shape("K", K, (3, 3))
            K = np.ascontiguousarray(K, np.float64)
        image_key = (image.shape, _digest(image))
        key = (image_key, _digest(depth), _digest(K))
        if key != self._key or self._seg is None:
            if depth is None:
                self._seg = segment_image(image, self.cfg)
            else:
                self._seg = segment_rgbd(image, depth, K, self.cfg)
            self._key = key
            self._image_key = image_key
            self.n_image_passes += 1
        return self._seg

    def _embed(self, image: np.ndarray) -> _Segmentation:
        # The inherited auto_masks / prompt call this after _embed_rgbd prepared the image
        # with its depth; an image seen without depth is segmented by colour.
        check_shape("image", image, (None, None, 3), np.uint8)
        image = np.ascontiguousarray(image)
        if self._seg is not None and self._image_key == (image.shape, _digest(image)):
            return self._seg
        return self._embed_rgbd(image, None, None)


def _digest(a: np.ndarray | None) -> bytes | None:
    return None if a is None else hashlib.blake2b(a.data, digest_size=16).digest()


# -- segmentation: pure functions ----------------------------------------------------------


def fill_depth(
    depth: np.ndarray, fill_px: float, image: np.ndarray | None = None, px_cost: float = 2.0
) -> tuple[np.ndarray, np.ndarray]:
    """Depth with its small holes filled, and where it is trusted.

    depth: (H, W) float32 metres, 0 / non-finite = invalid. Each invalid pixel within
    ``fill_px`` pixels of a valid one takes the depth of the valid pixel within that radius
    most like it in colour (CIELAB distance plus ``px_cost`` per pixel of distance; without
    ``image`` the nearest), so the depth step inside a dropped discontinuity band lands on
    the colour edge. Returns the filled depth (H, W) float32 (the nearest valid depth beyond
    ``fill_px``, 1.0 everywhere when nothing is valid) and trusted (H, W) bool: valid or
    filled.
    """
    from scipy.ndimage import distance_transform_edt

    valid = np.isfinite(depth) & (depth > 0)
    if not valid.any():
        return np.ones(depth.shape, np.float32), np.zeros(depth.shape, bool)
    if valid.all():
        return depth.astype(np.float32), valid
    dist, (iy, ix) = distance_transform_edt(~valid, return_indices=True)
    z = depth[iy, ix].astype(np.float32)
    trusted = dist <= fill_px
    if image is None:
        return z, trusted
    lab = cv2.cvtColor(image.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    r = int(np.floor(fill_px))
    h, w = valid.shape
    zp = np.pad(np.where(valid, depth, 0).astype(np.float32), r)
    vp = np.pad(valid, r)
    lp = np.pad(lab, ((r, r), (r, r), (0, 0)))
    best = np.full((h, w), np.inf, np.float32)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            if dy * dy + dx * dx > fill_px * fill_px or (dy == 0 and dx == 0):
                continue
            sl = (slice(r + dy, r + dy + h), slice(r + dx, r + dx + w))
            cost = np.linalg.norm(lp[sl] - lab, axis=-1) + px_cost * np.hypot(dy, dx)
            take = vp[sl] & (cost < best)
            best = np.where(take, cost, best)
            z = np.where(take & ~valid, zp[sl], z)
    return z, trusted


def surface_normals(
    points: np.ndarray, trusted: np.ndarray, step: int, smooth: int, jump_rel: float,
    min_cos: float = -1.0,
) -> np.ndarray:
    """(H, W, 3) float32 unit normals of a camera-frame point map, oriented towards the camera
    (zero where untrusted).

    points: (H, W, 3) camera coordinates (metres). Each pixel's tangents are the one-sided
    differences over ``step`` pixels with the smaller depth change (so a normal next to a
    discontinuity uses its own side); normals are then averaged over the ``smooth`` x
    ``smooth`` trusted pixels on the same surface (depth within ``jump_rel`` per pixel of
    offset, and unsmoothed normals whose cosine is at least ``min_cos``), so they are never
    averaged across a depth discontinuity (nor, with ``min_cos``, across a crease).
    """
    h, w = trusted.shape
    tangents = []
    for axis, size in ((1, w), (0, h)):
        idx = np.arange(size)
        fwd = np.take(points, np.minimum(idx + step, size - 1), axis=axis) - points
        bwd = points - np.take(points, np.maximum(idx - step, 0), axis=axis)
        edge_shape = [1, 1]
        edge_shape[axis] = size
        dz_f = np.where((idx + step < size).reshape(edge_shape), np.abs(fwd[..., 2]), np.inf)
        dz_b = np.where((idx - step >= 0).reshape(edge_shape), np.abs(bwd[..., 2]), np.inf)
        tangents.append(np.where((dz_f <= dz_b)[..., None], fwd, bwd))
    n = np.cross(tangents[0], tangents[1]).astype(np.float32)
    n /= np.maximum(np.linalg.norm(n, axis=-1, keepdims=True), 1e-12)
    n *= -np.sign(np.sum(n * points, axis=-1, keepdims=True) + 1e-12)  # face the camera
    n *= trusted[..., None]
    n = _smooth_on_surface(n, points[..., 2], smooth // 2, jump_rel, min_cos)
    norm = np.linalg.norm(n, axis=-1, keepdims=True)
    return np.where(norm > 1e-6, n / np.maximum(norm, 1e-6), 0.0).astype(np.float32)


def _smooth_on_surface(v: np.ndarray, z: np.ndarray, r: int, rel: float, min_cos: float
                       ) -> np.ndarray:
    """Sum of unit vectors ``v`` ((H, W, 3)) over each pixel's (2r+1)^2 window, counting only
    the pixels whose depth ``z`` is within ``rel`` per pixel of offset of the centre's and
    whose vector's cosine with the centre's is at least ``min_cos`` (one vectorised pass per
    offset)."""
    h, w = z.shape
    vp = np.pad(v, ((r, r), (r, r), (0, 0)), mode="edge")
    zp = np.pad(z, r, mode="edge")
    out = np.zeros_like(v)
    for dy in range(-r, r + 1):
        for dx in range(-r, r + 1):
            zs = zp[r + dy : r + dy + h, r + dx : r + dx + w]
            vs = vp[r + dy : r + dy + h, r + dx : r + dx + w]
            near = np.abs(zs - z) <= rel * max(abs(dy), abs(dx)) * z
            near &= np.sum(vs * v, axis=-1) >= min_cos
            out += vs * near[..., None]
    return out


@dataclass
class BoundaryPairs:
    """The 4-neighbour pixel pairs on fine-region boundaries and their evidence.

    a, b: (N,) int64 fine regions of the two pixels (a != b); geo: (N,) bool, the pair has
    geometric evidence (all four probed pixels trusted); cut: (N,) bool, it is a depth jump
    or a concave crease (only meaningful where ``geo``); a_behind, b_behind: (N,) bool, it
    is a depth jump and ``a``'s (resp. ``b``'s) side is the farther one.
    """

    a: np.ndarray
    b: np.ndarray
    geo: np.ndarray
    cut: np.ndarray
    a_behind: np.ndarray
    b_behind: np.ndarray


def boundary_pairs(
    fine: np.ndarray, points: np.ndarray, normals: np.ndarray, trusted: np.ndarray,
    K: np.ndarray, cfg: GeometricConfig,
) -> BoundaryPairs:
    """Evidence of every boundary pixel pair (module docstring, step 3).

    fine: (H, W) int fine regions; points (H, W, 3) camera frame, normals (H, W, 3) unit,
    trusted (H, W) bool; K (3, 3) of this resolution.
    """
    h, w = fine.shape
    rays = pixel_grid(h, w) @ np.linalg.inv(K).T.astype(np.float32)  # (H, W, 3), z = 1
    k = cfg.probe_px
    a_parts, b_parts, geo_parts, cut_parts, behind_parts = [], [], [], [], []
    for dy, dx in ((0, 1), (1, 0)):
        la, lb = fine[: h - dy, : w - dx], fine[dy:, dx:]
        ys, xs = np.nonzero(la != lb)  # p = (ys, xs), q = (ys + dy, xs + dx)
        py, px = _probe(fine, ys, xs, -dy, -dx, k, cfg.probe_in_region)
        qy, qx = _probe(fine, ys + dy, xs + dx, dy, dx, k, cfg.probe_in_region)
        geo = (trusted[ys, xs] & trusted[ys + dy, xs + dx] & trusted[py, px] & trusted[qy, qx])
        rm = 0.5 * (rays[ys, xs] + rays[ys + dy, xs + dx])
        pa, pb = points[py, px], points[qy, qx]
        cut, jump = _cuts(pa, normals[py, px], pb, normals[qy, qx], rm, cfg)
        behind_parts.append(np.where(jump, np.sign(pa[:, 2] - pb[:, 2]), 0))  # +1: a behind
        a_parts.append(la[ys, xs])
        b_parts.append(lb[ys, xs])
        geo_parts.append(geo)
        cut_parts.append(cut)
    return BoundaryPairs(
        a=np.concatenate(a_parts).astype(np.int64), b=np.concatenate(b_parts).astype(np.int64),
        geo=np.concatenate(geo_parts), cut=np.concatenate(cut_parts),
        a_behind=np.concatenate(behind_parts) > 0, b_behind=np.concatenate(behind_parts) < 0,
    )


def depth_jump_links(z: np.ndarray, trusted: np.ndarray, rel: float
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Where the surface breaks between 4-neighbours: (H, W - 1) bool for the horizontal
    links (x, x + 1), (H - 1, W) bool for the vertical ones.

    A link breaks when its step in inverse depth differs, by more than ``rel`` of the larger
    inverse depth, from the steps of the links on both sides of it along the same line (or
    the one there is at the image border). Inverse depth is affine in the pixel coordinates
    on a plane, so a plane seen at any angle, even grazing, has equal steps; a crease
    changes the slope, not the value, and is not a break; a surface in front of another
    steps once at each of its borders, however thin it is (a shelf's 3-pixel front edge
    before the wall). Links with an untrusted pixel never break.
    """
    d = np.where(trusted, 1.0 / np.maximum(z, 1e-6), 0.0).astype(np.float32)

    def along(d: np.ndarray, ok: np.ndarray) -> np.ndarray:  # links along axis 1
        s = d[:, 1:] - d[:, :-1]
        tol = rel * np.maximum(d[:, 1:], d[:, :-1])
        change = np.abs(np.diff(s, axis=1))  # between link j and link j + 1
        none = np.full((len(s), 1), np.inf, np.float32)  # no link beyond the border
        prev, nxt = np.hstack([none, change]), np.hstack([change, none])
        both = np.isfinite(prev) | np.isfinite(nxt)
        brk = (prev > tol) & (nxt > tol) & both
        return brk & ok[:, 1:] & ok[:, :-1]

    return along(d, trusted), along(d.T, trusted.T).T


def split_at_jumps(fine: np.ndarray, z: np.ndarray, trusted: np.ndarray, rel: float,
                   min_px: int = 3) -> np.ndarray:
    """The fine regions cut into their connected parts after removing the links across
    depth breaks (:func:`depth_jump_links`): Felzenszwalb's smoothing and minimum size let
    a region run over a strip a few pixels wide in front of a wall; the boundary evidence
    can only judge what the regions keep apart. Parts under ``min_px`` pixels stay with
    their region's largest part. Returns (H, W) int32 labels 0..R-1."""
    from scipy.sparse import coo_matrix
    from scipy.sparse.csgraph import connected_components

    h, w = fine.shape
    jh, jv = depth_jump_links(z, trusted, rel)
    idx = np.arange(h * w).reshape(h, w)
    keep_h = (fine[:, 1:] == fine[:, :-1]) & ~jh
    keep_v = (fine[1:] == fine[:-1]) & ~jv
    src = np.concatenate([idx[:, :-1][keep_h], idx[:-1][keep_v]])
    dst = np.concatenate([idx[:, 1:][keep_h], idx[1:][keep_v]])
    g = coo_matrix((np.ones(src.size, np.int8), (src, dst)), shape=(h * w, h * w))
    n, comp = connected_components(g, directed=False)
    size = np.bincount(comp, minlength=n)
    region = np.zeros(n, np.int64)
    region[comp] = fine.ravel()
    # each fine region's largest part keeps the region; parts under min_px (a noisy depth
    # pixel, a speck at a misregistered edge) stay with it: they cost the merging more than
    # they tell it
    order = np.lexsort((-size, region))
    main = np.empty(n, np.int64)
    first = np.r_[True, region[order][1:] != region[order][:-1]]
    main[order] = order[np.maximum.accumulate(np.where(first, np.arange(n), 0))]
    keep = np.where(size >= min_px, np.arange(n), main)
    _, relabel = np.unique(keep, return_inverse=True)
    return relabel[comp].reshape(h, w).astype(np.int32)


def _probe(fine: np.ndarray, ys: np.ndarray, xs: np.ndarray, dy: int, dx: int, k: int,
           in_region: bool) -> tuple[np.ndarray, np.ndarray]:
    """The pixels ``k`` steps from (ys, xs) along (dy, dx), clipped to the image; with
    ``in_region``, at most as far as the path stays in the same fine region (the pixel itself
    where the first step leaves it)."""
    h, w = fine.shape
    if not in_region:
        return np.clip(ys + k * dy, 0, h - 1), np.clip(xs + k * dx, 0, w - 1)
    own = fine[ys, xs]
    inside = np.ones(ys.shape, bool)
    oy, ox = ys.copy(), xs.copy()
    for j in range(1, k + 1):
        y, x = ys + j * dy, xs + j * dx
        ok = (y >= 0) & (y < h) & (x >= 0) & (x < w)
        inside &= ok
        inside[inside] &= fine[y[inside], x[inside]] == own[inside]
        oy = np.where(inside, y, oy)
        ox = np.where(inside, x, ox)
    return oy, ox


def _cuts(pa, na, pb, nb, rm, cfg: GeometricConfig) -> tuple[np.ndarray, np.ndarray]:
    """(N,) bool: the pairs of probes (points p, unit normals n; (N, 3) each) across which the
    surface jumps in depth or folds concavely, and (N,) bool those that jump; rm (N, 3): the
    rays (z = 1) of the boundary points between the pairs' pixels."""
    jump = _depth_jump(pa, na, pb, nb, rm) > cfg.jump_rel
    crease = np.sum(na * nb, 1) < np.cos(np.radians(cfg.crease_deg))
    dn = na - nb
    d = pa - pb
    conv = np.sum(dn * d, 1) / np.maximum(np.linalg.norm(dn, axis=1) * np.linalg.norm(d, axis=1),
                                          1e-12)
    return jump | (crease & (conv < cfg.convex_min)), jump


def _depth_jump(pa, na, pb, nb, rm) -> np.ndarray:
    """(N,) relative depth gap at the boundary: the depths the two sides' tangent planes give
    the boundary ray ``rm`` (they meet there on a continuous surface, creases included) and,
    as a fallback for surfaces seen edge-on (where a tangent plane predicts nothing), each
    plane's depth at the other probe's ray; the smallest of the three gaps."""
    ra, rb = pa / pa[:, 2:3], pb / pb[:, 2:3]
    with np.errstate(divide="ignore", invalid="ignore"):
        za_m = np.sum(na * pa, 1) / np.sum(na * rm, 1)
        zb_m = np.sum(nb * pb, 1) / np.sum(nb * rm, 1)
        gaps = [
            np.abs(za_m - zb_m) / np.minimum(za_m, zb_m),
            np.abs(np.sum(na * pa, 1) / np.sum(na * rb, 1) - pb[:, 2]) / pb[:, 2],
            np.abs(np.sum(nb * pb, 1) / np.sum(nb * ra, 1) - pa[:, 2]) / pa[:, 2],
        ]
    gaps = [np.where(np.isfinite(g) & (g >= 0), g, np.inf) for g in gaps]
    gaps[0] = np.where((za_m > 0) & (zb_m > 0), gaps[0], np.inf)
    return np.minimum.reduce(gaps)


class _GeoGraph(_RegionGraph):
    """The classical region graph with, per edge, the number of boundary pairs that carry
    geometric evidence (``n_geo``) and of those that are cuts (``n_cut``), summed as regions
    merge; its dissimilarity is the module docstring's ``d``. ``n_behind_lo`` /
    ``n_behind_hi``: per edge, the depth jumps (with evidence) where its lower (resp. higher)
    numbered region is the farther side. ``border`` (R,): each region's pixel sides on the
    image border."""

    n_geo: np.ndarray
    n_cut: np.ndarray
    n_behind_lo: np.ndarray
    n_behind_hi: np.ndarray
    border: np.ndarray
    cfg: GeometricConfig

    @classmethod
    def from_pairs(cls, fine: np.ndarray, lab: np.ndarray, pairs: BoundaryPairs,
                   cfg: GeometricConfig) -> _GeoGraph:
        graph = cls.from_labels(fine, lab)
        n = graph.area.shape[0]
        lo, hi = np.minimum(pairs.a, pairs.b), np.maximum(pairs.a, pairs.b)
        _, graph.n_geo = _collect_edges(lo, hi, pairs.geo.astype(np.float64), n)
        _, graph.n_cut = _collect_edges(lo, hi, (pairs.geo & pairs.cut).astype(np.float64), n)
        a_lo = pairs.a < pairs.b
        lo_behind = pairs.geo & np.where(a_lo, pairs.a_behind, pairs.b_behind)
        hi_behind = pairs.geo & np.where(a_lo, pairs.b_behind, pairs.a_behind)
        _, graph.n_behind_lo = _collect_edges(lo, hi, lo_behind.astype(np.float64), n)
        _, graph.n_behind_hi = _collect_edges(lo, hi, hi_behind.astype(np.float64), n)
        edge = np.concatenate([fine[0], fine[-1], fine[:, 0], fine[:, -1]])
        graph.border = np.bincount(edge, minlength=n).astype(np.float64)
        graph.cfg = cfg
        return graph

    def weights(self) -> np.ndarray:
        cfg = self.cfg
        mean = self.lab_sum / np.maximum(self.area, 1)[:, None]
        colour = np.linalg.norm(mean[self.edges[:, 0]] - mean[self.edges[:, 1]], axis=1)
        colour /= cfg.colour_scale
        g = self.n_geo / np.maximum(self.length, 1)
        cut = (self.n_cut + 0.5 * cfg.prior_pairs) / (self.n_geo + cfg.prior_pairs)
        return g * (cut + cfg.colour_weight * np.minimum(colour, 1.0)) + (1 - g) * colour

    def _contract(self, owner: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        edges, n_geo, n_cut = self.edges, self.n_geo, self.n_cut
        behind_lo, behind_hi = self.n_behind_lo, self.n_behind_hi
        new = super()._contract(np.arange(self.area.shape[0]), a, b)  # old -> new region
        m = self.area.shape[0]
        self.border = np.bincount(new, self.border, m)
        ea, eb = new[edges[:, 0]], new[edges[:, 1]]
        keep = ea != eb
        lo, hi = np.minimum(ea, eb)[keep], np.maximum(ea, eb)[keep]
        _, self.n_geo = _collect_edges(lo, hi, n_geo[keep], m)
        _, self.n_cut = _collect_edges(lo, hi, n_cut[keep], m)
        swap = (ea > eb)[keep]  # the edge's ends changed order
        bl, bh = behind_lo[keep], behind_hi[keep]
        _, self.n_behind_lo = _collect_edges(lo, hi, np.where(swap, bh, bl), m)
        _, self.n_behind_hi = _collect_edges(lo, hi, np.where(swap, bl, bh), m)
        return new[owner]

    def keep_small(self) -> np.ndarray:
        """(R,) bool: regions that stand apart (a small whole object; config ``apart_*``):
        large enough, compact, with mostly cuts on their boundary (the image border counts as
        boundary and not as a cut: what it cuts off may go on beyond it)."""
        cfg = self.cfg
        n = self.area.shape[0]
        if not len(self.edges):
            return np.zeros(n, bool)
        ends = self.edges.ravel()
        perimeter = np.bincount(ends, np.repeat(self.length, 2), n) + self.border
        cuts = np.bincount(ends, np.repeat(self.n_cut, 2), n)
        behind = (np.bincount(self.edges[:, 0], self.n_behind_lo, n)
                  + np.bincount(self.edges[:, 1], self.n_behind_hi, n))
        compact = 4 * np.pi * self.area / np.maximum(perimeter, 1) ** 2
        return ((self.area >= cfg.apart_min_frac * self.area.sum())
                & (cuts >= cfg.apart_cut_share * perimeter)
                & (behind <= cfg.apart_behind_share * perimeter)
                & (compact >= cfg.apart_compactness))

    def scores(self, offset: float) -> np.ndarray:
        """(R,) region scores ``c / (c + offset)``, c the boundary-weighted mean
        dissimilarity to the region's neighbours."""
        n = self.area.shape[0]
        if not len(self.edges):
            return np.zeros(n)
        ends = self.edges.ravel()
        num = np.bincount(ends, np.repeat(self.weights() * self.length, 2), n)
        den = np.bincount(ends, np.repeat(self.length, 2), n)
        c = num / np.maximum(den, 1)
        return c / (c + offset)


def segment_rgbd(
    image: np.ndarray, depth: np.ndarray, K: np.ndarray | None,
    cfg: GeometricConfig = GeometricConfig(),
) -> _Segmentation:
    """The region hierarchy of ``image`` ((H, W, 3) uint8 RGB) with its ``depth`` ((H, W)
    float32 metres, 0 invalid) and ``K`` ((3, 3), or None); see the module docstring."""
    from skimage.segmentation import felzenszwalb

    h, w = image.shape[:2]
    if K is None:
        K = centred_intrinsics(h, w, cfg.fov_deg)
    z, trusted = fill_depth(depth, cfg.fill_px, image)  # in sensor pixels
    scale = cfg.work_side / max(h, w)
    small, small_K = image, K
    if scale != 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1 else
                           cv2.INTER_LINEAR)
        z = cv2.resize(z, size, interpolation=cv2.INTER_NEAREST)
        trusted = cv2.resize(trusted.astype(np.uint8), size,
                             interpolation=cv2.INTER_NEAREST).astype(bool)
        small_K = scale_intrinsics(K, size[0] / w, size[1] / h)
    points = backproject(z, small_K, np.eye(4))
    normals = surface_normals(points, trusted, cfg.normal_step, cfg.normal_smooth,
                              cfg.jump_rel, np.cos(np.radians(cfg.smooth_max_deg)))
    features = np.concatenate([
        small.astype(np.float32) * (cfg.colour_feature / 255.0),
        normals * cfg.normal_feature,
        np.log(z)[..., None] * cfg.depth_feature,
    ], axis=-1)
    with warnings.catch_warnings():  # skimage warns about any channel count but 3
        warnings.simplefilter("ignore", RuntimeWarning)
        fine = felzenszwalb(features, scale=cfg.fine_scale, sigma=cfg.fine_sigma,
                            min_size=cfg.fine_min_size, channel_axis=-1).astype(np.int32)
    if cfg.split_jump_rel > 0:
        fine = split_at_jumps(fine, z, trusted, cfg.split_jump_rel, cfg.split_min_px)
    lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    pairs = boundary_pairs(fine, points, normals, trusted, small_K, cfg)
    graph = _GeoGraph.from_pairs(fine, lab, pairs, cfg)
    min_area = cfg.min_area_frac * fine.size
    levels, scores = merge_levels(graph, cfg.geo_threshold, min_area, cfg.score_offset,
                                  cfg.max_rounds)
    isolated = graph.keep_small()  # the coarse regions that stand apart, whatever their size
    if scale != 1.0:
        fine = cv2.resize(fine, (w, h), interpolation=cv2.INTER_NEAREST)
    return _Segmentation.of(fine, levels, scores, graph.fine_mean, isolated)
