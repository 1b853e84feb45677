"""The sparse confusion (video.confusion) against the plain dense (frames x predicted IDs x
ground-truth IDs) tensor it replaced: every figure equal to the last bit on random sequences
with ID switches, absent objects, unlabelled pixels, void pixels and tied IoUs."""

from __future__ import annotations

import numpy as np
import pytest

from lift3d.metrics import quality, video


def _dense(pred, gt, void_id=None):
    """The plain reference: (pred_ids, gt_ids, inter (F, P, G)) by direct counting."""
    keep = [np.ones(g.shape, bool) if void_id is None else g != void_id for g in gt]
    pred_ids = np.union1d(0, np.unique(np.concatenate([p[k] for p, k in zip(pred, keep, strict=True)])))
    gt_ids = np.union1d(0, np.unique(np.concatenate([g[k] for g, k in zip(gt, keep, strict=True)])))
    inter = np.zeros((len(pred), pred_ids.size, gt_ids.size), np.int64)
    for f in range(len(pred)):
        for i, p in enumerate(pred_ids):
            for j, g in enumerate(gt_ids):
                inter[f, i, j] = np.sum((pred[f] == p) & (gt[f] == g) & keep[f])
    return pred_ids, gt_ids, inter


def _dense_iou(inter):
    pa, ga = inter.sum(2), inter.sum(1)
    x = inter.astype(np.float64)
    union = pa[:, :, None] + ga[:, None, :] - x
    iou = np.where(union > 0, x / np.maximum(union, 1), 1.0)
    iou[:, 0, :] = (ga == 0).astype(np.float64)
    return iou


def _dense_select(inter, rule):
    iou = _dense_iou(inter)
    if rule == "frame":
        return iou.argmax(axis=1)
    return np.broadcast_to(iou.mean(axis=0).argmax(axis=0), iou[:, 0, :].shape)


def _gather(a, sel):
    f, g = np.meshgrid(np.arange(a.shape[0]), np.arange(a.shape[2]), indexing="ij")
    return a[f, sel, g]


def _random_video(seed, n=12, hw=(9, 11), n_ids=6, n_gt=3):
    """Blocky maps with few IDs (so IoUs tie), objects that leave some frames, ID 0 pixels."""
    rng = np.random.default_rng(seed)
    pred, gt = [], []
    for f in range(n):
        p = np.kron(rng.integers(0, n_ids, (3, 4)), np.ones((3, 3), int))[: hw[0], : hw[1]]
        g = np.kron(rng.integers(0, n_gt + 1, (3, 4)), np.ones((3, 3), int))[: hw[0], : hw[1]]
        if f % 5 == 2:
            g[g == 1] = 0  # object 1 absent from this frame
        if seed % 2:
            p = np.where(rng.random(hw) < 0.1, rng.integers(0, n_ids, hw), p)
        pred.append((p * 3 + 1) * (p > 0))  # sparse ID values, 0 kept
        gt.append(g)
    return pred, gt


@pytest.mark.parametrize("seed", range(6))
def test_sparse_confusion_equals_dense_reference(seed):
    pred, gt = _random_video(seed)
    pred_ids, gt_ids, inter = _dense(pred, gt)
    conf = video.confusion(pred, gt)
    np.testing.assert_array_equal(conf.pred_ids, pred_ids)
    np.testing.assert_array_equal(conf.gt_ids, gt_ids)
    np.testing.assert_array_equal(conf.gt_area, inter.sum(1))
    f, p, g = np.indices(inter.shape)
    np.testing.assert_array_equal(conf.inter_at(f, p, g), inter)
    np.testing.assert_array_equal(conf.pred_area_at(f[:, :, 0], p[:, :, 0]), inter.sum(2))
    iou = _dense_iou(inter)
    for rule in video.SELECTION_RULES:
        sel = video.select_ids(conf, rule)
        np.testing.assert_array_equal(sel, _dense_select(inter, rule))
        assert np.array_equal(conf.iou_at(sel), _gather(iou, sel))  # bit for bit
    np.testing.assert_array_equal(conf.mean_iou(), iou.mean(axis=0))

    # sequence IoU: pooled over frames, and the per-frame best
    seq = video.sequence_iou(pred, gt)
    x = inter.sum(0).astype(np.float64)
    union = inter.sum((0, 2))[:, None] + inter.sum((0, 1))[None, :] - x
    pooled = np.where(union > 0, x / np.maximum(union, 1), 0.0)
    pooled[0] = 0.0
    per_frame = _gather(iou, _dense_select(inter, "frame"))
    for j in range(1, gt_ids.size):
        i = int(pooled[:, j].argmax())
        assert seq.per_instance[int(gt_ids[j])] == (pooled[i, j], per_frame[:, j].mean(), pred_ids[i])


@pytest.mark.parametrize("seed", range(4))
def test_single_object_and_davis_equal_dense_reference(seed):
    pred, gt = _random_video(seed, n_gt=1)
    masks = [g == 1 for g in gt]
    pred_ids, gt_ids, inter = _dense(pred, masks)
    iou = _dense_iou(inter)
    for rule in video.SELECTION_RULES:
        sel = _dense_select(inter, rule)[:, 1]
        s = video.single_object_scores(pred, masks, rule)
        x = inter[np.arange(len(pred)), sel, 1].astype(np.float64) * (sel > 0)
        a_p = inter.sum(2)[np.arange(len(pred)), sel].astype(np.float64) * (sel > 0)
        a_g = inter.sum(1)[:, 1].astype(np.float64)
        union = a_p + a_g - x
        assert np.array_equal(s.per_frame["iou"], np.where(union > 0, x / np.maximum(union, 1), 1.0))
        assert np.array_equal(s.per_frame["precision"], np.where(a_p > 0, x / np.maximum(a_p, 1), 1.0))
        np.testing.assert_array_equal(s.ids, pred_ids[sel])
        d = video.davis_scores(pred, masks, rule)
        assert np.array_equal(d.per_object[1]["J"], iou[np.arange(len(pred)), sel, 1])


def test_void_pixels_left_out_as_in_dense_reference():
    pred, gt = _random_video(3)
    gt = [np.where(np.arange(g.size).reshape(g.shape) % 7 == 0, 255, g) for g in gt]
    _, gt_ids, inter = _dense(pred, gt, void_id=255)
    conf = video.confusion(pred, gt, void_id=255)
    np.testing.assert_array_equal(conf.gt_ids, gt_ids)
    f, p, g = np.indices(inter.shape)
    np.testing.assert_array_equal(conf.inter_at(f, p, g), inter)


def test_quality_per_frame_iou_equals_dense_reference():
    pred, gt = _random_video(1, n=15)
    pred_ids, gt_ids, inter = _dense(pred, gt)
    iou = _dense_iou(inter)
    q = quality.quality_figures(pred, gt)
    by_frame = _gather(iou, _dense_select(inter, "frame"))[:, 1:].mean(1)
    seq = video.sequence_iou(pred, gt)
    cols = np.searchsorted(pred_ids, [seq.per_instance[int(g)][2] for g in gt_ids[1:]])
    by_seq = iou[:, cols, np.arange(1, gt_ids.size)].mean(1)
    assert q.sequence.per_frame_iou == {"frame": [quality._num(v) for v in by_frame],
                                        "sequence": [quality._num(v) for v in by_seq]}
