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
