"""Typed quality figures: ID survival by hand, and report.json's round trip."""

from __future__ import annotations

import numpy as np
import pytest

from lift3d.metrics.quality import QualityFigures, id_survival, quality_figures


def _frames():
    """Three 4x8 frames, instances 1 (left half) and 2 (right half). Predicted: 1 is ID 10
    throughout; 2 is ID 20 in frame 0 and ID 21 in frames 1 and 2 (one ID switch)."""
    gt = np.zeros((4, 8), np.int32)
    gt[:, :4], gt[:, 4:] = 1, 2
    preds = []
    for right in (20, 21, 21):
        p = np.where(gt == 1, 10, right).astype(np.int32)
        preds.append(p)
    return preds, [gt.copy() for _ in range(3)]


def test_id_survival_by_hand():
    preds, gts = _frames()
    q = quality_figures(preds, gts)
    # best ID per frame: IoU 1 everywhere; one ID per instance (21 for instance 2): 1, 1, 1
    # for instance 1 and 0, 1, 1 for instance 2 -> 5/6 over 1
    assert q.sequence.frame_iou == 1.0
    assert q.id_survival() == pytest.approx(5 / 6, abs=1e-6)
    assert QualityFigures.from_json(q.to_json()) == q
    assert id_survival(0.3, 0.0) is None and id_survival(None, 0.5) is None


def test_single_object_survival_uses_the_seqid_rule():
    preds, gts = _frames()
    masks = [(g == 2).astype(np.int32) for g in gts]  # binary: the single-object protocol
    q = quality_figures(preds, masks)
    s = q.single_object
    assert s["frame"].iou == 1.0 and s["sequence"].iou == pytest.approx(2 / 3, abs=1e-6)
    assert q.id_survival() == pytest.approx(2 / 3, abs=1e-6)
    assert QualityFigures.from_json(q.to_json()) == q
