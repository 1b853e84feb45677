"""Fusion: the vectorised vote and voxel means against plain loops."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lift3d.fuse import FuseConfig, fuse_points, pixel_normals, vote


def vote_reference(group, labels, weights, n_groups, unlabelled_votes=True):
    out_l = np.zeros(n_groups, np.int32)
    out_c = np.zeros(n_groups, np.float32)
    for g in range(n_groups):
        tally: dict[int, float] = {}
        for gg, lab, w in zip(group, labels, weights):
            if gg != g or (not unlabelled_votes and lab == 0):
                continue
            tally[int(lab)] = tally.get(int(lab), 0.0) + max(float(w), 1e-12)
        if not tally:
            continue
        best = min(tally, key=lambda k: (-tally[k], k))
        out_l[g] = best
        out_c[g] = tally[best] / sum(tally.values())
    return out_l, out_c


@settings(max_examples=60, deadline=None)
@given(
    st.integers(1, 6), st.integers(1, 80), st.integers(0, 2**31 - 1), st.booleans(),
)
def test_vote_matches_loop(n_groups, n, seed, unlabelled_votes):
    rng = np.random.default_rng(seed)
    group = rng.integers(0, n_groups, n)
    labels = rng.integers(0, 4, n)
    weights = rng.choice([0.0, 0.5, 1.0, 2.0], n)
    got_l, got_c = vote(group, labels, weights, n_groups, unlabelled_votes)
    ref_l, ref_c = vote_reference(group, labels, weights, n_groups, unlabelled_votes)
    np.testing.assert_array_equal(got_l, ref_l)
    np.testing.assert_allclose(got_c, ref_c, rtol=1e-5)


def test_fuse_points_means_and_counts():
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, 1, (500, 3))
    cols = rng.integers(0, 256, (500, 3)).astype(np.uint8)
    nrm = np.tile([0.0, 0.0, 1.0], (500, 1))
    labels = (pts[:, 0] > 0.5).astype(np.int32) + 1
    cloud = fuse_points(pts, cols, nrm, labels, np.ones(500), voxel=0.25)
    keys = np.floor(pts / 0.25).astype(int)
    uniq = np.unique(keys, axis=0)
    assert len(cloud) == len(uniq)
    for k in range(len(uniq)):
        sel = (keys == uniq[k]).all(1)
        j = np.argmin(np.abs(cloud.points - pts[sel].mean(0)).sum(1))
        np.testing.assert_allclose(cloud.points[j], pts[sel].mean(0), atol=1e-6)
        assert cloud.n_obs[j] == sel.sum()
        assert cloud.labels[j] == np.bincount(labels[sel]).argmax()
    np.testing.assert_allclose(cloud.normals, np.tile([0, 0, 1.0], (len(cloud), 1)), atol=1e-6)
    assert (cloud.label_conf > 0.49).all() and (cloud.label_conf <= 1).all()


def test_fuse_min_obs_drops_sparse_voxels():
    pts = np.array([[0.1, 0.1, 0.1], [0.12, 0.1, 0.1], [5.0, 5, 5]])
    cloud = fuse_points(pts, np.zeros((3, 3), np.uint8), np.zeros((3, 3)), np.array([1, 1, 2]),
                        np.ones(3), voxel=1.0, cfg=FuseConfig(min_obs=2))
    assert len(cloud) == 1 and cloud.labels[0] == 1 and cloud.n_obs[0] == 2


def test_pixel_normals_face_the_camera():
    # a fronto-parallel plane z = 2 seen by a camera at the origin: normals point to -z
    h, w = 6, 8
    xs, ys = np.meshgrid(np.arange(w), np.arange(h))
    pts = np.stack([xs * 0.1, ys * 0.1, np.full_like(xs, 2.0, float)], -1).astype(np.float32)
    n = pixel_normals(pts, np.zeros(3))
    np.testing.assert_allclose(n[1:-1, 1:-1], np.broadcast_to([0, 0, -1.0], (h - 2, w - 2, 3)), atol=1e-6)
    assert (n[0] == 0).all()


def _observations(rng, n, spread=1.0):
    pts = rng.normal(size=(n, 3)) * spread
    cols = rng.integers(0, 256, (n, 3)).astype(np.uint8)
    nrm = rng.normal(size=(n, 3)).astype(np.float32)
    return pts, cols, nrm, rng.integers(0, 5, n), rng.choice([0.0, 0.3, 1.0], n)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(0, 2**31 - 1), st.booleans(), st.integers(1, 3))
def test_accumulator_frame_by_frame_equals_all_at_once(n_frames, seed, unlabelled_votes, min_obs):
    """Streaming fusion (one frame at a time) gives the cloud of fusing every observation at
    once, bit for bit."""
    from lift3d.fuse import FuseAccumulator

    rng = np.random.default_rng(seed)
    cfg = FuseConfig(unlabelled_votes=unlabelled_votes, min_obs=min_obs)
    frames = [_observations(rng, int(rng.integers(0, 300))) for _ in range(n_frames)]
    acc = FuseAccumulator(0.3, cfg)
    for f in frames:
        acc.add(*f)
    got = acc.cloud()
    ref = fuse_points(*(np.concatenate([f[k] for f in frames]) for k in range(5)), voxel=0.3,
                      cfg=cfg)
    for name in ("points", "colors", "normals", "labels", "label_conf", "n_obs"):
        np.testing.assert_array_equal(getattr(got, name), getattr(ref, name), err_msg=name)


def test_fusion_of_a_scene_wider_than_the_key_packing():
    """Points millions of voxels apart (an alignment gone wrong): one point per voxel, in
    lexicographic voxel order as for any scene (on old main the packed key overflowed int64
    and scrambled the order; distinct voxels could even share a key)."""
    from lift3d.fuse import FuseAccumulator

    rng = np.random.default_rng(3)
    near = _observations(rng, 200)
    far = _observations(rng, 200, spread=3e5)
    cloud = fuse_points(*(np.concatenate([a, b]) for a, b in zip(near, far)), voxel=0.05)
    keys = np.floor(np.concatenate([near[0], far[0]]) / 0.05).astype(np.int64)
    uniq, n = np.unique(keys, axis=0, return_counts=True)
    assert len(cloud) == len(uniq)
    np.testing.assert_array_equal(np.sort(cloud.n_obs), np.sort(n))
    q = np.floor(cloud.points.astype(np.float64) / 0.05).astype(np.int64)
    np.testing.assert_array_equal(np.lexsort(q.T[::-1]), np.arange(len(q)))
    acc = FuseAccumulator(0.05)
    acc.add(*near)  # in the packing's range: int64 keys, then widened by the far frame
    acc.add(*far)
    np.testing.assert_array_equal(acc.cloud().points, cloud.points)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 4), st.integers(0, 2**31 - 1), st.booleans())
def test_cloud_under_a_lookup_table_equals_fusing_merged_labels(n_frames, seed, unlabelled_votes):
    """``cloud(lut)`` (the association's merges applied to the votes) gives the labels of
    fusing frames whose IDs were merged from the start."""
    from lift3d.fuse import FuseAccumulator

    rng = np.random.default_rng(seed)
    cfg = FuseConfig(unlabelled_votes=unlabelled_votes)
    frames = [_observations(rng, int(rng.integers(1, 300))) for _ in range(n_frames)]
    lut = np.array([0, 1, 1, 3, 1])  # 2 and 4 merge into 1; label 5+ is beyond the table
    acc, merged = FuseAccumulator(0.3, cfg), FuseAccumulator(0.3, cfg)
    for p, c, n, lab, w in frames:
        acc.add(p, c, n, lab, w)
        merged.add(p, c, n, lut[lab], w)
    got, ref = acc.cloud(lut), merged.cloud()
    np.testing.assert_array_equal(got.labels, ref.labels)
    np.testing.assert_allclose(got.label_conf, ref.label_conf, rtol=1e-6)
    np.testing.assert_array_equal(got.points, ref.points)
    votes = acc.votes()
    assert np.all(np.diff(votes.pair_voxel) >= 0)
    voting = [np.maximum(f[4], 1e-12)[(f[3] > 0) | unlabelled_votes] for f in frames]
    np.testing.assert_allclose(votes.pair_weight.sum(), sum(v.sum() for v in voting))


def _frame(points: np.ndarray, labels: np.ndarray, valid: np.ndarray | None = None):
    """A (1, N) frame of the given world points and IDs (every pixel valid by default)."""
    from lift3d.types import PointMaps

    n = len(points)
    valid = np.ones(n, bool) if valid is None else valid
    pm = PointMaps(points.reshape(1, n, 3).astype(np.float32), np.ones((1, n), np.float32),
                   valid.reshape(1, n))
    return pm, np.asarray(labels, np.int32).reshape(1, n)


def test_fused_labels_give_each_pixel_its_voxels_winner():
    """Three frames see four voxels; a frame whose pixel disagrees with what the other views
    voted takes the winner, a voxel where "unlabelled" won leaves the pixel's own ID, a point
    in no voxel or without valid 3D keeps its ID too; under the merges' table the winner is
    the merged ID, and the cloud carries the same verdict."""
    from lift3d.fuse import FuseAccumulator

    pts = np.array([[0.1, 0.1, 0.1], [1.1, 0.1, 0.1], [2.1, 0.1, 0.1], [3.1, 0.1, 0.1]])
    acc = FuseAccumulator(1.0)
    for lab in ([5, 7, 0, 2], [5, 7, 0, 3], [6, 9, 4, 3]):
        pm, labels = _frame(pts, lab)
        acc.add_frame(pm, np.zeros((1, 4, 3), np.uint8), labels, np.zeros((1, 4, 3)))
    fused = acc.labels()
    np.testing.assert_array_equal(fused.label, [5, 7, 0, 3])
    np.testing.assert_allclose(fused.conf, [2 / 3, 2 / 3, 2 / 3, 2 / 3], rtol=1e-6)
    np.testing.assert_array_equal(fused.at(np.vstack([pts, [[9.5, 0.1, 0.1]]])), [5, 7, 0, 3, 0])
    pm, labels = _frame(np.vstack([pts, [[9.5, 0.1, 0.1]]]), [6, 9, 4, 2, 8],
                        valid=np.array([True, False, True, True, True]))
    np.testing.assert_array_equal(fused.project(labels, pm), [[5, 9, 4, 3, 8]])
    merged = acc.labels(np.array([0, 0, 2, 3, 4, 5, 5, 5]))  # 6 and 7 -> 5: 2 / 3 + 1 / 3
    np.testing.assert_array_equal(merged.label, [5, 5, 0, 3])
    np.testing.assert_allclose(merged.conf, [1, 2 / 3, 2 / 3, 2 / 3], rtol=1e-6)
    np.testing.assert_array_equal(acc.cloud(labels=merged).labels, merged.label)
    np.testing.assert_array_equal(acc.cloud(np.array([0, 0, 2, 3, 4, 5, 5, 5])).labels,
                                  merged.label)


def test_fused_labels_survive_saving_also_beyond_the_key_packing(tmp_path):
    """A scene wider than the int64 key packing (24-byte keys) projects the same labels after
    a save and load: what a resumed run reads back."""
    from lift3d.fuse import FuseAccumulator, FusedLabels

    rng = np.random.default_rng(5)
    near = _observations(rng, 300)
    far = _observations(rng, 300, spread=3e5)
    for obs in ([near], [near, far]):
        acc = FuseAccumulator(0.05)
        for o in obs:
            acc.add(*o)
        fused = acc.labels()
        assert (fused.keys.dtype == np.int64) == (len(obs) == 1)
        fused.save(tmp_path / "f.npz")
        back = FusedLabels.load(tmp_path / "f.npz")
        pts = np.concatenate([o[0] for o in obs])
        np.testing.assert_array_equal(back.at(pts), fused.at(pts))
        np.testing.assert_array_equal(back.label, fused.label)
        # every observed point lies in a voxel: it gets that voxel's winner
        cloud = acc.cloud()
        assert set(np.unique(fused.at(pts)).tolist()) <= set(cloud.labels.tolist()) | {0}
        assert (fused.at(pts) > 0).mean() > 0.5


def test_projection_keeps_specks_out_and_moves_seams():
    """A 10 x 10 frame of ID 1 (left) and ID 2 (right) whose fused verdict moves their seam
    one column, puts a 2-pixel speck of ID 3 inside ID 1 and an ID 4 over a 3 x 4 block: with
    a minimum region of 10 % of the frame the seam moves (the moved column joins ID 2's
    region), the speck of an ID the frame does not hold there goes, the block (12 pixels)
    stays; with no minimum, everything the voxels say is taken."""
    from lift3d.fuse import FusedLabels
    from lift3d.types import PointMaps

    h = w = 10
    ys, xs = np.mgrid[0:h, 0:w]
    pts = np.stack([xs + 0.5, ys + 0.5, np.zeros((h, w))], -1)  # one voxel per pixel
    labels = np.where(xs < 5, 1, 2).astype(np.int32)
    verdict = np.where(xs < 4, 1, 2)
    verdict[1, 1:3] = 3
    verdict[6:9, 0:4] = 4
    q = np.stack([xs, ys, np.zeros((h, w), np.int64)], -1).reshape(-1, 3)
    from lift3d.geometry.voxels import pack_keys

    keys = pack_keys(q)
    order = np.argsort(keys)
    fused = FusedLabels(keys[order], verdict.ravel()[order].astype(np.int32),
                        np.ones(h * w, np.float32), 1.0)
    pm = PointMaps(pts.astype(np.float32), np.ones((h, w), np.float32), np.ones((h, w), bool))
    everything = fused.project(labels, pm)
    np.testing.assert_array_equal(everything, verdict)
    filtered = fused.project(labels, pm, min_area=0.1)
    expect = verdict.copy()
    expect[1, 1:3] = 1
    np.testing.assert_array_equal(filtered, expect)
    assert filtered.dtype == labels.dtype
