"""The exact consistency metric against its plain per-point reference, and the per-mask
approximation against the exact value."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lift3d.errors import InputError, ShapeError
from lift3d.metrics.consistency import (
    consistency,
    consistency_per_mask,
    consistency_reference,
)
from tests.metrics.scenes import plane_scene


def _same(a, b):
    """Exact equality of results, maps included (NaN == NaN)."""
    assert a.n_pixels == b.n_pixels
    assert a.n_with_neighbours == b.n_with_neighbours
    np.testing.assert_array_equal(a.per_frame, b.per_frame)
    for ma, mb in zip(a.maps, b.maps, strict=True):
        np.testing.assert_array_equal(ma, mb)
    assert a.H == b.H or (np.isnan(a.H) and np.isnan(b.H))


def _random(n_frames=3, hw=(9, 11), n_ids=3, seed=0, scale=1.0):
    rng = np.random.default_rng(seed)
    pts = [(rng.random((*hw, 3)) * scale).astype(np.float32) for _ in range(n_frames)]
    val = [rng.random(hw) > 0.2 for _ in range(n_frames)]
    ids = [rng.integers(0, n_ids, hw).astype(np.int32) for _ in range(n_frames)]
    return pts, val, ids


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("exclude", [False, True])
def test_ids_equal_reference_on_random_points(seed, exclude):
    pts, val, ids = _random(seed=seed)
    for eps in (0.05, 0.2):
        fast = consistency(pts, val, ids, eps, exclude_unlabelled=exclude, return_maps=True)
        ref = consistency_reference(pts, val, ids, eps, exclude_unlabelled=exclude,
                                    return_maps=True)
        _same(fast, ref)
        assert fast.n_with_neighbours > 0


@pytest.mark.parametrize("flicker", [False, True])
def test_ids_equal_reference_on_rendered_planes(flicker):
    pts, val, ids = plane_scene(n_frames=4)
    if flicker:  # one frame swaps two IDs, another loses a patch to unlabelled
        ids[1] = np.where(ids[1] == 1, 2, np.where(ids[1] == 2, 1, ids[1])).astype(np.int32)
        ids[2][5:12, 8:20] = 0
    for eps in (0.05, 0.12):
        fast = consistency(pts, val, ids, eps, return_maps=True)
        ref = consistency_reference(pts, val, ids, eps, return_maps=True)
        _same(fast, ref)
        # consistent labels only lose at label boundaries (neighbours across them)
        assert fast.H < 0.7 if flicker else fast.H > 0.96
    # dense: many neighbours per pixel
    fast = consistency(pts, val, ids, 0.3, exclude_unlabelled=True, return_maps=True)
    _same(fast, consistency_reference(pts, val, ids, 0.3, exclude_unlabelled=True,
                                      return_maps=True))


def test_features_match_reference():
    pts, val, ids = _random(seed=3)
    rng = np.random.default_rng(3)
    feats = [rng.normal(size=(*v.shape, 5)) for v in val]
    feats[0][0, :3] = 0.0  # zero vectors: cosine 0 with everything
    fast = consistency(pts, val, feats, 0.2, return_maps=True)
    ref = consistency_reference(pts, val, feats, 0.2, return_maps=True)
    assert fast.n_with_neighbours == ref.n_with_neighbours
    for a, b in zip(fast.maps, ref.maps, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6, equal_nan=True)
    assert fast.maps[0][0, 0] == 0.0 or np.isnan(fast.maps[0][0, 0])


def test_one_hot_features_equal_ids():
    pts, val, ids = plane_scene(n_frames=3, seed=1)
    ids[1][ids[1] == 4] = 5
    onehot = [np.eye(12)[i] for i in ids]
    a = consistency(pts, val, ids, 0.1, return_maps=True)
    b = consistency(pts, val, onehot, 0.1, return_maps=True)
    np.testing.assert_allclose(a.H, b.H, rtol=1e-12)
    for ma, mb in zip(a.maps, b.maps, strict=True):
        np.testing.assert_allclose(ma, mb, rtol=1e-6, equal_nan=True)


def test_all_one_label_scores_one():
    pts, val, _ = plane_scene(n_frames=3)
    ones = [np.ones(v.shape, np.int32) for v in val]
    r = consistency(pts, val, ones, 0.1)
    assert r.H == 1.0
    assert r.n_with_neighbours > 0.5 * r.n_pixels


def test_frame_without_valid_pixels():
    pts, val, ids = _random(seed=4)
    val[1][:] = False
    r = consistency(pts, val, ids, 0.2, return_maps=True)
    _same(r, consistency_reference(pts, val, ids, 0.2, return_maps=True))
    assert np.isnan(r.per_frame[1])
    assert np.isnan(r.maps[1]).all()


def test_single_frame_has_no_neighbours():
    pts, val, ids = _random(n_frames=1)
    r = consistency(pts, val, ids, 0.5, return_maps=True)
    assert np.isnan(r.H) and r.n_with_neighbours == 0 and r.n_pixels == int(val[0].sum())


def test_all_unlabelled_excluded():
    pts, val, ids = _random()
    zeros = [np.zeros_like(i) for i in ids]
    r = consistency(pts, val, zeros, 0.2, exclude_unlabelled=True)
    assert r.n_pixels == 0 and np.isnan(r.H) and np.isnan(r.per_frame).all()
    # without the flag, unlabelled is one class: perfectly consistent
    assert consistency(pts, val, zeros, 0.2).H == 1.0


def test_exclude_unlabelled_removes_neighbours_too():
    # frame 0 labelled 1; frame 1 at the same points half unlabelled, half labelled 2
    p = np.zeros((1, 2, 3), np.float32)
    p[0, 1] = (1.0, 0, 0)
    v = np.ones((1, 2), bool)
    ids0 = np.array([[1, 1]], np.int32)
    ids1 = np.array([[0, 1]], np.int32)
    r = consistency([p, p], [v, v], [ids0, ids1], 0.1, return_maps=True)
    np.testing.assert_array_equal(r.maps[0], [[0.0, 1.0]])
    r = consistency([p, p], [v, v], [ids0, ids1], 0.1, exclude_unlabelled=True, return_maps=True)
    assert np.isnan(r.maps[0][0, 0]) and r.maps[0][0, 1] == 1.0
    assert np.isnan(r.maps[1][0, 0]) and r.n_pixels == 3


def test_bad_inputs_are_named():
    pts, val, ids = _random()
    with pytest.raises(ShapeError, match="outputs\\[1\\]"):
        consistency(pts, val, [ids[0], ids[1][:-1], ids[2]], 0.1)
    with pytest.raises(InputError, match="eps"):
        consistency(pts, val, ids, 0.0)
    with pytest.raises(ShapeError, match="one of each"):
        consistency(pts, val[:2], ids, 0.1)


def test_per_mask_approximates_exact():
    pts, val, ids = plane_scene(n_frames=5, hw=(36, 48))
    eps = 0.1
    ones = [np.where(v, 3, 0).astype(np.int32) for v in val]
    assert consistency_per_mask(pts, val, ones, eps).H == 1.0
    exact = consistency(pts, val, ids, eps)
    approx = consistency_per_mask(pts, val, ids, eps)
    assert exact.H > 0.95 and approx.H > 0.95  # consistent: only label boundaries lose
    assert abs(exact.H - approx.H) < 0.02
    # flicker: a frame relabels one object, another frame a band of pixels
    ids[2] = np.where(ids[2] == 1, 9, ids[2]).astype(np.int32)
    ids[4][:, :10] = np.where(ids[4][:, :10] > 0, 7, 0)
    exact = consistency(pts, val, ids, eps)
    approx = consistency_per_mask(pts, val, ids, eps)
    assert exact.H < 0.9 and approx.H < 0.9
    assert abs(exact.H - approx.H) < 0.05
    np.testing.assert_allclose(approx.per_frame, exact.per_frame, atol=0.1)


def _per_mask_by_definition(pts, val, ids, voxel):
    """The per-mask score spelled out with Python dictionaries (voxels from the same origin as
    the implementation: one voxel below the lowest point)."""
    x = np.concatenate([p[v] for p, v in zip(pts, val, strict=True)]).astype(np.float64)
    fr = np.concatenate([np.full(int(v.sum()), i) for i, v in enumerate(val)])
    lab = np.concatenate([m[v] for m, v in zip(ids, val, strict=True)])
    lo = x.min(0) - voxel
    vox = [tuple(k) for k in np.floor((x - lo) / voxel).astype(int)]
    from collections import Counter

    o, o_f, o_l, o_fl = Counter(vox), Counter(zip(vox, fr)), Counter(zip(vox, lab)), Counter(
        zip(vox, fr, lab))
    num, den, w = Counter(), Counter(), Counter()
    for v, f, m in zip(vox, fr, lab, strict=True):
        t = o[v] - o_f[v, f]
        num[f, m] += o_l[v, m] - o_fl[v, f, m]
        den[f, m] += t
        w[f, m] += t > 0
    score = {k: num[k] / den[k] if den[k] else 0.0 for k in w}
    return sum(score[k] * w[k] for k in w) / sum(w.values())


def test_per_mask_equals_its_definition():
    pts, val, ids = plane_scene(n_frames=4, hw=(18, 24))
    ids[2] = np.where(ids[2] == 1, 9, ids[2]).astype(np.int32)
    ids[3][:, :6] = 7
    for voxel in (0.05, 0.1, 0.3, 2.0):  # 2.0: voxels of hundreds of points
        got = consistency_per_mask(pts, val, ids, 0.1, voxel=voxel).H
        want = _per_mask_by_definition(pts, val, ids, voxel)
        assert 0.3 < want < 1.0
        assert got == pytest.approx(want, rel=1e-12)


def _within(x, frame, eps):
    """Other-frame pairs within eps by a dense distance matrix, with the metric's comparison:
    (dx*dx + dy*dy) + dz*dz <= eps*eps in float64."""
    x = np.asarray(x, np.float64)
    d = x[:, None, :] - x[None, :, :]
    within = (d[..., 0] * d[..., 0] + d[..., 1] * d[..., 1]) + d[..., 2] * d[..., 2] <= eps * eps
    return within & (frame[:, None] != frame[None, :])


def _brute(x, frame, lab, eps):
    within = _within(x, frame, eps)
    return within.sum(1), (within & (lab[:, None] == lab[None, :])).sum(1)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("spread", [1.0, 1000.0])  # dense grid (counting sort) / sparse (argsort)
def test_kernel_counts_equal_brute_force(dtype, spread):
    from lift3d.metrics._ball import ball_sums

    rng = np.random.default_rng(5)
    centres = rng.random((6, 3)) * spread
    x = (centres[rng.integers(0, 6, 2500)] + rng.normal(0, 0.02, (2500, 3))).astype(dtype)
    frame = rng.integers(0, 4, 2500)
    lab = (x[:, 0] > 0.5 * spread).astype(np.int64) + 2 * (rng.random(2500) < 0.01)
    for eps in (0.005, 0.02, 0.07):
        want_cnt, want_same = _brute(x, frame, lab, eps)
        assert (want_cnt > 0).mean() > 0.3 and (want_same < want_cnt).any()
        for workers in (-1, 1):
            cnt, same = ball_sums(x, frame, lab, eps, workers=workers)
            np.testing.assert_array_equal(cnt, want_cnt)
            np.testing.assert_array_equal(same, want_same)


def test_kernel_counts_pairs_exactly_at_eps_and_on_cell_faces():
    """A lattice of spacing eps (exact binary fractions) coloured like a chess board into two
    frames: each point's six axis neighbours lie at exactly eps in the other frame, on the faces
    of the kernel's cells (side a hair over eps); diagonal ones (eps sqrt 2) are too far."""
    from lift3d.metrics._ball import ball_sums

    eps = 0.25
    ijk = np.stack(np.meshgrid(*[np.arange(6)] * 3, indexing="ij"), -1).reshape(-1, 3)
    x = ijk * eps - 0.5
    frame = ijk.sum(1) % 2
    lab = (np.arange(len(x)) % 3).astype(np.int64)
    cnt, same = ball_sums(x, frame, lab, eps)
    want_cnt, want_same = _brute(x, frame, lab, eps)
    np.testing.assert_array_equal(cnt, want_cnt)
    np.testing.assert_array_equal(same, want_same)
    assert want_cnt.max() == 6 and want_cnt.min() == 3  # interior and corner points


