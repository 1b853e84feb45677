"""H over flow matches: the vectorised count equals a plain loop."""

from __future__ import annotations

import numpy as np
import pytest

from lift3d.geometry.flow import FlowGeometry
from lift3d.metrics.consistency2d import consistency_matches, disk_offsets
from tests.geometry.test_flow import shifted_scene


def reference(geometry, labels, eps, exclude_unlabelled, min_conf=0.3):
    hs = []
    per_frame = []
    for i in range(len(labels)):
        frame_h = []
        nb: dict[tuple[int, int], list[int]] = {}
        for j in (i - 1, i + 1):
            if not 0 <= j < len(labels):
                continue
            m = geometry.matches(i, j)
            H, W = labels[j].shape
            for (x, y), (u, v), c in zip(m.xy_i, m.xy_j, m.conf):
                if c < min_conf or (exclude_unlabelled and labels[i][y, x] == 0):
                    continue
                for qy in range(H):
                    for qx in range(W):
                        if (qx - u) ** 2 + (qy - v) ** 2 <= eps * eps:
                            lj = labels[j][qy, qx]
                            if exclude_unlabelled and lj == 0:
                                continue
                            nb.setdefault((x, y), []).append(int(lj == labels[i][y, x]))
        for v in nb.values():
            frame_h.append(np.mean(v))
        hs += frame_h
        per_frame.append(np.mean(frame_h) if frame_h else np.nan)
    return (np.mean(hs) if hs else np.nan), np.array(per_frame)


@pytest.mark.parametrize("eps", [0.5, 1.0, 1.5])
@pytest.mark.parametrize("exclude", [False, True])
def test_matches_reference_loop(eps, exclude):
    scene = shifted_scene(1, 1, n=3)
    for f in scene.frames:  # keep the loop reference small
        f.image = np.ascontiguousarray(f.image[:18, :22])
    geo = FlowGeometry()(scene)
    rng = np.random.default_rng(1)
    labels = [rng.integers(0, 3, (18, 22)).astype(np.int32) for _ in range(3)]
    got = consistency_matches(geo, labels, eps, exclude_unlabelled=exclude)
    H, per_frame = reference(geo, labels, eps, exclude)
    assert got.H == pytest.approx(H, abs=1e-12)
    np.testing.assert_allclose(got.per_frame, per_frame, atol=1e-12)


def test_consistent_labels_score_one_and_flicker_scores_low():
    scene = shifted_scene(2, 1, n=4)
    geo = FlowGeometry()(scene)
    h, w = scene.frames[0].hw
    ys, xs = np.mgrid[0:h, 0:w]
    # labels attached to the content: a vertical band boundary that moves with the shift
    consistent = [((xs + 2 * k) // 40).astype(np.int32) + 1 for k in range(4)]
    flicker = [(lab + k) % 7 for k, lab in enumerate(consistent)]
    hc = consistency_matches(geo, consistent, 1.0).H
    hf = consistency_matches(geo, flicker, 1.0).H
    assert hc > 0.95 and hf < 0.2


def test_disk_offsets():
    assert len(disk_offsets(0.5)) == 1
    assert len(disk_offsets(1.0)) == 5
    assert len(disk_offsets(1.5)) == 9
