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


class _Counted:
    """A sequence of frames that counts how often each is read (as a lazy reader would)."""

    def __init__(self, frames):
        self.frames, self.reads = frames, 0

    def __len__(self):
        return len(self.frames)

    def __getitem__(self, f):
        self.reads += 1
        return self.frames[f]


@pytest.mark.parametrize("foreground", [True, False])
def test_binary_figures_count_the_confusion_once(foreground):
    """On binary ground truth the single-object and DAVIS figures of both rules share the one
    confusion the sequence figures count: the same numbers as each scorer counting its own,
    the ground truth read once for it and once per rule by DAVIS F's boundaries."""
    from lift3d.metrics import video

    preds, gt = _frames()
    masks = [(g == 2) & foreground for g in gt]
    counted = _Counted([m.astype(np.int32) for m in masks])
    q = quality_figures(preds, counted)
    assert counted.reads <= 3 * len(masks)
    for rule in video.SELECTION_RULES:
        s = video.single_object_scores(preds, masks, rule)
        got = q.single_object[rule]
        assert (got.iou, got.f1, got.precision, got.recall) == pytest.approx(
            (s.iou, s.f1, s.precision, s.recall), abs=1e-6)
        d = video.davis_scores(preds, masks, rule)
        assert q.davis[rule].JF == (None if np.isnan(d.JF) else pytest.approx(d.JF, abs=1e-6))