def test_kernel_feature_sums_equal_brute_force():
    from lift3d.metrics._ball import ball_sums

    rng = np.random.default_rng(6)
    x = rng.random((1500, 3))
    frame = rng.integers(0, 3, 1500)
    f = rng.normal(size=(1500, 4))
    cnt, dots = ball_sums(x, frame, f, 0.1)
    within = _within(x, frame, 0.1)
    np.testing.assert_array_equal(cnt, within.sum(1))
    np.testing.assert_allclose(dots, (within * (f @ f.T)).sum(1), rtol=1e-10, atol=1e-10)


def test_consistency_of_labels_on_types():
    from lift3d.metrics.consistency import ConsistencyConfig, consistency_of_labels
    from lift3d.types import Geometry, Labels

    pts, val, ids = plane_scene(n_frames=3)
    geo = Geometry(points=pts, conf=[v.astype(np.float32) for v in val], valid=val,
                   K=[None] * 3, cam_to_world=[None] * 3)
    r = consistency_of_labels(geo, Labels(ids), ConsistencyConfig(eps=0.1))
    assert r.H == consistency(pts, val, ids, 0.1).H
    geo2d = Geometry(points=None, conf=geo.conf, valid=val, K=[None] * 3,
                     cam_to_world=[None] * 3, kind="2d")
    with pytest.raises(InputError, match="2D"):
        consistency_of_labels(geo2d, Labels(ids))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n_frames=st.integers(1, 4),
    eps=st.floats(0.02, 0.4),
    n_ids=st.integers(1, 4),
    exclude=st.booleans(),
)
def test_property_fast_equals_reference(seed, n_frames, eps, n_ids, exclude):
    pts, val, ids = _random(n_frames=n_frames, hw=(6, 7), n_ids=n_ids, seed=seed)
    if n_frames > 1:  # exact duplicates across frames: distance 0
        pts[1][:3] = pts[0][:3]
    fast = consistency(pts, val, ids, eps, exclude_unlabelled=exclude, return_maps=True)
    ref = consistency_reference(pts, val, ids, eps, exclude_unlabelled=exclude, return_maps=True)
    _same(fast, ref)


