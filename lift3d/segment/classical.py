"""A weight-free segmenter (the ``classical`` backend): the CPU stand-in for SAM.

Per image, once (the "embedding", cached for the last image seen), a three-level hierarchy of
regions that nest (each region of a level is a union of regions of the level below):

0. **Fine regions**: Felzenszwalb-Huttenlocher graph segmentation (scikit-image) of the image,
   downscaled so its longer side is at most ``max_side``: a few hundred superpixels that
   follow colour edges.
1. **Middle regions** and 2. **coarse regions**: the fine regions are merged greedily on their
   adjacency graph. The dissimilarity of two neighbouring regions is the distance of their
   mean colours (CIELAB units). Each round merges every pair of regions that are each other's
   most similar neighbour while their dissimilarity is below the level's threshold (mutual
   nearest neighbours, which approximates average-linkage agglomeration without its
   per-merge Python loop): ``merge_threshold / 2`` for the middle level, ``merge_threshold``
   for the coarse one, whose regions smaller than ``min_area_frac`` of the image then join
   their most similar neighbour.

``auto_masks`` returns the coarse regions: plausible object-like regions of coherent colour
that tile the image. Like SAM's automatic masks they are chosen independently per frame: a
two-coloured object may come out as two masks, and the split may differ between frames.

``prompt`` returns, per prompt set and like SAM, the object under the clicks. At a level, the
mask is the regions that hold the positive points (a region holding fewer than
``min_point_share`` of them is a stray click), minus what the negative points designate:
where a region holds both positive and negative points, its fine regions go to the nearest
(in colour) clicked fine region, and a fine region holding a negative point is always removed.
The level is the coarsest whose mask is not far larger than the area the clicks span
(``extent_factor`` times ``pi * r^2``, r the largest distance of a positive point from their
centroid); a single click has no span and gets the coarse level, as SAM's whole-object mask.

Scores (all in [0, 1]):

* region score ``s_r = c_r / (c_r + std_r + score_offset)``: ``c_r`` the boundary-length
  weighted mean dissimilarity to its neighbours, ``std_r`` its internal colour spread;
* prompt score ``mean(s_r of chosen regions) * inliers * region_penalty ** (n_regions - 1)``
  times ``size_penalty`` if the mask covers less than ``min_area_frac`` or more than
  ``max_area_frac`` of the image; ``inliers`` is the share of positive points inside the mask.
  A prompt set without positive points gives an empty mask with score 0, as does one whose
  positive points all share fine regions with negative points.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import cv2
import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

from lift3d.checks import check_shape, with_settings
from lift3d.segment.base import Mask, check_where


@dataclass(frozen=True)
class ClassicalConfig:
    """Settings of the classical segmenter (colour distances in CIELAB units)."""

    max_side: int = 640
    """Images are segmented with their longer side downscaled to at most this (pixels)."""
    fine_scale: float = 100.0
    """Felzenszwalb ``scale`` of the fine level: larger gives fewer, bigger superpixels."""
    fine_sigma: float = 0.8
    """Gaussian pre-smoothing (pixels) of the Felzenszwalb segmentation."""
    fine_min_size: int = 20
    """Felzenszwalb minimum superpixel size (pixels at the working resolution)."""
    merge_threshold: float = 10.0
    """Neighbouring regions merge while their dissimilarity is below this (coarse level; the
    middle level uses half)."""
    min_area_frac: float = 0.002
    """Coarse regions smaller than this share of the image join their nearest neighbour."""
    max_rounds: int = 500
    """Cap on mutual-nearest-neighbour merge rounds (each round is vectorised)."""
    min_point_share: float = 0.15
    """A region needs this share of a prompt's positive points to be selected (the one with
    the most points always is): a stray click spilled onto the background is ignored."""
    extent_factor: float = 3.0
    """A prompt mask may cover at most this many times the area its positive points span
    (``pi r^2``); larger masks at a level mean the level merged the object into its
    surroundings, and the next finer level is used. On 7-Scenes, prompting each region of a
    frame's automatic masks in the next frame at 5 K-Means points of its carried pixels,
    the share of masks with support >= 0.5 and growth <= 3 (the tracker's defaults) was 55%
    with no limit, 59% at 6, 64% at 3 and 68% at 2."""
    score_offset: float = 4.0
    """Added to the internal spread in the region score ``c / (c + std + score_offset)``."""
    region_penalty: float = 0.9
    """Prompt score factor per extra region in the mask (points that disagree)."""
    max_area_frac: float = 0.5
    """Prompt masks larger than this share of the image are suspect (mostly background)."""
    size_penalty: float = 0.5
    """Prompt score factor when the mask is below ``min_area_frac`` or above
    ``max_area_frac`` of the image."""


@dataclass
class _Segmentation:
    """The cached per-image result (the segmenter's "embedding").

    fine: (H, W) int32 fine-region index per pixel at the input resolution.
    levels: per level (fine, middle, coarse), (F,) int32 region of each fine region.
    scores: per level, (R_level,) float32 region scores in [0, 1].
    fine_lab: (F, 3) float32 mean CIELAB colour of each fine region.
    fine_area: (F,) int64 pixel count of each fine region at the input resolution.
    isolated: (R_coarse,) bool, the coarse regions cut off from their surroundings all around
    (:attr:`lift3d.segment.base.Mask.isolated`), kept even below ``min_area_frac``; None:
    the graph does not judge it (colour alone).
    """

    fine: np.ndarray
    levels: list[np.ndarray]
    scores: list[np.ndarray]
    fine_lab: np.ndarray
    fine_area: np.ndarray
    isolated: np.ndarray | None = None

    @classmethod
    def of(cls, fine: np.ndarray, levels: list[np.ndarray], scores: list[np.ndarray],
           fine_lab: np.ndarray, isolated: np.ndarray | None = None) -> _Segmentation:
        """The result of a region graph: ``fine`` at the input resolution, the levels and
        scores of :func:`merge_levels`, the fine regions' mean CIELAB colours, and which
        coarse regions are isolated (None: none)."""
        return cls(fine=fine, levels=[lv.astype(np.int32) for lv in levels],
                   scores=[sc.astype(np.float32) for sc in scores], fine_lab=fine_lab,
                   fine_area=np.bincount(fine.ravel(), minlength=levels[0].shape[0]),
                   isolated=isolated)


class ClassicalSegmenter:
    """Graph-based colour segmentation behind the Segmenter interface (see module docstring).

    n_image_passes: how many images have been segmented (cache misses); prompting the same
    image again costs no new pass.
    """

    name = "classical"
    uses_depth = False

    def __init__(self, cfg: ClassicalConfig = ClassicalConfig(), **overrides):
        # build_segmenter("classical", merge_threshold=10) passes config fields as keywords.
        self.cfg = with_settings(cfg, overrides, "classical segmenter")
        self.n_image_passes = 0
        self._key: tuple | None = None
        self._seg: _Segmentation | None = None

    def auto_masks(self, image: np.ndarray, where: np.ndarray | None = None) -> list[Mask]:
        """Coarse regions of ``image`` ((H, W, 3) uint8) as masks, largest first; they tile
        the image and each covers at least ``min_area_frac`` of it (or is ``isolated``).

        where: optional (H, W) bool: only the regions with a pixel in it are returned (the
        others cannot add to it); the same regions, masks and scores as without ``where``.
        The region hierarchy itself is the whole image's: ``prompt`` shares it.
        """
        where = check_where(where, image)
        seg = self._embed(image)
        region = seg.levels[-1][seg.fine]
        wanted = np.arange(len(seg.scores[-1])) if where is None else np.unique(region[where])
        isolated = np.zeros(len(seg.scores[-1]), bool) if seg.isolated is None else seg.isolated
        masks = [Mask(segmentation=region == r, score=float(seg.scores[-1][r]),
                      isolated=bool(isolated[r])) for r in wanted]
        return sorted(masks, key=lambda m: -m.area)

    def prompt(
        self, image: np.ndarray, points: np.ndarray, point_labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Masks from point prompts (contract in :class:`lift3d.segment.base.Segmenter`).

        image: (H, W, 3) uint8; points: (B, N, 2) float (x, y), pixel centres at integer + 0.5;
        point_labels: (B, N) int: 1 foreground, 0 background, -1 padding.
        Returns masks (B, H, W) bool and scores (B,) float32 in [0, 1].
        """
        check_shape("points", points, (None, None, 2))
        b, n = points.shape[:2]
        check_shape("point_labels", point_labels, (b, n))
        seg = self._embed(image)
        h, w = seg.fine.shape
        xy = np.floor(np.asarray(points, np.float64)).astype(np.int64)
        x = np.clip(xy[..., 0], 0, w - 1)
        y = np.clip(xy[..., 1], 0, h - 1)
        fine_at = seg.fine[y, x]  # (B, N)
        labels = np.asarray(point_labels)
        tables = np.zeros((b, seg.fine_lab.shape[0]), bool)
        scores = np.zeros(b, np.float32)
        for k in range(b):  # one prompt set at a time; each step is vectorised over regions
            pos = labels[k] == 1
            tables[k], scores[k] = self._select(
                seg, fine_at[k][pos], fine_at[k][labels[k] == 0], _span(x[k][pos], y[k][pos])
            )
        return tables[:, seg.fine], scores

    # -- the expensive step, cached ---------------------------------------------------------

    def _embed(self, image: np.ndarray) -> _Segmentation:
        check_shape("image", image, (None, None, 3), np.uint8)
        image = np.ascontiguousarray(image)
        key = (image.shape, hashlib.blake2b(image.data, digest_size=16).digest())
        if key != self._key or self._seg is None:
            self._seg = segment_image(image, self.cfg)
            self._key = key
            self.n_image_passes += 1
        return self._seg

    # -- one prompt set ---------------------------------------------------------------------

    def _select(
        self, seg: _Segmentation, pos_fine: np.ndarray, neg_fine: np.ndarray, span: float
    ) -> tuple[np.ndarray, float]:
        """Fine-region table (F,) bool of the mask and its score, for one prompt set: the
        coarsest level whose mask is at most ``extent_factor * span`` pixels (0 = no limit)."""
        if pos_fine.size == 0:
            return np.zeros(seg.fine_lab.shape[0], bool), 0.0
        for level in range(len(seg.levels) - 1, -1, -1):
            table = self._select_at(seg, level, pos_fine, neg_fine)
            area = float(seg.fine_area[table].sum())
            if level == 0 or span == 0 or area <= self.cfg.extent_factor * span:
                break
        return table, self._score(seg, level, table, pos_fine)

    def _select_at(
        self, seg: _Segmentation, level: int, pos_fine: np.ndarray, neg_fine: np.ndarray
    ) -> np.ndarray:
        """Fine-region table (F,) bool of the regions of ``level`` the points designate."""
        region_of = seg.levels[level]
        regions, counts = np.unique(region_of[pos_fine], return_counts=True)
        share = counts >= self.cfg.min_point_share * pos_fine.size
        chosen = regions[share | (counts == counts.max())]
        neg_regions = np.unique(region_of[neg_fine])
        table = np.isin(region_of, np.setdiff1d(chosen, neg_regions))
        for r in np.intersect1d(chosen, neg_regions):
            table |= _split_region(seg, region_of == r, pos_fine, neg_fine)
        table[neg_fine] = False
        return table

    def _score(
        self, seg: _Segmentation, level: int, table: np.ndarray, pos_fine: np.ndarray
    ) -> float:
        cfg = self.cfg
        used = np.unique(seg.levels[level][table])
        if used.size == 0:
            return 0.0
        score = float(seg.scores[level][used].mean()) * float(table[pos_fine].mean())
        score *= cfg.region_penalty ** (used.size - 1)
        area_frac = float(seg.fine_area[table].sum()) / seg.fine.size
        if not cfg.min_area_frac <= area_frac <= cfg.max_area_frac:
            score *= cfg.size_penalty
        return float(np.clip(score, 0.0, 1.0))


def _span(x: np.ndarray, y: np.ndarray) -> float:
    """Area (pixels) the points span: pi r^2, r the largest distance from their centroid."""
    if x.size < 2:
        return 0.0
    d2 = (x - x.mean()) ** 2 + (y - y.mean()) ** 2
    return float(np.pi * d2.max())


def _split_region(
    seg: _Segmentation, inside: np.ndarray, pos_fine: np.ndarray, neg_fine: np.ndarray
) -> np.ndarray:
    """Fine regions of a region (``inside``, (F,) bool) nearer in colour to a clicked positive
    fine region than to a clicked negative one; (F,) bool."""
    pos = np.unique(pos_fine[inside[pos_fine]])
    neg = np.unique(neg_fine[inside[neg_fine]])
    members = np.nonzero(inside)[0]
    lab = seg.fine_lab[members]
    d_pos = np.linalg.norm(lab[:, None] - seg.fine_lab[pos][None], axis=-1).min(1)
    d_neg = np.linalg.norm(lab[:, None] - seg.fine_lab[neg][None], axis=-1).min(1)
    out = np.zeros_like(inside)
    out[members[d_pos < d_neg]] = True
    out[pos] = True
    return out


# -- segmentation: pure functions ----------------------------------------------------------


def segment_image(image: np.ndarray, cfg: ClassicalConfig = ClassicalConfig()) -> _Segmentation:
    """The region hierarchy of ``image`` ((H, W, 3) uint8 RGB); see the module docstring."""
    from skimage.segmentation import felzenszwalb

    h, w = image.shape[:2]
    scale = min(1.0, cfg.max_side / max(h, w))
    small = image
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
    fine = felzenszwalb(
        small, scale=cfg.fine_scale, sigma=cfg.fine_sigma, min_size=cfg.fine_min_size
    ).astype(np.int32)
    lab = cv2.cvtColor(small.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    graph = _RegionGraph.from_labels(fine, lab)
    levels, scores = merge_levels(graph, cfg.merge_threshold, cfg.min_area_frac * fine.size,
                                  cfg.score_offset, cfg.max_rounds)
    if scale < 1.0:  # nearest-neighbour upsampling of the fine labels to the input size
        rows = np.minimum((np.arange(h) + 0.5) * fine.shape[0] / h, fine.shape[0] - 1)
        cols = np.minimum((np.arange(w) + 0.5) * fine.shape[1] / w, fine.shape[1] - 1)
        fine = fine[rows.astype(np.int64)[:, None], cols.astype(np.int64)[None, :]]
    return _Segmentation.of(fine, levels, scores, graph.fine_mean)


def merge_levels(graph, threshold: float, min_area: float, score_offset: float,
                 max_rounds: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """The three levels of a region graph (fine regions; mutual merges below half the
    threshold; below the threshold with regions under ``min_area`` pixels absorbed): per level
    the owner of each fine region and the regions' scores. Any graph with ``merge_mutual``,
    ``absorb_small`` and ``scores`` (the classical and the geometric segmenters' graphs)."""
    owner = np.arange(graph.area.shape[0])  # region of each fine region at the current level
    levels, scores = [owner], [graph.scores(score_offset)]
    owner = graph.merge_mutual(owner, 0.5 * threshold, max_rounds)
    levels.append(owner)
    scores.append(graph.scores(score_offset))
    owner = graph.merge_mutual(owner, threshold, max_rounds)
    owner = graph.absorb_small(owner, min_area, max_rounds)
    levels.append(owner)
    scores.append(graph.scores(score_offset))
    return levels, scores


@dataclass
class _RegionGraph:
    """Region adjacency graph with the sums needed to merge regions without touching pixels.

    area (R,), lab_sum (R, 3), lab_sq (R, 3): per-region pixel count, sum and sum of squares
    of CIELAB colour. edges (E, 2) int64 (a < b) and length (E,), the number of 4-connected
    pixel pairs on their shared boundary. fine_mean (F, 3): mean colour of the input regions.
    """

    area: np.ndarray
    lab_sum: np.ndarray
    lab_sq: np.ndarray
    edges: np.ndarray
    length: np.ndarray
    fine_mean: np.ndarray

    @classmethod
    def from_labels(cls, labels: np.ndarray, lab: np.ndarray) -> _RegionGraph:
        n = int(labels.max()) + 1
        flat = labels.ravel()
        px = lab.reshape(-1, 3).astype(np.float64)
        area = np.bincount(flat, minlength=n).astype(np.float64)
        lab_sum = np.stack([np.bincount(flat, px[:, c], n) for c in range(3)], 1)
        lab_sq = np.stack([np.bincount(flat, px[:, c] ** 2, n) for c in range(3)], 1)
        a_parts, b_parts = [], []
        for la, lb in ((labels[:, :-1], labels[:, 1:]), (labels[:-1], labels[1:])):
            cut = la != lb
            a_parts.append(la[cut])
            b_parts.append(lb[cut])
        a = np.concatenate(a_parts).astype(np.int64)
        b = np.concatenate(b_parts).astype(np.int64)
        edges, length = _collect_edges(np.minimum(a, b), np.maximum(a, b), np.ones(a.size), n)
        fine_mean = (lab_sum / np.maximum(area, 1)[:, None]).astype(np.float32)
        return cls(area, lab_sum, lab_sq, edges, length, fine_mean)

    def weights(self) -> np.ndarray:
        """(E,) dissimilarity of each edge's regions: distance of their mean colours."""
        mean = self.lab_sum / np.maximum(self.area, 1)[:, None]
        return np.linalg.norm(mean[self.edges[:, 0]] - mean[self.edges[:, 1]], axis=1)

    def merge_mutual(self, owner: np.ndarray, threshold: float, max_rounds: int) -> np.ndarray:
        """Merge mutual most-similar neighbours below ``threshold`` until none is left.

        owner: (F,) current region of each fine region; returns the updated (F,) array.
        """
        for _ in range(max_rounds):
            if not len(self.edges):
                break
            best_w, best_n = _best_neighbour(self.edges, self.weights(), self.area.shape[0])
            idx = np.arange(self.area.shape[0])
            mutual = (best_n >= 0) & (best_n[np.maximum(best_n, 0)] == idx)
            join = mutual & (best_w < threshold) & (idx < best_n)
            if not join.any():
                break
            owner = self._contract(owner, idx[join], best_n[join])
        return owner

    def absorb_small(self, owner: np.ndarray, min_area: float, max_rounds: int) -> np.ndarray:
        """Regions smaller than ``min_area`` pixels join their most similar neighbour, but
        for those :meth:`keep_small` keeps."""
        for _ in range(max_rounds):
            small = (self.area < min_area) & ~self.keep_small()
            if not small.any() or not len(self.edges):
                break
            _, best_n = _best_neighbour(self.edges, self.weights(), self.area.shape[0])
            pick = small & (best_n >= 0)
            owner = self._contract(owner, np.nonzero(pick)[0], best_n[pick])
        return owner

    def keep_small(self) -> np.ndarray:
        """(R,) bool: regions kept whatever their size; colour alone never tells (none)."""
        return np.zeros(self.area.shape[0], bool)

    def _contract(self, owner: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """Merge regions joined by pairs (a, b) (transitively); update sums and edges."""
        n = self.area.shape[0]
        graph = coo_matrix((np.ones(a.size), (a, b)), shape=(n, n))
        _, new = connected_components(graph, directed=False)
        m = int(new.max()) + 1
        self.area = np.bincount(new, self.area, m)
        self.lab_sum = np.stack([np.bincount(new, self.lab_sum[:, c], m) for c in range(3)], 1)
        self.lab_sq = np.stack([np.bincount(new, self.lab_sq[:, c], m) for c in range(3)], 1)
        ea, eb = new[self.edges[:, 0]], new[self.edges[:, 1]]
        keep = ea != eb
        self.edges, self.length = _collect_edges(
            np.minimum(ea, eb)[keep], np.maximum(ea, eb)[keep], self.length[keep], m
        )
        return new[owner]

    def scores(self, offset: float) -> np.ndarray:
        """(R,) region scores ``c / (c + std + offset)`` (module docstring)."""
        n = self.area.shape[0]
        area = np.maximum(self.area, 1)[:, None]
        mean = self.lab_sum / area
        spread = np.sqrt(np.maximum(self.lab_sq / area - mean**2, 0).sum(1))
        if not len(self.edges):
            return np.zeros(n)
        w = self.weights() * self.length
        ends = self.edges.ravel()
        num = np.bincount(ends, np.repeat(w, 2), n)
        den = np.bincount(ends, np.repeat(self.length, 2), n)
        c = num / np.maximum(den, 1)
        return c / (c + spread + offset)


def _collect_edges(
    a: np.ndarray, b: np.ndarray, length: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    """Sum parallel edges (a, b), a < b < n: unique edges (E, 2) and summed lengths (E,)."""
    uniq, inv = np.unique(a.astype(np.int64) * n + b, return_inverse=True)
    return np.stack([uniq // n, uniq % n], 1), np.bincount(inv, length, uniq.size)


def _best_neighbour(edges: np.ndarray, w: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Per region, the smallest edge weight (inf if none) and that neighbour (-1 if none).
    Ties go to the smaller neighbour index, so the result is deterministic."""
    ends = np.concatenate([edges[:, 0], edges[:, 1]])
    other = np.concatenate([edges[:, 1], edges[:, 0]])
    ww = np.concatenate([w, w])
    order = np.lexsort((other, ww, ends))
    ends, other, ww = ends[order], other[order], ww[order]
    first = np.ones(ends.size, bool)
    first[1:] = ends[1:] != ends[:-1]
    best_w = np.full(n, np.inf)
    best_n = np.full(n, -1, np.int64)
    best_w[ends[first]] = ww[first]
    best_n[ends[first]] = other[first]
    return best_w, best_n
