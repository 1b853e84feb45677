"""3D instance metrics (ScanNet's protocol) on labelled points with known splits, merges and
misses; every expected AP is worked out by hand in the comments."""

from __future__ import annotations

import numpy as np
import pytest

from lift3d.errors import ShapeError
from lift3d.metrics.instance3d import (
    OVERLAPS,
    InstanceMetricsConfig,
    instance_metrics,
    point_spacing,
    pr_curve_ap,
    score_cloud,
    transfer_labels,
)

ONE = InstanceMetricsConfig(min_region_size=1)


def _conf(pred: np.ndarray, by_id: dict[int, float]) -> np.ndarray:
    """Per-point confidences giving each predicted ID its confidence."""
    out = np.full(pred.shape, 0.5, np.float32)
    for i, c in by_id.items():
        out[pred == i] = c
    return out


def test_overlaps_are_scannets():
    # ScanNet: np.arange(0.5, 0.95, 0.05) -> 0.50 ... 0.90, nine thresholds (not 0.95)
    assert OVERLAPS == (0.5, 0.55, 0.6, 0.65, 0.7, 0.75, 0.8, 0.85, 0.9)
    np.testing.assert_allclose(OVERLAPS, np.arange(0.5, 0.95, 0.05))


def test_perfect_prediction_scores_one():
    gt = np.repeat([1, 2, 3, 0], [150, 120, 200, 80])
    pred = gt * 10  # other IDs, same instances; void points unlabelled
    s = instance_metrics(pred, gt, _conf(pred, {10: 0.9, 20: 0.7, 30: 0.8}))
    assert s.ap == pytest.approx(1.0) and s.ap50 == pytest.approx(1.0)
    assert all(v == pytest.approx(1.0) for v in s.ap_at.values())
    assert s.mean_iou == 1.0 and s.found == 3 and s.split == s.merged == 0


def _merged_pair():
    """GT: A (ID 1, 120 points), B (2, 60), C (3, 150). Prediction: A and B merged (7, conf
    0.9), C exact (8, conf 0.8)."""
    gt = np.repeat([1, 2, 3], [120, 60, 150])
    pred = np.where(gt == 3, 8, 7)
    return pred, gt, _conf(pred, {7: 0.9, 8: 0.8})


def test_one_merged_pair_by_hand():
    pred, gt, conf = _merged_pair()
    s = instance_metrics(pred, gt, conf, ONE)
    # IoU(7, A) = 120 / 180 = 0.667, IoU(7, B) = 60 / 180 = 0.333, IoU(8, C) = 1
    np.testing.assert_allclose(s.iou, [[2 / 3, 1 / 3, 0], [0, 0, 1]])
    # t < 0.667: 7 is A's true positive (0.9), 8 C's (0.8), B a false negative:
    # points (p, r) = (1, 2/3) at 0.8, (1, 1/3) at 0.9, (1, 0) -> AP = 2/3
    for t in (0.25, 0.5, 0.55, 0.6, 0.65):
        assert s.ap_at[t] == pytest.approx(2 / 3), t
    # t >= 0.7: 7 matches nothing and lies on annotated points: a false positive (0.9);
    # (p, r) = (1/2, 1/3) at 0.8, (0, 0) at 0.9, (1, 0); step widths 1/6, 1/6, 0 -> 1/12
    # (a monotone precision envelope would give 1/6: ScanNet does not take one)
    for t in (0.7, 0.75, 0.8, 0.85, 0.9):
        assert s.ap_at[t] == pytest.approx(1 / 12), t
    assert s.ap50 == pytest.approx(2 / 3) and s.ap25 == pytest.approx(2 / 3)
    assert s.ap == pytest.approx((4 * 2 / 3 + 5 / 12) / 9)  # = 37/108
    assert s.merged == 1  # 7 holds all of A and all of B
    assert s.found == 2 and s.n_gt == 3 and s.n_pred == 2


def test_ap_is_the_mean_of_the_per_threshold_aps():
    rng = np.random.default_rng(3)
    gt = rng.integers(0, 8, 4000)
    pred = np.where(rng.random(4000) < 0.8, gt, rng.integers(0, 12, 4000)) * 3
    pred[(gt == 2) & (rng.random(4000) < 0.5)] = 99  # a split
    s = instance_metrics(pred, gt, rng.random(4000).astype(np.float32))
    assert s.ap == pytest.approx(np.mean([s.ap_at[t] for t in OVERLAPS]))
    assert 0 < s.ap < s.ap50 <= s.ap25 <= 1