def test_warns_when_eps_reaches_too_many_points(monkeypatch):
    """A radius that takes in most of the cloud makes the exact count quadratic: say so."""
    from lift3d.metrics import _ball

    pts, val, ids = _random(n_frames=2, hw=(20, 20))
    monkeypatch.setattr(_ball, "_WARN_PAIRS", 1e5)
    with pytest.warns(RuntimeWarning, match="eps = 0.5 reaches about"):
        big = consistency(pts, val, ids, 0.5)
    assert big.stats["candidates_per_point"] > 250
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        consistency(pts, val, ids, 0.05)  # a few neighbours each: no warning


def test_no_threading_warning_after_open3d():
    """Open3D loads an old libtbb; the kernel's threads must not trip numba's TBB warning."""
    import subprocess
    import sys

    code = (
        "import warnings; warnings.simplefilter('error'); import open3d, numpy as np; "
        "from lift3d.metrics.consistency import consistency; "
        "p = [np.random.default_rng(i).random((4, 5, 3)) for i in range(2)]; "
        "consistency(p, [np.ones((4, 5), bool)] * 2, [np.zeros((4, 5), int)] * 2, 0.5)"
    )
    subprocess.run([sys.executable, "-W", "error", "-c", code], check=True)


# ---------------------------------------------------------------------------------------------
# Features at scale: float32 / float16 storage, spatial blocks, scratch files


