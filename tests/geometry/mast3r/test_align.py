"""Global alignment on synthetic pairwise predictions made from a ray-cast ground-truth scene.

The scene (a room with a few boxes and spheres) is rendered with Open3D's RaycastingScene from
cameras on an arc; each pair prediction is the true geometry in camera i, with ~1%
multiplicative noise, a random unknown per-pair scale and random confidences, the way MASt3R's
output looks to the aligner.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import open3d as o3d
import pytest
import torch

from lift3d.cameras import look_at
from lift3d.errors import InputError, ShapeError
from lift3d.geometry.mast3r.align import (
    AlignConfig,
    PairPrediction,
    estimate_focal,
    global_align,
    pose_errors,
    umeyama,
)

H, W = 48, 64
FOCAL = 52.0
# A quarter of the pixels: the same accuracy here, 4x less time.
# benchmarks/mast3r_align.py measures the defaults.
FAST = AlignConfig(max_pixels=768)


@pytest.fixture(scope="module", autouse=True)
def _one_torch_thread():
    """Small problems: a second thread only adds contention on a shared 2-core machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)




def _rays(h: int, w: int, focal: float) -> np.ndarray:
    """(h, w, 3) camera rays with z = 1 (integer pixel indices, principal point w/2, h/2)."""
    u, v = np.meshgrid(np.arange(w) - w / 2, np.arange(h) - h / 2)
    return np.stack([u / focal, v / focal, np.ones_like(u)], -1)


class Truth:
    """A ray-cast room seen by ``n_frames`` cameras on an arc (one focal, OpenCV axes).

    poses (N, 4, 4) camera-to-world; depth (N, h, w) z-depth; cam / world (N, h, w, 3) points in
    each camera / in the world; size: bounding-box diagonal of all seen points.
    """

    def __init__(self, n_frames: int, h: int = H, w: int = W, focal: float = FOCAL):
        self.h, self.w, self.focal = h, w, focal
        scene = o3d.t.geometry.RaycastingScene()
        room = o3d.geometry.TriangleMesh.create_box(6.0, 6.0, 3.0).translate((-3.0, -3.0, 0.0))
        meshes = [
            room,
            o3d.geometry.TriangleMesh.create_box(0.8, 0.6, 0.9).translate((-0.9, -0.3, 0.0)),
            o3d.geometry.TriangleMesh.create_box(0.5, 0.5, 1.4).translate((0.6, 0.5, 0.0)),
            o3d.geometry.TriangleMesh.create_sphere(0.45).translate((0.3, -0.8, 0.45)),
            o3d.geometry.TriangleMesh.create_sphere(0.3).translate((-0.2, 0.9, 1.2)),
        ]
        for m in meshes:
            scene.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(m))
        angles = np.radians(np.linspace(-70, 50, n_frames))
        target = np.array([0.0, 0.0, 0.6])
        self.poses = np.stack(
            [
                look_at(
                    np.array([2.4 * np.cos(a), 2.4 * np.sin(a), 1.3 + 0.2 * np.sin(3 * a)]), target
                )
                for a in angles
            ]
        )
        rays = _rays(h, w, focal)
        dirs = np.einsum("nij,hwj->nhwi", self.poses[:, :3, :3], rays)
        origins = np.broadcast_to(self.poses[:, None, None, :3, 3], dirs.shape)
        query = np.concatenate([origins, dirs], -1).astype(np.float32)
        depth = scene.cast_rays(o3d.core.Tensor(query))["t_hit"].numpy()
        assert np.isfinite(depth).all()
        self.depth = depth.astype(np.float64)  # (N, H, W) z-depth since rays have z = 1
        self.cam = self.depth[..., None] * rays  # own-camera points
        self.world = np.einsum("nij,nhwj->nhwi", self.poses[:, :3, :3], self.cam)
        self.world += self.poses[:, None, None, :3, 3]
        pts = self.world.reshape(-1, 3)
        self.size = float(np.linalg.norm(pts.max(0) - pts.min(0)))  # bounding-box diagonal

    def pair(
        self,
        i: int,
        j: int,
        rng: np.random.Generator,
        corrupt: bool = False,
        noise: float = 0.01,
        warp: float = 0.0,
        focal_jitter: float = 0.01,
    ) -> PairPrediction:
        """What MASt3R would predict for (i, j): truth in camera i, noisy, at a random scale.

        noise: per-pixel relative noise; warp: amplitude of a smooth (bilinear) relative depth
        distortion per pointmap; focal_jitter: relative spread of the focal each pointmap
        implies (its x, y scaled in its own camera), so that pairs disagree the way a
        network's predictions do.
        """
        lateral = 1 + focal_jitter * rng.normal(size=2)
        to_i = np.linalg.inv(self.poses[i]) @ self.poses[j]
        pts_i = self.cam[i] * [lateral[0], lateral[0], 1.0]
        pts_j = (self.cam[j] * [lateral[1], lateral[1], 1.0]) @ to_i[:3, :3].T + to_i[:3, 3]
        if corrupt:  # a confident but wrong relative pose (what a symmetric scene can cause)
            ax = rng.normal(size=3)
            rot = o3d.geometry.get_rotation_matrix_from_axis_angle(
                np.radians(35) * ax / np.linalg.norm(ax)
            )
            pts_j = (pts_j - pts_j.mean((0, 1))) @ rot.T + pts_j.mean((0, 1)) + [0.6, -0.3, 0.4]
        scale = np.exp(rng.uniform(np.log(0.5), np.log(2.0)))
        out = []
        for p in (pts_i, pts_j):
            # a corrupted pair is more confident than any good one, so it heads the max-conf tree
            shape = p.shape[:2]
            conf = rng.uniform(1.5, 10.0, size=shape) * (2.0 if corrupt else 1.0)
            mult = 1 + noise * rng.normal(size=shape + (1,))  # along the ray from camera i
            mult = mult + 0.3 * noise * rng.normal(size=shape + (3,))
            y, x = np.meshgrid(
                np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij"
            )
            c = warp * rng.uniform(-1, 1, size=3)
            mult = mult * (1 + c[0] * x + c[1] * y + c[2] * x * y)[..., None]
            out += [(scale * p * mult).astype(np.float32), conf.astype(np.float32)]
        return PairPrediction(i, j, out[0], out[2], out[1], out[3])