def test_predictions_on_unannotated_points_are_ignored():
    pred, gt, conf = _merged_pair()
    base = instance_metrics(pred, gt, conf, ONE)
    # 200 void points (GT 0) predicted as one confident instance: ignored at every threshold
    gt2 = np.r_[gt, np.zeros(200, int)]
    pred2 = np.r_[pred, np.full(200, 9)]
    s = instance_metrics(pred2, gt2, np.r_[conf, np.full(200, 0.99, np.float32)], ONE)
    assert s.ap_at == base.ap_at and s.n_pred == 3
    # ... but a prediction's void points count in its size (ScanNet): C plus 50 void points
    gt3 = np.r_[gt, np.zeros(50, int)]
    pred3 = np.r_[pred, np.full(50, 8)]
    s3 = instance_metrics(pred3, gt3, np.r_[conf, np.full(50, 0.8, np.float32)], ONE)
    assert s3.iou[1, 2] == pytest.approx(150 / 200)
    # at 0.75 and above 8 no longer matches C; 50/200 of it is void (<= t): a false positive
    assert s3.ap_at[0.7] == base.ap_at[0.7]
    assert s3.ap_at[0.75] == 0.0


def test_duplicate_matches_and_small_regions():
    # one GT instance (100 points) split 60 / 40 into 5 (conf 0.5) and 6 (conf 0.9); GT 2 (40
    # points) inside 7 (its 40 points and 20 void ones)
    gt = np.r_[np.ones(100, int), np.full(40, 2), np.zeros(20, int)]
    pred = np.r_[np.full(60, 5), np.full(40, 6), np.full(60, 7)]
    conf = _conf(pred, {5: 0.5, 6: 0.9, 7: 0.7})
    s = instance_metrics(pred, gt, conf, InstanceMetricsConfig(min_region_size=50))
    # GT 2 (40 points) is below min_region_size: not a target; 7 lies on it and void: ignored;
    # 6 (40 points) is below min_region_size too: not scored at all
    assert s.n_gt == 1 and s.n_pred == 2 and list(s.pred_ids) == [5, 7]
    assert s.ap50 == 1.0  # IoU(5, GT 1) = 0.6
    s = instance_metrics(pred, gt, conf, ONE)
    # at 0.25 both 5 (IoU .6) and 6 (.4) match GT 1: 5 comes first and is the true positive,
    # taking the higher confidence 0.9; 6 is a false positive at 0.5; 7 is GT 2's (IoU 2/3,
    # 0.7). (p, r) = (2/3, 1) at 0.5, (1, 1) at 0.7, (1, 1/2) at 0.9, (1, 0): widths 0, 1/4,
    # 1/2, 1/4 -> AP 1
    assert s.ap25 == 1.0
    # at 0.5: 5 true positive (0.5), 6 a false positive (0.9), 7 GT 2's (0.7):
    # (2/3, 1) at 0.5, (1/2, 1/2) at 0.7, (0, 0) at 0.9, (1, 0): widths 1/4, 1/2, 1/4, 0
    assert s.ap50 == pytest.approx(2 / 3 / 4 + 1 / 2 / 2)


def test_pr_curve_edge_cases():
    assert np.isnan(pr_curve_ap(np.ones(2), np.zeros(0), 0))
    assert pr_curve_ap(np.zeros(0), np.zeros(0), 3) == 0.0
    assert pr_curve_ap(np.zeros(0), np.ones(2), 3) == 0.0
    # no prediction at all (only predicted 0): AP 0, mean IoU 0
    s = instance_metrics(np.zeros(300, int), np.repeat([1, 2, 3], 100))
    assert s.ap == s.ap50 == s.ap25 == 0.0 and s.mean_iou == 0.0