def _features(val, dim, seed, dtype=np.float32):
    rng = np.random.default_rng(seed)
    # a shared direction plus noise: cosines spread over (0, 1), as real features' do
    base = rng.normal(size=dim)
    return [(base + rng.normal(size=(*v.shape, dim))).astype(dtype) for v in val]


def _maps_close(a, b, tol):
    assert a.n_with_neighbours == b.n_with_neighbours
    for ma, mb in zip(a.maps, b.maps, strict=True):
        np.testing.assert_array_equal(np.isnan(ma), np.isnan(mb))
        assert np.nanmax(np.abs(ma.astype(np.float64) - mb)) <= tol
    assert abs(a.H - b.H) <= tol


def test_features_in_blocks_and_scratch_files_equal_one_block(tmp_path):
    """Tiny budgets force many spatial blocks and every frame's features onto disk: the sums
    are the same, bit for bit, as with everything in memory in one block."""
    from lift3d.metrics.consistency import ConsistencyConfig

    pts, val, _ = plane_scene(n_frames=4, hw=(30, 40))
    feats = _features(val, 6, seed=7)
    whole = consistency(pts, val, feats, 0.1, return_maps=True)
    cfg = ConsistencyConfig(block_bytes=2000 * 6 * 4, feature_memory=0, scratch_dir=str(tmp_path))
    split = consistency(pts, val, feats, 0.1, return_maps=True, config=cfg)
    assert whole.stats["blocks"] == 1 and split.stats["blocks"] >= 3
    assert split.stats["features_on_disk"] == 1.0 and not any(tmp_path.iterdir())  # cleaned up
    for a, b in zip(whole.maps, split.maps, strict=True):
        np.testing.assert_array_equal(a, b)
    ref = consistency_reference(pts, val, feats, 0.1, return_maps=True)
    _maps_close(split, ref, 2e-7)


