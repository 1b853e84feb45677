"""Reciprocal nearest neighbours: the official pairs on the golden descriptors, and mutual
nearest neighbours against a brute-force reference."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lift3d.geometry.mast3r.matching import nn_dot, reciprocal_nns


@pytest.mark.parametrize("case", ["landscape", "portrait"])
def test_matches_official_fast_reciprocal_nns(golden_io, case):
    _, io = golden_io
    xy1, xy2 = reciprocal_nns(io[f"{case}.pred1.desc"][0], io[f"{case}.pred2.desc"][0],
                              subsample=4)
    ref1, ref2 = io[f"{case}.nn.xy1"].numpy(), io[f"{case}.nn.xy2"].numpy()
    got = set(map(tuple, np.c_[xy1, xy2].tolist()))
    assert got == set(map(tuple, np.c_[ref1, ref2].tolist()))
    assert len(got) == len(xy1)  # each pair once
    np.testing.assert_array_equal(xy1, ref1)  # and in the same order
    np.testing.assert_array_equal(xy2, ref2)


def _unit(shape, seed):
    d = torch.randn(*shape, generator=torch.Generator().manual_seed(seed))
    return d / d.norm(dim=-1, keepdim=True)


def test_nn_dot_blocks_equal_full_argmax():
    q, db = _unit((300, 8), 1), _unit((500, 8), 2)
    full = (q @ db.T).argmax(1)
    assert torch.equal(nn_dot(q, db, max_elems=1000), full)
    assert nn_dot(q[:0], db).shape == (0,)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_every_match_is_mutual_nearest_neighbour(seed):
    # smooth descriptor fields so that chains take several rounds to converge
    base = _unit((6, 8, 16), seed)
    d1 = torch.nn.functional.interpolate(base.permute(2, 0, 1)[None], size=(24, 32),
                                         mode="bilinear")[0].permute(1, 2, 0)
    d2 = torch.roll(d1, shifts=(2, 3), dims=(0, 1)) + 0.05 * _unit((24, 32, 16), seed + 10)
    d1 = d1 / d1.norm(dim=-1, keepdim=True)
    d2 = d2 / d2.norm(dim=-1, keepdim=True)
    xy1, xy2 = reciprocal_nns(d1, d2, subsample=4)
    assert len(xy1) > 0
    sim = d1.reshape(-1, 16) @ d2.reshape(-1, 16).T
    f1, f2 = xy1[:, 0] + 32 * xy1[:, 1], xy2[:, 0] + 32 * xy2[:, 1]
    nn12, nn21 = sim.argmax(1).numpy(), sim.argmax(0).numpy()
    np.testing.assert_array_equal(nn12[f1], f2)
    np.testing.assert_array_equal(nn21[f2], f1)
    # brute force: every mutual pair reached from a seed is found (seeds lie in f1's basins)
    seeds = np.mgrid[2:24:4, 2:32:4].reshape(2, -1)
    seed_flat = seeds[1] + 32 * seeds[0]
    mutual_seeds = seed_flat[nn21[nn12[seed_flat]] == seed_flat]
    assert set(mutual_seeds) <= set(f1.tolist())