def test_counts_and_matching():
    """GT: 5 instances of 100 points and 50 void points. Prediction: 1 exact (10); 2 split 70/30
    (11, 12); 3 and 60 % of 4 merged (13); 5 missed; 14 on the void points."""
    gt = np.repeat([1, 2, 3, 4, 5, 0], [100, 100, 100, 100, 100, 50])
    pred = np.zeros_like(gt)
    pred[gt == 1] = 10
    pred[np.flatnonzero(gt == 2)[:70]] = 11
    pred[np.flatnonzero(gt == 2)[70:]] = 12
    pred[gt == 3] = 13
    pred[np.flatnonzero(gt == 4)[:60]] = 13
    pred[gt == 0] = 14
    s = instance_metrics(pred, gt, config=ONE)
    assert s.n_gt == 5 and s.n_pred == 5
    assert s.found == 3  # 1 (IoU 1), 2 (0.7 with 11), 3 (100/160 with 13)
    assert s.split == 1 and s.merged == 1
    assert s.mean_iou == pytest.approx((1.0 + 0.7 + 0.625) / 5)
    assert sorted((m[0], m[1]) for m in s.matches) == [(10, 1), (11, 2), (13, 3)]
    assert instance_metrics(pred, gt, config=InstanceMetricsConfig(min_region_size=1,
                                                                   found_iou=0.3)).found == 4


def test_transfer_labels_nearest_within_distance():
    rng = np.random.default_rng(0)
    src = rng.random((500, 3)).astype(np.float32)
    lab = rng.integers(1, 6, 500).astype(np.int32)
    dst = np.vstack([src[:100] + 1e-4, [[5.0, 5, 5]]]).astype(np.float32)
    out = transfer_labels(src, lab, dst, max_dist=0.01)
    np.testing.assert_array_equal(out[:100], lab[:100])
    assert out[100] == 0
    d = np.linalg.norm(dst[:, None].astype(np.float64) - src[None].astype(np.float64), axis=2)
    out = transfer_labels(src, lab, dst, max_dist=10.0)
    np.testing.assert_array_equal(out, lab[d.argmin(1)])


