"""Pair graphs and batched pair inference (encoder cache + batching keep the numbers)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lift3d.geometry.mast3r.inference import PairRunner, make_pairs
from lift3d.geometry.mast3r.matching import reciprocal_nns


def test_make_pairs():
    assert make_pairs(3, "complete", symmetrize=False) == [(0, 1), (0, 2), (1, 2)]
    assert len(make_pairs(4, "complete")) == 12
    assert make_pairs(4, "chain") == [(0, 1), (1, 2), (2, 3), (1, 0), (2, 1), (3, 2)]
    swin = make_pairs(5, "swin", window=2, symmetrize=False)
    assert swin == [(0, 1), (0, 2), (1, 2), (1, 3), (2, 3), (2, 4), (3, 4)]
    assert make_pairs(1, "swin") == []
    with pytest.raises(ValueError, match="unknown pair graph"):
        make_pairs(3, "star")


@pytest.fixture(scope="module")
def images():
    g = torch.Generator().manual_seed(3)
    shapes = [(48, 64), (48, 64), (48, 64), (64, 48)]
    return [torch.rand(3, h, w, generator=g) * 2 - 1 for h, w in shapes]


def test_runner_matches_direct_forward(tiny, images):
    pairs = [(0, 1), (2, 0), (0, 3)]  # the first two share a batch
    runner = PairRunner(tiny, images, batch_size=2, device="cpu")
    results = runner.predict(pairs, with_desc=True)
    assert [(r.i, r.j) for r in results] == pairs
    for r in results:
        with torch.no_grad():
            p1, p2 = tiny(images[r.i][None], images[r.j][None])
        for got, ref in [(r.pts_i, p1["pts3d"]), (r.pts_j, p2["pts3d_in_other_view"]),
                         (r.conf_i, p1["conf"]), (r.conf_j, p2["conf"]),
                         (r.desc_i, p1["desc"]), (r.desc_j, p2["desc"]),
                         (r.desc_conf_j, p2["desc_conf"])]:
            np.testing.assert_allclose(got, ref[0].numpy(), rtol=1e-4, atol=1e-5)
    assert results[0].desc_i.shape == (48, 64, 24) and results[2].pts_j.shape == (64, 48, 3)
    assert runner.predict([(0, 1)])[0].desc_i is None


def test_runner_match(tiny, images):
    runner = PairRunner(tiny, images, device="cpu")
    xy_i, xy_j, conf = runner.match(0, 3, subsample=4)
    r = runner.predict([(0, 3)], with_desc=True)[0]
    ref_i, ref_j = reciprocal_nns(torch.from_numpy(r.desc_i), torch.from_numpy(r.desc_j), 4)
    np.testing.assert_array_equal(xy_i, ref_i)
    np.testing.assert_array_equal(xy_j, ref_j)
    assert ((conf >= 0) & (conf < 1)).all()
    assert (xy_j < [48, 64]).all()
    c = np.minimum(r.desc_conf_i[xy_i[:, 1], xy_i[:, 0]], r.desc_conf_j[xy_j[:, 1], xy_j[:, 0]])
    thr = float(np.median(c))
    kept_i, _, kept_conf = runner.match(0, 3, subsample=4, conf_thr=thr)
    assert len(kept_i) == int((c >= thr).sum()) and (kept_conf >= thr / (1 + thr) - 1e-6).all()
