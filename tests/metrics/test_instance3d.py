"""3D instance metrics on generated labelled points with known splits, merges and misses."""

from __future__ import annotations

import numpy as np
import pytest

from lift3d.errors import ShapeError
from lift3d.metrics.instance3d import (
    InstanceMetricsConfig,
    average_precision,
    instance_metrics,
    transfer_labels,
)


def _labels():
    """GT: 5 instances of 100 points (IDs 1..5) and 50 unannotated points.
    Prediction: 1 exact (ID 10); 2 split 70/30 (11, 12); 3 and 60 % of 4 merged (13);
    5 missed (0); one false positive (14) on unannotated points."""
    gt = np.repeat([1, 2, 3, 4, 5, 0], [100, 100, 100, 100, 100, 50])
    pred = np.zeros_like(gt)
    pred[gt == 1] = 10
    pred[np.flatnonzero(gt == 2)[:70]] = 11
    pred[np.flatnonzero(gt == 2)[70:]] = 12
    pred[gt == 3] = 13
    pred[np.flatnonzero(gt == 4)[:60]] = 13
    pred[gt == 0] = 14
    return pred, gt


def test_counts_and_matching():
    pred, gt = _labels()
    s = instance_metrics(pred, gt)
    assert s.n_gt == 5
    assert s.n_pred == 4  # 14 lies only on unannotated points, which are dropped
    assert s.found == 3  # 1 (IoU 1), 2 (0.7 with 11), 3 (100/160 with 13)
    assert s.split == 1 and s.merged == 1
    # Hungarian: 10-1 (1.0), 11-2 (0.7), 13-3 (0.625); 4 and 5 unmatched
    assert s.mean_iou == pytest.approx((1.0 + 0.7 + 0.625) / 5)
    assert sorted((m[0], m[1]) for m in s.matches) == [(10, 1), (11, 2), (13, 3)]


def test_found_uses_iou_threshold():
    pred, gt = _labels()
    s = instance_metrics(pred, gt, config=InstanceMetricsConfig(found_iou=0.3))
    assert s.found == 4  # now also 4 (60/160 with 13)
    assert instance_metrics(gt, gt).found == 5


def test_ap_by_hand():
    pred, gt = _labels()
    # ranked by size: 13 (160, TP with 3), 10 (100, TP), 11 (70, TP with 2), 12 (30, FP: 2 is
    # taken). precision 1, 1, 1, .75; recall .2, .4, .6, .6 -> AP = 0.6 at both thresholds
    s = instance_metrics(pred, gt)
    assert s.ap[0.5] == pytest.approx(0.6)
    assert s.ap[0.25] == pytest.approx(0.6)
    assert instance_metrics(gt, gt).ap[0.5] == 1.0
    # confidences rank 12 first: at 0.5 a false positive (IoU 0.3): precision 0, 1/2, 2/3, 3/4;
    # at 0.25 it takes instance 2; ties (0.5) keep ID order 10, 11, 13, so 11 is the false
    # positive: precision 1, 1, 2/3, 3/4, recall .2, .4, .4, .6 -> .2 + .2 + .2 * .75
    conf = np.where(pred == 12, 0.9, 0.5).astype(np.float32)
    s2 = instance_metrics(pred, gt, label_conf=conf)
    assert s2.ap[0.5] == pytest.approx(0.75 * 0.6)
    assert s2.ap[0.25] == pytest.approx(0.55)


def test_average_precision_edge_cases():
    assert np.isnan(average_precision(np.zeros((2, 0)), np.ones(2), 0.5))
    assert average_precision(np.zeros((0, 3)), np.ones(0), 0.5) == 0.0


def test_transfer_labels_nearest_within_distance():
    rng = np.random.default_rng(0)
    src = rng.random((500, 3)).astype(np.float32)
    lab = rng.integers(1, 6, 500).astype(np.int32)
    dst = np.vstack([src[:100] + 1e-4, [[5.0, 5, 5]]]).astype(np.float32)
    out = transfer_labels(src, lab, dst, max_dist=0.01)
    np.testing.assert_array_equal(out[:100], lab[:100])
    assert out[100] == 0
    # against a brute-force nearest neighbour
    d = np.linalg.norm(dst[:, None].astype(np.float64) - src[None].astype(np.float64), axis=2)
    out = transfer_labels(src, lab, dst, max_dist=10.0)
    np.testing.assert_array_equal(out, lab[d.argmin(1)])


def test_shapes_are_checked():
    with pytest.raises(ShapeError, match="pred"):
        instance_metrics(np.zeros(3, int), np.ones(4, int))
    with pytest.raises(ShapeError, match="annotated"):
        instance_metrics(np.zeros(3, int), np.zeros(3, int))