def test_score_cloud_carries_ground_truth_onto_the_cloud():
    rng = np.random.default_rng(1)
    gt_pts = rng.random((3000, 3)) * [3, 1, 1]
    gt_lab = (gt_pts[:, 0] // 1).astype(np.int32) + 1  # three slabs
    gt_lab[gt_pts[:, 2] < 0.2] = 0  # void floor
    cloud = gt_pts[::2] + rng.normal(0, 1e-3, (1500, 3))
    far = np.array([[10.0, 0, 0]] * 120)  # no ground truth near: unannotated
    pts = np.vstack([cloud, far])
    lab = np.r_[gt_lab[::2] * 4, np.full(120, 50)]
    s = score_cloud(pts, lab, None, gt_pts, gt_lab)
    assert s.ap == pytest.approx(1.0) and s.n_gt == 3
    assert s.n_pred == 4  # 50 is scored but lies on unannotated points only: ignored
    assert point_spacing(pts[:1500]) > 0


def test_shapes_are_checked():
    with pytest.raises(ShapeError, match="pred"):
        instance_metrics(np.zeros(3, int), np.ones(4, int))
    s = instance_metrics(np.ones(300, int), np.zeros(300, int))  # no annotated point
    assert s.n_gt == 0 and s.n_pred == 1 and np.isnan(s.ap) and np.isnan(s.mean_iou)


def test_fused_ground_truth_scores_near_one():
    """The protocol end to end on a generated scene: fusing its ground-truth instance maps
    gives a cloud whose every object is found (AP50 = 1) with AP near 1 (measured 0.90-0.94
    at 8 frames of 160x120; 0.89-0.96 at 30 of 320x240, seeds 0-2): what keeps it under 1 is
    where the ground truth's labels meet on the cloud (object rims, floor contact)."""
    from lift3d.fuse import FuseAccumulator, FuseConfig, fuse_voxel
    from lift3d.geometry import build_geometry
    from lift3d.geometry.config import GeometryConfig
    from lift3d.synth import render_scene

    scene = render_scene(seed=4, n_frames=6, width=160, height=120).as_scene()
    geo = build_geometry(GeometryConfig(backend="rgbd"))(scene, cache_dir=None)
    acc = FuseAccumulator(fuse_voxel(geo, FuseConfig()), FuseConfig())
    for t, frame in enumerate(scene.frames):
        acc.add_frame(geo[t], frame.image, scene.gt_labels[t].astype(np.int32))
    cloud = acc.cloud(None)
    s = score_cloud(cloud.points, cloud.labels, cloud.label_conf, scene.gt_points,
                    scene.gt_point_labels)
    assert s.n_gt >= 6 and s.n_pred == s.n_gt
    assert s.ap50 == pytest.approx(1.0) and s.ap25 == pytest.approx(1.0)
    assert s.ap > 0.85 and s.mean_iou > 0.85
    # objects merged two by two: each pair is one prediction, at most one of a pair matched
    ids = np.unique(cloud.labels[cloud.labels > 0])
    lut = np.zeros(cloud.labels.max() + 1, np.int32)
    lut[ids] = np.arange(ids.size) // 2 + 1
    merged = score_cloud(cloud.points, lut[cloud.labels], None, scene.gt_points,
                         scene.gt_point_labels)
    assert merged.merged == ids.size // 2 and merged.n_pred == -(-ids.size // 2)
    assert merged.ap50 <= 0.75 and merged.ap < s.ap - 0.3


def test_given_instance_confidences_rank_the_predictions():
    """pred_conf ranks the predictions instead of the points' mean label_conf: the merged pair
    with the confidences swapped scores as per-point confidences giving the swapped values;
    a predicted label without a confidence is an error."""
    from lift3d.errors import InputError

    pred, gt, conf = _merged_pair()  # per point: 7 at 0.9, 8 at 0.8
    swapped = instance_metrics(pred, gt, conf, ONE, pred_conf={7: 0.8, 8: 0.9})
    want = instance_metrics(pred, gt, _conf(pred, {7: 0.8, 8: 0.9}), ONE)
    assert swapped.ap_at == pytest.approx(want.ap_at)
    # t >= 0.7: C's true positive (8) now ranks above the false positive (7):
    # (p, r) = (1/2, 1/3) at 0.8, (1, 1/3) at 0.9, (1, 0); widths 0, 1/6, 1/6 -> 1/3
    assert swapped.ap_at[0.9] == pytest.approx(1 / 3)
    base = instance_metrics(pred, gt, conf, ONE)
    assert base.ap_at[0.9] == pytest.approx(1 / 12)
    with pytest.raises(InputError, match="no confidence"):
        instance_metrics(pred, gt, conf, ONE, pred_conf={7: 0.5})


def test_cloud_instance_confidence_ranks_a_glimpsed_fragment_last():
    """LabelledCloud.instance_confidence = mean vote share x log(1 + observations): by hand on
    four points, and on a cloud where a fragment seen once with a unanimous vote would rank
    first by its vote share alone (a false positive ahead of the objects)."""
    from lift3d.types import LabelledCloud

    def cloud(labels, share, n_obs):
        n = len(labels)
        return LabelledCloud(np.zeros((n, 3), np.float32), np.zeros((n, 3), np.uint8),
                             np.zeros((n, 3), np.float32), np.asarray(labels, np.int32),
                             np.asarray(share, np.float32), np.asarray(n_obs, np.int32))

    c = cloud([1, 1, 2, 0], [1.0, 0.5, 1.0, 0.3], [3, 5, 1, 9])
    got = c.instance_confidence()
    assert set(got) == {1, 2}
    assert got[1] == pytest.approx(0.75 * np.log(9)) and got[2] == pytest.approx(np.log(2))
    # GT: A, B (200 points each), C (150); predicted A, B exactly (share 0.9, seen 10 times
    # per point), C as 100 points (0.8, 8 times) and a fragment of 50 (1.0, once)
    gt = np.repeat([1, 2, 3], [200, 200, 150])
    pred = np.repeat([5, 6, 7, 8], [200, 200, 100, 50])
    share = np.repeat([0.9, 0.9, 0.8, 1.0], [200, 200, 100, 50])
    n_obs = np.repeat([10, 10, 8, 1], [200, 200, 100, 50])
    c = cloud(pred, share, n_obs)
    conf = c.instance_confidence()
    assert conf[8] < min(conf[5], conf[6], conf[7])
    by_share = instance_metrics(pred, gt, c.label_conf, ONE)
    by_instance = instance_metrics(pred, gt, c.label_conf, ONE, pred_conf=conf)
    # at IoU 0.5 the fragment (IoU 1/3 with C) is a false positive: ranked first by its
    # share it costs precision at every recall, ranked last it costs none
    assert by_instance.ap50 == pytest.approx(1.0) and by_share.ap50 < 0.9