@pytest.mark.parametrize("precision", ["float32", "float16"])
def test_feature_precision_within_stated_bound(precision):
    """Stored unit features change h (and H) by at most feature_error_bound of the storage
    type, against the float64 reference; float16 does add error (the bound is not vacuous)."""
    from lift3d.metrics.consistency import ConsistencyConfig, feature_error_bound

    pts, val, _ = plane_scene(n_frames=3, hw=(24, 32), seed=2)
    dim = 64
    feats = _features(val, dim, seed=8, dtype=np.float64)
    feats[1][::3] *= 1e-3  # small components: float16's subnormal range
    ref = consistency_reference(pts, val, feats, 0.1, return_maps=True)
    got = consistency(pts, val, feats, 0.1, return_maps=True,
                      config=ConsistencyConfig(feature_dtype=precision))
    bound = feature_error_bound(precision, dim)
    _maps_close(got, ref, bound)
    err = max(np.nanmax(np.abs(a.astype(np.float64) - b)) for a, b in zip(got.maps, ref.maps))
    if precision == "float16":
        assert err > 1e-5
    assert bound < (1.3e-7 if precision == "float32" else 1.1e-3)


def test_integer_and_memory_mapped_features(tmp_path):
    """Feature maps of any real dtype, read from memory-mapped .npy files, frame by frame."""
    from lift3d.metrics.consistency import consistency_frames

    pts, val, ids = plane_scene(n_frames=3)
    counts = [np.stack([i, i * 2 % 5, np.ones_like(i)], -1).astype(np.uint16) for i in ids]
    paths = []
    for k, c in enumerate(counts):
        paths.append(tmp_path / f"{k}.npy")
        np.save(paths[-1], c)
    got = consistency_frames(lambda i: (pts[i], val[i], np.load(paths[i], mmap_mode="r")), 3, 0.1,
                             return_maps=True)
    ref = consistency_reference(pts, val, [c.astype(np.float64) for c in counts], 0.1,
                                return_maps=True)
    _maps_close(got, ref, 2e-7)


def test_feature_blocks_cover_every_cell():
    """The spatial blocks partition the cells and each block's margin reaches one slab out."""
    from lift3d.metrics._ball import _blocks, _Cells

    pts, val, _ = plane_scene(n_frames=2, hw=(30, 40))
    x = np.concatenate([p[v] for p, v in zip(pts, val, strict=True)])
    g = _Cells(x, 0.05)
    blocks = _blocks(g, 500)
    assert blocks[0][0] == 0 and blocks[-1][1] == g.ukey.size
    slab = g.cell_ijk[:, 0]
    for (c_lo, c_hi, m_lo, m_hi), nxt in zip(blocks, blocks[1:] + [None], strict=True):
        assert m_lo <= c_lo < c_hi <= m_hi
        if nxt is not None:
            assert nxt[0] == c_hi
        assert m_lo == 0 or slab[m_lo] < slab[c_lo] and slab[m_lo - 1] < slab[m_lo]
        assert m_hi == slab.size or slab[m_hi - 1] > slab[c_hi - 1] and slab[m_hi] > slab[m_hi - 1]
