"""Global alignment of pairwise MASt3R pointmaps into one world frame.

MASt3R predicts, for an ordered pair of frames ``(i, j)``, frame i's points and frame j's
points, both in camera i's frame, each pair at its own unknown scale. This module turns a
graph of such pairs into per-frame world pointmaps, focal lengths and camera-to-world poses,
as DUSt3R's global alignment does (Wang et al., CVPR 2024, sec. 3.4, eq. 5):

1. **Own-camera points and focal.** For each frame, its pointmap in its own camera (from a
   pair where it comes first; for a frame that never comes first, from a pair where it comes
   second, moved into its own camera by PnP). The focal of each frame is a robust,
   confidence-weighted (Weiszfeld) fit of ``u - cx = f X / Z, v - cy = f Y / Z``.
2. **Robust initialisation.** Per pair a relative similarity (own camera j -> own camera i)
   by confidence-weighted Umeyama. Spanning trees of the frame graph (the maximum-confidence
   tree, the same tree with each edge removed in turn, random trees) each give a chained
   placement of all frames; the placement that the most pairs agree with wins (RANSAC-like
   consensus), and pairs that disagree with it are marked outliers.
3. **Refinement.** Per-frame poses and focals and per-pair similarities minimise the
   confidence-weighted robust distance between each frame's world points (depth along its
   rays) and every pair's prediction mapped into the world by the pair's similarity (DUSt3R
   eq. 5), on a pixel subsample, with torch L-BFGS (or Adam). Unlike DUSt3R the depths are
   not free parameters: each is the closed-form (robustly reweighted) least-squares point on
   its ray nearest the predictions (variable projection), which makes the problem small and
   well conditioned. Gauge: frame 0's pose is the identity and the inlier pairs' scales have
   geometric mean 1 (so the world keeps the network's units).
4. **Full resolution.** The same per-pixel depth solve over each frame's inlier pairs, at
   every pixel.

Pixel convention (as DUSt3R/MASt3R): pixel ``(u, v)`` is the integer column/row index; its ray
is ``((u - cx) / f, (v - cy) / f, 1)`` with the principal point at ``(cx, cy) = (W/2, H/2)``.
In OpenCV's convention (pixel centres at integers) the intrinsics are therefore
``K = [[f, 0, W/2], [0, f, H/2], [0, 0, 1]]``.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from lift3d.checks import check_shape
from lift3d.errors import InputError

__all__ = [
    "AlignConfig",
    "AlignResult",
    "PairPrediction",
    "estimate_focal",
    "global_align",
    "pose_errors",
    "umeyama",
]


@dataclass
class PairPrediction:
    """MASt3R's output for the ordered pair of frames ``(i, j)``.

    pts_i: (H, W, 3) float32, frame i's points in camera i's frame (MASt3R ``pred1.pts3d``).
    pts_j: (H, W, 3) float32, frame j's points in camera i's frame
        (``pred2.pts3d_in_other_view``).
    conf_i, conf_j: (H, W) float32 confidences (>= 1, MASt3R's ``conf``).
    The pair's scale is arbitrary; both pointmaps share it.
    """

    i: int
    j: int
    pts_i: np.ndarray
    pts_j: np.ndarray
    conf_i: np.ndarray
    conf_j: np.ndarray


@dataclass(frozen=True)
class AlignConfig:
    """Knobs of :func:`global_align` (defaults sized for MASt3R's 512-pixel pointmaps)."""

    optimizer: Literal["lbfgs", "adam"] = "lbfgs"
    """Refinement optimiser: L-BFGS with a strong-Wolfe line search (converges in far fewer
    steps on this badly conditioned problem), or Adam with a cosine schedule as in DUSt3R."""
    iterations: int = 100
    """Refinement steps: L-BFGS iterations (100 converge on the tests' scenes) or Adam steps
    (Adam needs ~1000); 0 keeps the initialisation."""
    lbfgs_history: int = 20
    """L-BFGS memory (pairs of past steps)."""
    lr: float = 0.01
    """Adam learning rate; parameters are scaled so 0.01 is ~0.6 deg of rotation or ~1% of
    the median scene depth of translation per step."""
    lr_final_ratio: float = 0.01
    """Adam's cosine schedule ends at ``lr * lr_final_ratio``."""
    robust: Literal["cauchy", "huber", "l2"] = "cauchy"
    """Loss on the relative residual (distance / depth): Cauchy (robust to bad pixels and
    pairs), Huber, or ``l2`` = the plain Euclidean distance as in DUSt3R."""
    robust_scale: float = 0.05
    """Residual scale of the robust loss and of the robust per-pixel depth solve, relative to
    depth (0.05 = 5% of the depth)."""
    conf_transform: Literal["log", "linear"] = "log"
    """Pixel weight from MASt3R confidence: ``log(conf)`` (DUSt3R's default) or ``conf``."""
    min_conf: float = 1.0
    """Pixels with confidence below this get no weight."""
    max_pixels: int = 4096
    """Pixels per frame used by the initialisation and the refinement (a regular subsample);
    the returned pointmaps are full resolution."""
    shared_focal: bool = False
    """One focal length for all frames (same camera, no zoom) instead of one per frame."""
    inlier_rel_err: float = 0.1
    """A pair whose prediction disagrees with the consensus initialisation by more than this
    (mean point distance / median depth), or whose median residual after the refinement
    exceeds it (relative to depth), is an outlier."""
    drop_outlier_pairs: bool = True
    """Leave outlier pairs out of the refinement and the fused pointmaps."""
    n_random_trees: int = 32
    """Random spanning trees tried by the consensus initialisation (besides the
    maximum-confidence tree and its one-edge-removed variants)."""
    fit_iters: int = 4
    """Iteratively reweighted (Cauchy) passes of each pairwise similarity fit."""
    focal_iters: int = 10
    """Weiszfeld iterations of the focal fit."""
    focal_range: tuple[float, float] = (0.25, 10.0)
    """Focal estimates are clipped to this range, relative to the focal of a 60-degree field
    of view across the longer image side (0.25: ~120 degrees; 10: ~6 degrees)."""
    seed: int = 0
    """Seed of the random spanning trees."""
    device: str = "cpu"
    """Torch device of the refinement."""
    dtype: Literal["float32", "float64"] = "float32"
    """Torch dtype of the refinement (float32 is ample for the residuals and twice as fast)."""


@dataclass
class AlignResult:
    """Frames in one world frame.

    points: per frame (H, W, 3) float32 world points (depth along the frame's rays).
    conf: per frame (H, W) float32 confidence (max over the frame's inlier pairs, MASt3R scale).
    cam_to_world: (N, 4, 4) float64 poses, OpenCV axes (x right, y down, z forward); frame 0
        is the identity.
    focals: (N,) float64 focal lengths in pixels of the (H, W) images.
    pp: (N, 2) float64 principal points ``(W/2, H/2)``, integer pixel indices as pixel centres
        (see the module docstring).
    pair_inlier: (P,) bool, per input pair (in input order), False where the pair was judged
        an outlier and left out.
    """

    points: list[np.ndarray]
    conf: list[np.ndarray]
    cam_to_world: np.ndarray
    focals: np.ndarray
    pp: np.ndarray
    pair_inlier: np.ndarray = field(default_factory=lambda: np.zeros(0, bool))

    @property
    def K(self) -> np.ndarray:
        """(N, 3, 3) float64 OpenCV intrinsics (pixel centres at integer coordinates)."""
        K = np.zeros((len(self.focals), 3, 3))
        K[:, 0, 0] = K[:, 1, 1] = self.focals
        K[:, :2, 2] = self.pp
        K[:, 2, 2] = 1.0
        return K


# ---------------------------------------------------------------------------------------------
# Similarity fits and evaluation (reusable)


def umeyama(
    src: np.ndarray,
    dst: np.ndarray,
    weights: np.ndarray | None = None,
    with_scale: bool = True,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weighted least-squares similarity ``dst ~ s R src + t`` (Umeyama 1991), batched.

    src, dst: (..., N, 3) corresponding points; weights: (..., N) >= 0 or None (uniform).
    Returns scale s (...,), rotation R (..., 3, 3) (det +1), translation t (..., 3).
    With ``with_scale=False`` s is 1 (a rigid fit).
    """
    src = np.asarray(src, np.float64)
    dst = np.asarray(dst, np.float64)
    w = np.ones(src.shape[:-1]) if weights is None else np.asarray(weights, np.float64)
    w = w / np.maximum(w.sum(-1, keepdims=True), 1e-300)
    mu_s = (w[..., None] * src).sum(-2)
    mu_d = (w[..., None] * dst).sum(-2)
    xs = src - mu_s[..., None, :]
    xd = dst - mu_d[..., None, :]
    cov = np.einsum("...n,...ni,...nj->...ij", w, xd, xs)
    U, S, Vt = np.linalg.svd(cov)
    d = np.sign(np.linalg.det(U) * np.linalg.det(Vt))
    d = np.where(d == 0, 1.0, d)
    D = np.ones(S.shape)
    D[..., 2] = d
    R = U @ (D[..., :, None] * Vt)
    if with_scale:
        var_s = (w * (xs**2).sum(-1)).sum(-1)
        s = (S * D).sum(-1) / np.maximum(var_s, 1e-300)
    else:
        s = np.ones(S.shape[:-1])
    t = mu_d - s[..., None] * np.einsum("...ij,...j->...i", R, mu_s)
    return s, R, t


def pose_errors(
    cam_to_world: np.ndarray,
    gt_cam_to_world: np.ndarray,
    sim: tuple[float, np.ndarray, np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, tuple[float, np.ndarray, np.ndarray]]:
    """Per-camera errors after a similarity from the estimated onto the true world.

    cam_to_world, gt_cam_to_world: (N, 4, 4). sim: ``(s, R, t)``; by default the Umeyama fit
    of the estimated onto the true camera centres (needs N >= 3 non-collinear centres; for a
    nearly planar or straight trajectory its rotation is poorly fixed, so pass one fitted on
    points, e.g. ``umeyama(est_points, gt_points)``).
    Returns rotation errors (N,) in degrees, camera-centre errors (N,) in ground-truth units,
    and the similarity used.
    """
    s, R, t = umeyama(cam_to_world[:, :3, 3], gt_cam_to_world[:, :3, 3]) if sim is None else sim
    centres = s * cam_to_world[:, :3, 3] @ np.asarray(R).T + t
    rot = R @ cam_to_world[:, :3, :3]
    rel = np.swapaxes(gt_cam_to_world[:, :3, :3], -1, -2) @ rot
    cos = np.clip((np.trace(rel, axis1=-2, axis2=-1) - 1) / 2, -1.0, 1.0)
    rot_err = np.degrees(np.arccos(cos))
    trans_err = np.linalg.norm(centres - gt_cam_to_world[:, :3, 3], axis=-1)
    return rot_err, trans_err, (float(s), np.asarray(R), np.asarray(t))


def estimate_focal(
    pts: np.ndarray, weights: np.ndarray, pp: tuple[float, float], iters: int = 10
) -> float:
    """Robust focal (pixels) of a pointmap in its own camera, by Weiszfeld's algorithm.

    pts: (..., H, W, 3) points in the camera's own frame (several maps of the same camera may
    be stacked); weights: (..., H, W) >= 0; pp: principal point (cx, cy). Minimises
    ``sum w |(u - cx, v - cy) - f (X/Z, Y/Z)|`` (an L1-type fit, robust to bad pixels).
    """
    H, W = pts.shape[-3:-1]
    u, v = np.meshgrid(np.arange(W) - pp[0], np.arange(H) - pp[1])
    pix = np.stack([u, v], -1).reshape(-1, 2)
    return _focal_fit(pix, pts.reshape(-1, H * W, 3), np.reshape(weights, (-1, H * W)), iters)


def _focal_fit(pix: np.ndarray, pts: np.ndarray, w: np.ndarray, iters: int) -> float:
    """Weiszfeld focal fit: pix (M, 2) pixel offsets from the principal point, pts (K, M, 3)
    own-camera points at those pixels, w (K, M) weights."""
    z = np.asarray(pts[..., 2], np.float64)
    ok = z > 1e-12
    w = np.asarray(w, np.float64) * ok
    xy = np.asarray(pts[..., :2], np.float64) / np.where(ok, z, 1.0)[..., None]
    pix = np.broadcast_to(pix, xy.shape)
    f = (w[..., None] * xy * pix).sum() / max((w[..., None] * xy * xy).sum(), 1e-300)
    for _ in range(iters):
        ww = w / np.maximum(np.linalg.norm(pix - f * xy, axis=-1), 1e-6)
        f = (ww[..., None] * xy * pix).sum() / max((ww[..., None] * xy * xy).sum(), 1e-300)
    return float(f)


# ---------------------------------------------------------------------------------------------
# Small helpers on 4x4 similarity matrices (scale folded into the 3x3 block)


def _sim_matrix(s: np.ndarray, R: np.ndarray, t: np.ndarray) -> np.ndarray:
    M = np.zeros(np.shape(s) + (4, 4))
    M[..., :3, :3] = np.asarray(s)[..., None, None] * R
    M[..., :3, 3] = t
    M[..., 3, 3] = 1.0
    return M


def _sim_scale(M: np.ndarray) -> np.ndarray:
    return np.cbrt(np.linalg.det(M[..., :3, :3]))


def _apply(M: np.ndarray, X: np.ndarray) -> np.ndarray:
    """M (..., 4, 4) applied to points X (..., N, 3)."""
    return X @ np.swapaxes(M[..., :3, :3], -1, -2) + M[..., None, :3, 3]


def _pixel_weights(conf: np.ndarray, cfg: AlignConfig) -> np.ndarray:
    c = np.asarray(conf, np.float64)
    w = np.log(np.maximum(c, 1.0)) if cfg.conf_transform == "log" else c
    return np.where(c >= cfg.min_conf, w, 0.0)


def _robust_fit(src: np.ndarray, dst: np.ndarray, w: np.ndarray, iters: int) -> np.ndarray:
    """Batched similarity src -> dst (..., N, 3), reweighted by a Cauchy kernel; (..., 4, 4)."""
    scale = np.maximum(np.median(np.abs(dst[..., 2]), axis=-1), 1e-12)[..., None]
    ww = w
    for it in range(iters + 1):
        s, R, t = umeyama(src, dst, ww)
        M = _sim_matrix(s, R, t)
        if it == iters:
            break
        r = np.linalg.norm(_apply(M, src) - dst, axis=-1) / scale
        sigma = np.maximum(np.median(r, axis=-1, keepdims=True), 1e-3)
        ww = w / (1.0 + (r / (3 * sigma)) ** 2)
    return M


# ---------------------------------------------------------------------------------------------
# Step 1: own-camera points and focal


def _check_inputs(preds: list[PairPrediction], n_frames: int) -> tuple[int, int]:
    if n_frames < 1:
        raise InputError(f"n_frames must be >= 1, got {n_frames}")
    if not preds:
        raise InputError("global_align got no pair predictions", fix="pass at least one pair")
    H, W = preds[0].pts_i.shape[:2]
    for k, p in enumerate(preds):
        check_shape(f"preds[{k}].pts_i", p.pts_i, (H, W, 3), np.floating)
        check_shape(f"preds[{k}].pts_j", p.pts_j, (H, W, 3), np.floating)
        check_shape(f"preds[{k}].conf_i", p.conf_i, (H, W), np.floating)
        check_shape(f"preds[{k}].conf_j", p.conf_j, (H, W), np.floating)
        if not (0 <= p.i < n_frames and 0 <= p.j < n_frames):
            raise InputError(
                f"preds[{k}] names frames ({p.i}, {p.j}) outside 0..{n_frames - 1}",
                fix="pass n_frames = the number of frames the pairs index",
            )
    return H, W


def _check_connected(pairs: np.ndarray, n_frames: int) -> None:
    comp = _components(pairs, n_frames)
    if len(set(comp.tolist())) > 1:
        lonely = np.flatnonzero(comp != comp[0]).tolist()
        raise InputError(
            f"the pair graph does not connect frame 0 with frames {lonely}",
            fix="add pairs that link every frame to the others (e.g. a sliding window)",
        )


def _find(parent: np.ndarray, a: int) -> int:
    """Union-find root of ``a`` (with path halving; ``parent`` is updated in place)."""
    while parent[a] != a:
        parent[a] = parent[parent[a]]
        a = parent[a]
    return a


def _components(pairs: np.ndarray, n_frames: int) -> np.ndarray:
    parent = np.arange(n_frames)
    for a, b in pairs:
        parent[_find(parent, a)] = _find(parent, b)
    return np.array([_find(parent, a) for a in range(n_frames)])


@dataclass
class _Samples:
    """Every pair's predictions on the pixel subsample: pts (P, M, 3) float64, w (P, M)."""

    pts_i: np.ndarray
    pts_j: np.ndarray
    w_i: np.ndarray
    w_j: np.ndarray

    @classmethod
    def take(cls, preds: list[PairPrediction], sub: np.ndarray, cfg: AlignConfig) -> _Samples:
        def stack(name: str) -> np.ndarray:
            maps = [getattr(p, name) for p in preds]
            return np.stack([m.reshape((-1,) + m.shape[2:])[sub] for m in maps])

        return cls(
            stack("pts_i").astype(np.float64),
            stack("pts_j").astype(np.float64),
            _pixel_weights(stack("conf_i"), cfg),
            _pixel_weights(stack("conf_j"), cfg),
        )

    def __getitem__(self, k) -> _Samples:
        return _Samples(self.pts_i[k], self.pts_j[k], self.w_i[k], self.w_j[k])


def _own_points(
    preds: list[PairPrediction],
    smp: _Samples,
    n_frames: int,
    pix: np.ndarray,
    hw: tuple[int, int],
    cfg: AlignConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: subsampled own-camera points (N, M, 3), weights (N, M), the index of the pair
    they come from (N,) and the focal (N,). pix: (M, 2) subsample pixels (x, y)."""
    import cv2

    H, W = hw
    pp = np.array([W / 2.0, H / 2.0])
    I_ = np.array([p.i for p in preds])
    J_ = np.array([p.j for p in preds])
    focal = np.full(n_frames, np.nan)
    for f in np.unique(I_):
        focal[f] = _focal_fit(pix - pp, smp.pts_i[I_ == f], smp.w_i[I_ == f], cfg.focal_iters)
    base = _default_focal(H, W)
    known = np.isfinite(focal) & (focal > 0)
    focal = np.clip(focal, cfg.focal_range[0] * base, cfg.focal_range[1] * base)
    fallback = np.median(focal[known]) if known.any() else base
    if cfg.shared_focal:
        focal[:] = fallback
    else:
        focal[~known] = fallback

    own = np.zeros((n_frames,) + smp.pts_i.shape[1:])
    own_w = np.zeros((n_frames, len(pix)))
    src = np.zeros(n_frames, int)
    for f in range(n_frames):
        if (I_ == f).any():  # the most confident pair where f comes first
            k = int(np.argmax(np.where(I_ == f, smp.w_i.mean(-1), -np.inf)))
            own[f], own_w[f], src[f] = smp.pts_i[k], smp.w_i[k], k
            continue
        # Never first: the most confident pair where it comes second, moved into its own
        # camera by PnP with the (fallback) focal.
        k = int(np.argmax(np.where(J_ == f, smp.w_j.mean(-1), -np.inf)))
        X, w = smp.pts_j[k], smp.w_j[k]
        good = w >= np.quantile(w, 0.3)
        Kf = np.array([[focal[f], 0, pp[0]], [0, focal[f], pp[1]], [0, 0, 1.0]])
        ok, rvec, tvec, _ = cv2.solvePnPRansac(
            X[good],
            pix[good],
            Kf,
            None,
            reprojectionError=max(2.0, 0.01 * max(H, W)),
            iterationsCount=200,
            flags=cv2.SOLVEPNP_SQPNP,
        )
        if ok:
            own[f] = X @ cv2.Rodrigues(rvec)[0].T + tvec.reshape(1, 3)
        else:  # nonsense predictions: keep camera i's frame and let the refinement fix it
            warnings.warn(
                f"MASt3R alignment: frame {f} only ever comes second and PnP found no pose "
                "for it; its initial pose is a guess (add a pair where it comes first)",
                stacklevel=3,
            )
            own[f] = X
        own_w[f], src[f] = w, k
    return own, own_w, src, focal


def _default_focal(H: int, W: int) -> float:
    """Focal (pixels) of a 60-degree field of view across the longer side: the fallback when
    no frame ever comes first, and the reference of ``AlignConfig.focal_range``."""
    return max(H, W) / (2 * math.tan(math.radians(30)))


# ---------------------------------------------------------------------------------------------
# Step 2: consensus initialisation over spanning trees


def _relative_sims(
    pairs: np.ndarray,
    smp: _Samples,
    own: np.ndarray,
    own_w: np.ndarray,
    own_src: np.ndarray,
    cfg: AlignConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Per pair: A (pair frame -> own camera i) and rel (own camera j -> own camera i), 4x4.

    own_src: (N,) index into ``pairs`` of the pair each frame's own points come from
    (-1: another, e.g. a self pair)."""
    I_, J_ = pairs[:, 0], pairs[:, 1]
    eps = 1e-6  # keeps a fit defined where all confidences are at the floor
    A = _robust_fit(smp.pts_i, own[I_], smp.w_i * own_w[I_] + eps, cfg.fit_iters)
    A[own_src[I_] == np.arange(len(pairs))] = np.eye(4)  # own points come from this pair
    B = _robust_fit(own[J_], smp.pts_j, smp.w_j * own_w[J_] + eps, cfg.fit_iters)
    return A, A @ B


def _kruskal(order: np.ndarray, pairs: np.ndarray, n_frames: int) -> list[int]:
    parent = np.arange(n_frames)
    tree = []
    for k in order:
        a, b = _find(parent, pairs[k, 0]), _find(parent, pairs[k, 1])
        if a != b:
            parent[a] = b
            tree.append(int(k))
    return tree


def _chain(tree: list[int], pairs: np.ndarray, rel: np.ndarray, n_frames: int) -> np.ndarray:
    """World placements G (N, 4, 4): own camera f -> world, frame 0 at the identity."""
    G = np.full((n_frames, 4, 4), np.nan)
    G[0] = np.eye(4)
    adj: dict[int, list[int]] = {f: [] for f in range(n_frames)}
    for k in tree:
        adj[pairs[k, 0]].append(k)
        adj[pairs[k, 1]].append(k)
    stack = [0]
    while stack:
        a = stack.pop()
        for k in adj[a]:
            i, j = pairs[k]
            b = j if a == i else i
            if np.isnan(G[b, 0, 0]):
                G[b] = G[i] @ rel[k] if b == j else G[j] @ np.linalg.inv(rel[k])
                stack.append(b)
    return G


def _pair_errors(
    G: np.ndarray, pairs: np.ndarray, rel: np.ndarray, probe: np.ndarray
) -> np.ndarray:
    """Per pair: disagreement of its relative similarity with placements G (mean distance of
    frame j's probe points mapped both ways, over their median depth in camera i)."""
    I_, J_ = pairs[:, 0], pairs[:, 1]
    hat = np.linalg.inv(G[I_]) @ G[J_]
    a = _apply(rel, probe[J_])
    b = _apply(hat, probe[J_])
    depth = np.maximum(np.median(np.abs(a[..., 2]), axis=-1), 1e-12)
    return np.linalg.norm(a - b, axis=-1).mean(-1) / depth


def _consensus(
    pairs: np.ndarray,
    rel: np.ndarray,
    score: np.ndarray,
    probe: np.ndarray,
    n_frames: int,
    cfg: AlignConfig,
) -> tuple[np.ndarray, np.ndarray]:
    """Placements G (N, 4, 4) most pairs agree with, and the inlier mask (P,)."""
    tau = cfg.inlier_rel_err
    by_conf = np.argsort(-score, kind="stable")
    best_tree = _kruskal(by_conf, pairs, n_frames)
    trees = [best_tree]
    trees += [_kruskal(by_conf[by_conf != k], pairs, n_frames) for k in best_tree]
    rng = np.random.default_rng(cfg.seed)
    trees += [
        _kruskal(rng.permutation(len(pairs)), pairs, n_frames) for _ in range(cfg.n_random_trees)
    ]

    def evaluate(tree: list[int]) -> tuple[float, np.ndarray, np.ndarray]:
        if len(tree) < n_frames - 1:  # removing that edge disconnected the graph
            return -1.0, np.zeros(0), np.zeros(0)
        G = _chain(tree, pairs, rel, n_frames)
        e = _pair_errors(G, pairs, rel, probe)
        # MSAC score: inliers count by how well they agree, plus a small conf tie-break
        msac = np.clip(1 - (e / tau) ** 2, 0, None).sum()
        return float(msac + 1e-6 * score[e < tau].sum()), G, e

    best = max((evaluate(t) for t in trees), key=lambda r: r[0])
    # Re-grow the maximum-confidence tree inside the inliers until the consensus settles.
    for _ in range(3):
        inl = best[2] < tau
        cand = evaluate(_kruskal(by_conf[inl[by_conf]], pairs, n_frames))
        if cand[0] <= best[0]:
            break
        best = cand
    return best[1], best[2] < tau


# ---------------------------------------------------------------------------------------------
# Step 3: refinement (DUSt3R eq. 5 with per-frame depth on a pixel subsample)


def _rodrigues(w):
    import torch

    theta = torch.sqrt((w * w).sum(-1, keepdim=True) + 1e-20)
    k = w / theta
    K = torch.zeros(w.shape[:-1] + (3, 3), dtype=w.dtype, device=w.device)
    K[..., 0, 1], K[..., 0, 2] = -k[..., 2], k[..., 1]
    K[..., 1, 0], K[..., 1, 2] = k[..., 2], -k[..., 0]
    K[..., 2, 0], K[..., 2, 1] = -k[..., 1], k[..., 0]
    s, c = torch.sin(theta)[..., None], torch.cos(theta)[..., None]
    eye = torch.eye(3, dtype=w.dtype, device=w.device)
    return eye + s * K + (1 - c) * (K @ K)


def _irls_weight(r, cfg: AlignConfig):
    """The weight that makes a weighted least-squares step follow ``_rho`` (IRLS)."""
    x = r / cfg.robust_scale
    if cfg.robust == "cauchy":
        return 1 / (1 + x * x)
    if cfg.robust == "huber":
        return 1 / x.abs().clamp_min(1.0)
    return 1 / x.abs().clamp_min(1e-3)


def _rho(r, cfg: AlignConfig):
    import torch

    x = r / cfg.robust_scale
    if cfg.robust == "cauchy":
        return torch.log1p(x * x)
    if cfg.robust == "huber":
        a = x.abs()
        return torch.where(a < 1, 0.5 * x * x, a - 0.5)
    return x


def finite_closure(opt, objective):
    """An LBFGS closure whose loss is never NaN or infinite: a trial point where ``objective``
    is not finite counts as far worse than any other (1e30, no gradient). Torch's
    strong-Wolfe line search indexes past its bracket on a NaN loss (``IndexError: list index
    out of range``), which random-weight networks' nonsense pointmaps reached now and then;
    a diverged refinement is caught after the optimisation (the initialisation is kept)."""
    import torch

    def closure():
        opt.zero_grad()
        loss = objective()
        if not bool(torch.isfinite(loss)):
            return torch.tensor(1e30, dtype=loss.dtype)  # grads stay zero
        loss.backward()
        return loss

    return closure


def _refine(
    pose: np.ndarray,
    depth0: np.ndarray,
    focal: np.ndarray,
    T: np.ndarray,
    pairs: np.ndarray,
    Xi: np.ndarray,
    Xj: np.ndarray,
    wi: np.ndarray,
    wj: np.ndarray,
    pix: np.ndarray,
    pp: tuple[float, float],
    cfg: AlignConfig,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Refine poses (N, 4, 4), focals (N,) and pair similarities T (P, 4, 4) (DUSt3R eq. 5,
    depths eliminated). depth0: (N, M) initial depths, the residual normalisers.

    Returns the refined (pose, focal, T) and the per-pair median relative residual (P,)."""
    import torch

    dev = torch.device(cfg.device)
    dt = getattr(torch, cfg.dtype)
    tt = lambda a: torch.as_tensor(np.asarray(a), dtype=dt, device=dev)  # noqa: E731
    N, P = len(pose), len(T)
    scene = float(np.median(depth0))
    R0, t0 = tt(pose[:, :3, :3]), tt(pose[:, :3, 3])
    sT0 = _sim_scale(T)
    RT0, tT0 = tt(T[:, :3, :3] / sT0[:, None, None]), tt(T[:, :3, 3])
    free = torch.ones(N, 1, dtype=dt, device=dev)
    free[0] = 0.0  # gauge: frame 0 stays at the identity
    params = {
        "w": torch.zeros(N, 3, dtype=dt, device=dev),
        "t": torch.zeros(N, 3, dtype=dt, device=dev),
        "logf": tt(np.log(focal[:1] if cfg.shared_focal else focal)),
        "pw": torch.zeros(P, 3, dtype=dt, device=dev),
        "pt": torch.zeros(P, 3, dtype=dt, device=dev),
        "ps": tt(np.log(sT0)),
    }
    start = {k: v.clone() for k, v in params.items()}
    for p in params.values():
        p.requires_grad_(True)
    base = _default_focal(*(np.asarray(pp) * 2)[::-1])
    log_f_range = (math.log(cfg.focal_range[0] * base), math.log(cfg.focal_range[1] * base))
    # Every prediction of a frame's pixel: frame F[o] is seen by observation o (2P of them).
    F = torch.as_tensor(np.concatenate([pairs[:, 0], pairs[:, 1]]), device=dev)
    X_ = torch.cat([tt(Xi), tt(Xj)])  # (2P, M, 3) in the pair's frame
    W_ = torch.cat([tt(wi), tt(wj)])  # (2P, M)
    norm = tt(depth0)[F].clamp_min(1e-12)  # fixed normalisers: no incentive to inflate depth
    wsum = W_.sum().clamp_min(1e-12)
    active = (tt(wi).sum(-1) + tt(wj).sum(-1) > 0).to(dt)
    if not bool(active.any()):
        active = torch.ones_like(active)
    uv = tt(pix - np.asarray(pp))
    tiny = 1e-9  # keeps the depth solve defined where all weights vanish

    def depth_solve(D, C, Y, w):
        """Depth along each frame's rays minimising sum_o w |C + d D - Y|^2 (closed form)."""
        num = torch.zeros(N, len(uv), dtype=dt, device=dev).index_add(
            0, F, w * ((Y - C) * D).sum(-1)
        )
        den = torch.zeros(N, len(uv), dtype=dt, device=dev).index_add(0, F, w * (D * D).sum(-1))
        return num / den.clamp_min(1e-30)

    def forward():
        Rk = R0 @ _rodrigues(params["w"] * free)
        tk = t0 + scene * params["t"] * free
        f = params["logf"].clamp(*log_f_range).exp().expand(N)[:, None, None]
        rays = torch.cat([uv[None] / f, torch.ones_like(uv[None, :, :1]).expand(N, -1, -1)], -1)
        # gauge: the pairs that carry weight have geometric-mean scale 1 (a pair without
        # weight must not take part, or the world could shrink while its scale grows)
        ls = params["ps"] - (params["ps"] * active).sum() / active.sum()
        A = ls.exp()[:, None, None] * (RT0 @ _rodrigues(params["pw"]))
        tp = tT0 + scene * params["pt"]
        A2, tp2 = torch.cat([A, A]), torch.cat([tp, tp])
        Y = X_ @ A2.transpose(-1, -2) + tp2[:, None]  # predictions in the world
        D = (rays @ Rk.transpose(-1, -2))[F]  # world ray of the observed pixel
        C = tk[F][:, None]
        # Variable projection: each pixel's depth is the (robustly) weighted least-squares
        # point on its ray closest to all its predictions, so only cameras and pair
        # similarities are optimised -- far better conditioned than free depths.
        d = depth_solve(D, C, Y, W_ + tiny)
        r = (C + d[F][..., None] * D - Y).norm(dim=-1) / norm
        d = depth_solve(D, C, Y, W_ * _irls_weight(r, cfg) + tiny)
        r = (C + d[F][..., None] * D - Y).norm(dim=-1) / norm
        return Rk, tk, f, A, tp, r

    def objective():
        return (W_ * _rho(forward()[-1], cfg)).sum() / wsum

    if cfg.optimizer == "lbfgs":
        opt = torch.optim.LBFGS(
            params.values(),
            lr=1.0,
            max_iter=cfg.iterations,
            history_size=cfg.lbfgs_history,
            tolerance_grad=1e-9,
            tolerance_change=1e-12,
            line_search_fn="strong_wolfe",
        )

        opt.step(finite_closure(opt, objective))
    else:
        opt = torch.optim.Adam(params.values(), lr=cfg.lr)
        for it in range(cfg.iterations):
            frac = it / max(cfg.iterations - 1, 1)
            cos = 0.5 * (1 + math.cos(math.pi * frac))
            for g in opt.param_groups:
                g["lr"] = cfg.lr * (cfg.lr_final_ratio + (1 - cfg.lr_final_ratio) * cos)
            opt.zero_grad()
            objective().backward()
            opt.step()

    with torch.no_grad():
        out = forward()
        if not all(bool(torch.isfinite(v).all()) for v in out[:-1]):
            warnings.warn(
                "MASt3R alignment: the refinement diverged (nonsense predictions?); "
                "keeping the initialisation",
                stacklevel=3,
            )
            for k, v in params.items():
                v.copy_(start[k])
            out = forward()
        Rk, tk, f, A, tp, r = out
        r = torch.nan_to_num(r, nan=float("inf"))
        pose = np.tile(np.eye(4), (N, 1, 1))
        pose[:, :3, :3], pose[:, :3, 3] = _np(Rk), _np(tk)
        # re-orthonormalise: the float32 product drifts from SO(3) by ~1e-7
        U, _, Vt = np.linalg.svd(pose[:, :3, :3])
        pose[:, :3, :3] = U @ Vt
        T = np.tile(np.eye(4), (P, 1, 1))
        T[:, :3, :3], T[:, :3, 3] = _np(A), _np(tp)
        resid = 0.5 * (r[:P].median(-1).values + r[P:].median(-1).values)
        return pose, _np(f).reshape(N), T, _np(resid)


def _np(x) -> np.ndarray:
    return x.detach().cpu().numpy().astype(np.float64)


# ---------------------------------------------------------------------------------------------
# Step 4: full-resolution pointmaps


def _fuse(
    preds: list[PairPrediction],
    use: np.ndarray,
    T: np.ndarray,
    pose: np.ndarray,
    focal: np.ndarray,
    pp: tuple[float, float],
    cfg: AlignConfig,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Full-resolution world points (N x (H, W, 3)) and confidences (N x (H, W)).

    Each pixel's depth is the point on its ray closest (weighted least squares) to the
    predictions of the pairs in ``use``, as in the refinement; a second pass down-weights
    predictions far from the first estimate (robust loss), so one pair's error at an
    occlusion edge does not pull the others.
    """
    import torch

    n_frames = len(pose)
    H, W = preds[0].conf_i.shape
    u, v = np.meshgrid(np.arange(W) - pp[0], np.arange(H) - pp[1])
    rays = np.stack([u.reshape(-1) / focal[:, None], v.reshape(-1) / focal[:, None]], -1)
    rays = np.concatenate([rays, np.ones((n_frames, H * W, 1))], -1)  # (N, HW, 3)
    rr = (rays * rays).sum(-1)
    w2c = np.linalg.inv(pose)
    conf = np.ones((n_frames, H * W))
    obs = [
        (k, f, X, c)
        for k in np.flatnonzero(use)
        for f, X, c in (
            (preds[k].i, preds[k].pts_i, preds[k].conf_i),
            (preds[k].j, preds[k].pts_j, preds[k].conf_j),
        )
    ]
    d = None
    for _ in range(2):
        num = np.zeros((n_frames, H * W))
        den = np.full((n_frames, H * W), 1e-300)
        for k, f, X, c in obs:  # a loop over pairs (whole maps each), not pixels
            M = w2c[f] @ T[k]
            X = X.reshape(-1, 3)
            # column form: ~2x faster than (HW, 3) @ (3, 3) in numpy
            cam = X[:, :1] * M[:3, 0] + X[:, 1:2] * M[:3, 1] + X[:, 2:] * M[:3, 2] + M[:3, 3]
            w = _pixel_weights(c, cfg).reshape(-1) + 1e-6
            if d is not None:
                r = np.linalg.norm(cam - d[f][:, None] * rays[f], axis=-1)
                r /= np.maximum(np.abs(d[f]), 1e-12)
                w = w * _irls_weight(torch.from_numpy(r), cfg).numpy()
            num[f] += w * (cam * rays[f]).sum(-1)
            den[f] += w * rr[f]
            conf[f] = np.maximum(conf[f], c.reshape(-1))
        d = num / den
    points = []
    for f in range(n_frames):
        z = np.maximum(d[f], 1e-6 * max(np.median(d[f]), 1e-12))
        cam = z[:, None] * rays[f]
        points.append(_apply(pose[f], cam).reshape(H, W, 3).astype(np.float32))
    return points, [c.reshape(H, W).astype(np.float32) for c in conf]


# ---------------------------------------------------------------------------------------------
# Public entry point


def global_align(
    preds: list[PairPrediction], n_frames: int, cfg: AlignConfig = AlignConfig()
) -> AlignResult:
    """Align pairwise MASt3R predictions into one world frame (see the module docstring).

    preds: pair predictions over frames ``0..n_frames-1``; pairs may come in one or both
        directions; the pair graph must connect all frames. Pairs ``(i, i)`` only inform
        frame i's own points and focal.
    Returns an :class:`AlignResult` with frame 0 at the identity pose, world units = the
    geometric mean of the pairs' units.
    """
    H, W = _check_inputs(preds, n_frames)
    pp = (W / 2.0, H / 2.0)
    stride = max(1, math.ceil(math.sqrt(H * W / max(cfg.max_pixels, 1))))
    yy, xx = np.mgrid[stride // 2 : H : stride, stride // 2 : W : stride]
    sub = (yy * W + xx).reshape(-1)
    pix = np.stack([xx.reshape(-1), yy.reshape(-1)], -1).astype(np.float64)

    cross = [k for k, p in enumerate(preds) if p.i != p.j]
    pairs = np.array([[preds[k].i, preds[k].j] for k in cross], int).reshape(-1, 2)
    _check_connected(pairs, n_frames)
    smp_all = _Samples.take(preds, sub, cfg)
    own, own_w, own_src, focal = _own_points(preds, smp_all, n_frames, pix, (H, W), cfg)
    inlier = np.zeros(len(preds), bool)
    if n_frames == 1:
        return _single_frame(preds, own_src, focal, pp, inlier)
    cp, smp = [preds[k] for k in cross], smp_all[cross]
    A, rel = _relative_sims(pairs, smp, own, own_w, _local_index(own_src, cross, len(preds)), cfg)
    score = smp.w_i.mean(-1) * smp.w_j.mean(-1)
    probe = own[:, :: max(1, len(sub) // 256)]
    G, inl = _consensus(pairs, rel, score, probe, n_frames, cfg)
    if not cfg.drop_outlier_pairs:
        inl = np.ones(len(cp), bool)

    # Gauge: the pairs' similarities (pair frame -> world) have geometric-mean scale 1.
    T = G[pairs[:, 0]] @ A
    c = math.exp(-np.log(_sim_scale(T)[inl]).mean())
    G[:, :3, :] *= c
    T[:, :3, :] *= c
    sG = _sim_scale(G)
    pose = G.copy()
    pose[:, :3, :3] /= sG[:, None, None]
    depth0 = own[..., 2] * sG[:, None]
    depth0 = np.maximum(depth0, 1e-6 * max(np.median(np.abs(depth0)), 1e-12))

    if cfg.iterations > 0:
        w_i, w_j = smp.w_i * inl[:, None], smp.w_j * inl[:, None]
        pose, focal, T, resid = _refine(
            pose, depth0, focal, T, pairs, smp.pts_i, smp.pts_j, w_i, w_j, pix, pp, cfg
        )
        if cfg.drop_outlier_pairs:
            inl &= resid < cfg.inlier_rel_err
            inl = _keep_every_frame(inl, resid, pairs, n_frames)
    inlier[cross] = inl
    points, conf = _fuse(cp, inl, T, pose, focal, pp, cfg)
    pps = np.tile(np.array(pp), (n_frames, 1))
    return AlignResult(points, conf, pose, np.asarray(focal, np.float64), pps, inlier)


def _local_index(own_src: np.ndarray, cross: list[int], n_preds: int) -> np.ndarray:
    """Re-index the own-points source pairs into the list of cross pairs (-1 = a self pair)."""
    to_local = np.full(n_preds, -1)
    to_local[cross] = np.arange(len(cross))
    return to_local[own_src]


def _keep_every_frame(inl: np.ndarray, resid: np.ndarray, pairs: np.ndarray, n: int) -> np.ndarray:
    """Every frame keeps at least its best-agreeing pair, so each gets a pointmap."""
    inl = inl.copy()
    for f in range(n):
        mine = np.flatnonzero((pairs == f).any(-1))
        if not inl[mine].any():
            inl[mine[np.argmin(resid[mine])]] = True
    return inl


def _single_frame(preds, own_src, focal, pp, inlier) -> AlignResult:
    p = preds[own_src[0]]
    inlier[own_src[0]] = True
    return AlignResult(
        [p.pts_i.astype(np.float32)],
        [p.conf_i.astype(np.float32)],
        np.eye(4)[None],
        focal[:1].astype(np.float64),
        np.array([pp]),
        inlier,
    )
