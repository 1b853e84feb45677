"""Metrics: multi-view consistency H(I, M), 2D video quality, 3D instance quality.

* :mod:`lift3d.metrics.consistency` — ``consistency`` (exact H), ``consistency_per_mask``
  (the cheap approximation), ``consistency_reference`` (plain loop, tests only). Import
  ``consistency`` from that module: the package attribute of that name is the module.
* :mod:`lift3d.metrics.video` — ``single_object_scores``, ``davis_scores`` (J / F),
  ``sequence_iou``.
* :mod:`lift3d.metrics.instance3d` — ``instance_metrics`` (ScanNet's AP protocol),
  ``score_cloud`` (a labelled cloud against labelled ground-truth points), ``transfer_labels``.
* :mod:`lift3d.metrics.outputs` — ``measure_outputs``: H of any model's per-pixel outputs
  (ID maps or feature maps in a folder) on a scene: `lift3d consistency`.

H = 1 for a labelling with one label everywhere: report it beside a quality figure.
Names are imported on first use, so ``import lift3d.metrics`` stays light.
"""

from __future__ import annotations

import importlib

_WHERE = {
    "ConsistencyConfig": "consistency",
    "ConsistencyResult": "consistency",
    "consistency_per_mask": "consistency",
    "consistency_reference": "consistency",
    "consistency_of_labels": "consistency",
    "consistency_frames": "consistency",
    "feature_error_bound": "consistency",
    "measure_outputs": "outputs",
    "OutputsConfig": "outputs",
    "VideoMetricsConfig": "video",
    "single_object_scores": "video",
    "davis_scores": "video",
    "sequence_iou": "video",
    "InstanceMetricsConfig": "instance3d",
    "instance_metrics": "instance3d",
    "transfer_labels": "instance3d",
    "score_cloud": "instance3d",
}

__all__ = sorted(_WHERE)


def __getattr__(name: str):
    if name in _WHERE:
        module = importlib.import_module(f"lift3d.metrics.{_WHERE[name]}")
        return getattr(module, name)
    raise AttributeError(f"module 'lift3d.metrics' has no attribute {name!r}")