@pytest.fixture(scope="module")
def truth() -> Truth:
    return Truth(8)


def _window(n: int, w: int, both: bool) -> list[tuple[int, int]]:
    edges = [(i, j) for i in range(n) for j in range(i + 1, min(n, i + w + 1))]
    return edges + [(j, i) for i, j in edges] if both else edges


def _assert_recovers(truth: Truth, res, n: int) -> None:
    rot, trans, (s, R, t) = pose_errors(res.cam_to_world, truth.poses[:n])
    assert rot.max() < 1.0, rot
    assert trans.max() < 0.02 * truth.size, (trans, truth.size)
    np.testing.assert_allclose(res.focals, FOCAL, rtol=0.03)
    # world pointmaps match the truth after the same similarity (median, 2% of scene size)
    pts = s * np.stack(res.points).reshape(-1, 3) @ R.T + t
    err = np.linalg.norm(pts - truth.world[:n].reshape(-1, 3), axis=-1)
    assert np.median(err) < 0.02 * truth.size
    np.testing.assert_allclose(res.cam_to_world[0], np.eye(4), atol=1e-9)


def test_recovers_poses_sliding_window_both_directions(truth: Truth):
    rng = np.random.default_rng(1)
    preds = [truth.pair(i, j, rng) for i, j in _window(8, 2, both=True)]
    res = global_align(preds, 8, FAST)
    _assert_recovers(truth, res, 8)
    assert res.pair_inlier.all()
    # the refinement earns its keep: well below the chained initialisation's errors
    init = global_align(preds, 8, dataclasses.replace(FAST, iterations=0))
    rot0, trans0, _ = pose_errors(init.cam_to_world, truth.poses)
    rot, trans, _ = pose_errors(res.cam_to_world, truth.poses)
    assert rot.mean() < 0.6 * rot0.mean() and trans.mean() < 0.5 * trans0.mean()
    assert res.points[0].shape == (H, W, 3) and res.points[0].dtype == np.float32
    assert res.conf[0].shape == (H, W) and (res.conf[0] >= 1).all()
    np.testing.assert_allclose(res.pp, np.tile([W / 2, H / 2], (8, 1)))


