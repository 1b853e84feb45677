"""2D quality metrics: confusion counts against direct per-ID loops, the two ID-selection
rules, and DAVIS J / F / statistics against their definitions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from skimage.morphology import disk

from lift3d.errors import InputError, ShapeError
from lift3d.metrics.video import (
    bound_pixels,
    boundary_f,
    confusion,
    davis_scores,
    davis_statistics,
    seg2bmap,
    select_ids,
    sequence_iou,
    single_object_scores,
)


def _disc(hw, cy, cx, r):
    yy, xx = np.ogrid[: hw[0], : hw[1]]
    return (yy - cy) ** 2 + (xx - cx) ** 2 <= r * r


def _video(n=8, hw=(40, 60)):
    """GT: object 1 a disc moving right, object 2 a fixed square. Prediction: the disc is ID 7
    but ID 9 in frames 5..7 (an ID switch), the square is ID 3 shifted by one pixel."""
    gt, pred = [], []
    for f in range(n):
        g = np.zeros(hw, np.int32)
        g[5:15, 40:55] = 2
        g[_disc(hw, 20, 10 + 3 * f, 8)] = 1
        p = np.zeros(hw, np.int32)
        p[6:16, 40:55] = 3
        p[_disc(hw, 20, 11 + 3 * f, 8)] = 7 if f < 5 else 9
        gt.append(g)
        pred.append(p)
    return pred, gt


def test_confusion_matches_direct_counts():
    pred, gt = _video()
    conf = confusion(pred, gt)
    for f in range(len(pred)):
        for i, p in enumerate(conf.pred_ids):
            for j, g in enumerate(conf.gt_ids):
                assert conf.inter_at(f, i, j) == np.sum((pred[f] == p) & (gt[f] == g))
                assert conf.pred_area_at(f, i) == np.sum(pred[f] == p)
    i7, j1 = int(np.searchsorted(conf.pred_ids, 7)), 1
    sel = np.zeros(conf.gt_area.shape, int)
    sel[:, j1] = i7
    a, b = pred[0] == 7, gt[0] == 1
    assert conf.iou_at(sel)[0, j1] == pytest.approx((a & b).sum() / (a | b).sum())


def test_selection_rules():
    pred, gt = _video()
    conf = confusion(pred, gt)
    per_frame = conf.pred_ids[select_ids(conf, "frame")[:, 1]]
    np.testing.assert_array_equal(per_frame, [7] * 5 + [9] * 3)
    per_seq = conf.pred_ids[select_ids(conf, "sequence")[:, 1]]
    np.testing.assert_array_equal(per_seq, [7] * 8)
    with pytest.raises(InputError, match="rule"):
        select_ids(conf, "best")


def test_single_object_protocol():
    pred, gt = _video()
    masks = [g == 1 for g in gt]
    fr = single_object_scores(pred, masks, "frame")
    sq = single_object_scores(pred, masks, "sequence")
    a, b = pred[0] == 7, masks[0]
    i = (a & b).sum()
    assert fr.per_frame["iou"][0] == pytest.approx(i / (a | b).sum())
    assert fr.per_frame["f1"][0] == pytest.approx(2 * i / (a.sum() + b.sum()))
    assert fr.per_frame["precision"][0] == pytest.approx(i / a.sum())
    assert fr.per_frame["recall"][0] == pytest.approx(i / b.sum())
    # the switch costs only under the per-sequence rule: frames 5..7 score 0 there
    np.testing.assert_array_equal(sq.per_frame["iou"][5:], 0.0)
    assert sq.iou == pytest.approx(fr.iou * 5 / 8)
    assert fr.iou > 0.8


def test_absent_object_frames_score_one_when_nothing_selected():
    pred, gt = _video(n=4)
    masks = [g == 1 for g in gt]
    masks[2][:] = False
    pred[2][pred[2] == 7] = 0
    s = single_object_scores(pred, masks, "frame")
    assert s.per_frame["iou"][2] == 1.0 and s.ids[2] == 0
    # no foreground at all, nothing predicted: perfect
    empty = single_object_scores([np.zeros((5, 5), int)] * 3, [np.zeros((5, 5), bool)] * 3)
    assert empty.iou == 1.0 and empty.f1 == 1.0


def test_sequence_iou_pools_pixels_over_frames():
    pred, gt = _video()
    r = sequence_iou(pred, gt)
    # disc: ID 7 covers 5 of 8 frames -> pooled IoU is well below the per-frame one
    s_iou, f_iou, best = r.per_instance[1]
    assert best == 7
    inter = sum(((p == 7) & (g == 1)).sum() for p, g in zip(pred, gt, strict=True))
    union = sum(((p == 7) | (g == 1)).sum() for p, g in zip(pred, gt, strict=True))
    assert s_iou == pytest.approx(inter / union)
    assert f_iou > s_iou
    assert r.per_instance[2][2] == 3
    assert r.sequence_iou == pytest.approx((s_iou + r.per_instance[2][0]) / 2)


def test_seg2bmap_convention():
    m = np.zeros((6, 7), bool)
    m[2:4, 2:5] = True
    b = seg2bmap(m)
    # east / south / south-east differences mark the pixel itself
    expect = np.zeros_like(m)
    for y in range(6):
        for x in range(7):
            nb = [m[y, x + 1] if x + 1 < 7 else False, m[y + 1, x] if y + 1 < 6 else False,
                  m[y + 1, x + 1] if (x + 1 < 7 and y + 1 < 6) else False]
            if y == 5 and x == 6:
                continue
            if y == 5:
                nb = [nb[0]]
            elif x == 6:
                nb = [nb[1]]
            expect[y, x] = any(m[y, x] != v for v in nb)
    np.testing.assert_array_equal(b, expect)
    assert not seg2bmap(np.ones((4, 4), bool)).any()


def test_boundary_f_definition():
    hw = (120, 160)
    assert bound_pixels(hw) == math.ceil(0.008 * math.hypot(*hw)) == 2
    gt = _disc(hw, 60, 80, 30)
    assert boundary_f(gt, gt) == 1.0
    # a 1-pixel shift lies within the 2-pixel tolerance; a 10-pixel one mostly not
    assert boundary_f(gt, np.roll(gt, 1, axis=1)) == 1.0
    far = np.roll(gt, 10, axis=1)
    f = boundary_f(gt, far)
    gb, pb = seg2bmap(gt), seg2bmap(far)
    from scipy.ndimage import binary_dilation

    se = disk(2).astype(bool)
    p = (pb & binary_dilation(gb, se)).sum() / pb.sum()
    r = (gb & binary_dilation(pb, se)).sum() / gb.sum()
    assert f == pytest.approx(2 * p * r / (p + r))
    assert 0 < f < 0.6
    assert boundary_f(gt, np.zeros(hw, bool)) == 0.0
    assert boundary_f(np.zeros(hw, bool), np.zeros(hw, bool)) == 1.0


def test_davis_statistics():
    v = np.array([1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2])
    mean, rec, decay = davis_statistics(v)
    assert mean == pytest.approx(v.mean())
    assert rec == pytest.approx(5 / 9)  # 1.0 .. 0.6; 0.5 is not > 0.5
    # DAVIS bins of 9 frames: ids = round(linspace(1, 9, 5)) - 1 = [0, 2, 4, 6, 8]
    assert decay == pytest.approx(v[0:3].mean() - v[6:9].mean())


def test_davis_scores_rules_and_objects():
    pred, gt = _video()
    fr = davis_scores(pred, gt, "frame")
    sq = davis_scores(pred, gt, "sequence")
    assert set(fr.per_object) == {1, 2}
    assert fr.J["mean"] > 0.8 and fr.F["mean"] > 0.8
    assert sq.J["mean"] < fr.J["mean"]
    np.testing.assert_array_equal(sq.per_object[1]["J"][5:], 0.0)
    np.testing.assert_array_equal(sq.per_object[1]["F"][5:], 0.0)
    assert sq.J["decay"] > 0.3  # late frames lost under the per-sequence rule
    assert fr.JF == pytest.approx((fr.J["mean"] + fr.F["mean"]) / 2)
    perfect = davis_scores(gt, gt)
    assert perfect.J == {"mean": 1.0, "recall": 1.0, "decay": 0.0}
    assert perfect.F["mean"] == 1.0


def test_shape_errors_are_named():
    pred, gt = _video(n=2)
    with pytest.raises(ShapeError, match="pred\\[1\\]"):
        confusion([pred[0], pred[1][:-1]], gt)
    with pytest.raises(ShapeError, match="one of each"):
        confusion(pred[:1], gt)


def test_void_pixels_are_not_counted_and_first_last_skip():
    from lift3d.metrics.video import VideoMetricsConfig

    pred, gt = _video(n=6)
    noisy = [p.copy() for p in pred]
    gt_void = [g.copy() for g in gt]
    for p, g in zip(noisy, gt_void, strict=True):
        p[30:, :] = 7  # wrong ID painted where the ground truth is void
        g[30:, :] = 255
    cfg = VideoMetricsConfig(void_id=255)
    clean = davis_scores(pred, gt, config=cfg)
    voided = davis_scores(noisy, gt_void, config=cfg)
    assert set(voided.per_object) == {1, 2}
    np.testing.assert_allclose(voided.per_object[2]["J"], clean.per_object[2]["J"])
    assert davis_scores(noisy, gt_void).J["mean"] < voided.J["mean"]  # 255 as an object
    skip = davis_scores(pred, gt, config=VideoMetricsConfig(skip_first_last=True))
    assert skip.per_object[1]["J"].shape == (4,)