def test_points_lie_on_the_returned_cameras(truth: Truth):
    """Each world pointmap reprojects onto its own pixel grid through K and the pose."""
    rng = np.random.default_rng(2)
    preds = [truth.pair(i, j, rng) for i, j in _window(4, 1, both=True)]
    res = global_align(preds, 4, AlignConfig(iterations=30))
    u, v = np.meshgrid(np.arange(W), np.arange(H))
    for f in range(4):
        w2c = np.linalg.inv(res.cam_to_world[f])
        cam = res.points[f].reshape(-1, 3) @ w2c[:3, :3].T + w2c[:3, 3]
        uvw = cam @ res.K[f].T
        np.testing.assert_allclose(uvw[:, 0] / uvw[:, 2], u.reshape(-1), atol=1e-2)
        np.testing.assert_allclose(uvw[:, 1] / uvw[:, 2], v.reshape(-1), atol=1e-2)


def test_consecutive_pairs_one_direction(truth: Truth):
    """Frame 7 never comes first: its own-camera points come from PnP."""
    rng = np.random.default_rng(3)
    preds = [truth.pair(i, i + 1, rng) for i in range(7)]
    res = global_align(preds, 8, FAST)
    _assert_recovers(truth, res, 8)


def test_bad_pairs_do_not_break_it(truth: Truth):
    rng = np.random.default_rng(4)
    edges = _window(8, 2, both=True)
    bad = {(2, 3), (5, 4)}  # confident, wrong; one of each direction
    preds = [truth.pair(i, j, rng, corrupt=(i, j) in bad) for i, j in edges]
    res = global_align(preds, 8, FAST)
    _assert_recovers(truth, res, 8)
    flagged = {edges[k] for k in np.flatnonzero(~res.pair_inlier)}
    assert flagged == bad


def test_all_pairs_shared_focal(truth: Truth):
    rng = np.random.default_rng(5)
    n = 5
    preds = [truth.pair(i, j, rng) for i in range(n) for j in range(n) if i != j]
    res = global_align(preds, n, AlignConfig(max_pixels=768, shared_focal=True, robust="huber"))
    _assert_recovers(truth, res, n)
    assert np.ptp(res.focals) == 0


def test_umeyama_recovers_a_weighted_batched_similarity():
    rng = np.random.default_rng(6)
    src = rng.normal(size=(3, 50, 3))
    q, _ = np.linalg.qr(rng.normal(size=(3, 3, 3)))
    R = q * np.sign(np.linalg.det(q))[:, None, None]
    s = np.array([0.5, 1.0, 3.0])
    t = rng.normal(size=(3, 3))
    dst = s[:, None, None] * src @ np.swapaxes(R, 1, 2) + t[:, None]
    w = np.ones((3, 50))
    dst[:, :5] += 10.0  # outliers that carry no weight
    w[:, :5] = 0.0
    s2, R2, t2 = umeyama(src, dst, w)
    np.testing.assert_allclose(s2, s, rtol=1e-9)
    np.testing.assert_allclose(R2, R, atol=1e-9)
    np.testing.assert_allclose(t2, t, atol=1e-9)
    s3, R3, _ = umeyama(src[0], dst[0], w[0], with_scale=False)
    assert s3 == 1.0 and np.isclose(np.linalg.det(R3), 1.0)


def test_estimate_focal_ignores_a_few_bad_pixels(truth: Truth):
    pts = truth.cam[0].copy()
    pts[:5] *= [3.0, 0.2, 1.0]  # five rows of nonsense
    f = estimate_focal(pts, np.ones((H, W)), (W / 2, H / 2))
    assert abs(f - FOCAL) / FOCAL < 0.01


def test_disconnected_graph_and_bad_shapes_raise(truth: Truth):
    rng = np.random.default_rng(7)
    preds = [truth.pair(0, 1, rng), truth.pair(2, 3, rng)]
    with pytest.raises(InputError, match="does not connect"):
        global_align(preds, 4)
    with pytest.raises(InputError, match="outside"):
        global_align(preds, 3)
    p = preds[0]
    bad = PairPrediction(0, 1, p.pts_i[:, :, :2], p.pts_j, p.conf_i, p.conf_j)
    with pytest.raises(ShapeError, match="pts_i"):
        global_align([bad], 2)


@pytest.mark.filterwarnings("ignore:MASt3R alignment")
def test_nonsense_predictions_give_finite_results():
    """Random pointmaps (an untrained network) must not crash or produce NaNs."""
    rng = np.random.default_rng(8)
    preds = [
        PairPrediction(
            i,
            j,
            *rng.normal(size=(2, H, W, 3)).astype(np.float32),
            *(1 + rng.exponential(size=(2, H, W))).astype(np.float32),
        )
        for i, j in _window(3, 1, both=True)
    ]
    cfg = AlignConfig(max_pixels=256, iterations=20)
    for some in (preds, preds[:2]):  # both directions; one direction (frame 2 via PnP)
        res = global_align(some, 3, cfg)
        assert all(np.isfinite(p).all() for p in res.points)
        assert np.isfinite(res.cam_to_world).all() and (res.focals > 0).all()


def test_single_frame_from_its_self_pair(truth: Truth):
    p = truth.pair(0, 0, np.random.default_rng(9))
    res = global_align([p], 1)
    np.testing.assert_array_equal(res.cam_to_world, np.eye(4)[None])
    np.testing.assert_array_equal(res.points[0], p.pts_i)
    np.testing.assert_allclose(res.focals, FOCAL, rtol=0.02)


def test_adam_refinement_as_in_dust3r(truth: Truth):
    rng = np.random.default_rng(10)
    preds = [truth.pair(i, j, rng) for i, j in _window(5, 1, both=True)]
    cfg = AlignConfig(optimizer="adam", iterations=300, max_pixels=512, robust="l2")
    res = global_align(preds, 5, cfg)
    _assert_recovers(truth, res, 5)


def test_the_refinement_survives_a_nan_loss_in_the_line_search():
    """Torch's strong-Wolfe LBFGS indexes past its bracket when a trial point's loss is NaN
    (IndexError: list index out of range), which random-weight MASt3R's pointmaps reached
    now and then in CI (test_resumed_mast3r_run_does_no_pair_inference). Through
    ``finite_closure`` such a point is only a very bad one: here (x - 3)^2, NaN from x = 1
    on (where the first step lands), the search stays where the loss is finite instead of
    raising; a plain closure raises."""
    import pytest
    import torch

    from lift3d.geometry.mast3r.align import finite_closure

    def run(make_closure):
        x = torch.zeros(1, requires_grad=True)

        def objective():
            v = ((x - 3) ** 2).sum()
            return torch.where(x.sum() < 1, v, torch.full_like(v, float("nan")))

        opt = torch.optim.LBFGS([x], lr=1.0, max_iter=20, line_search_fn="strong_wolfe")
        opt.step(make_closure(opt, objective))
        return float(x.detach())

    def plain(opt, objective):
        def closure():
            opt.zero_grad()
            loss = objective()
            loss.backward()
            return loss
        return closure

    with pytest.raises(IndexError):
        run(plain)
    assert 0.0 <= run(finite_closure) < 1.0
