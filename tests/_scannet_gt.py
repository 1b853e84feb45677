"""Writes labelled points as a ScanNet scan's annotation, in ScanNet's own formats.

``<scan>_vh_clean_2.ply``: binary little-endian PLY, vertices x, y, z (float32), red, green,
blue, alpha (uchar) and faces (``vertex_indices``, uchar count + int indices), as ScanNet ships
it. ``<scan>_vh_clean_2.0.010000.segs.json``: ``{"params": {...}, "sceneId": scan,
"segIndices": [segment of each vertex]}``. ``<scan>.aggregation.json``: ``{"sceneId":
"scannet." + scan, "appId": ..., "segGroups": [{"id", "objectId", "segments", "label"}],
"segmentsFile": "scannet." + scan + "_vh_clean_2.0.010000.segs.json"}``.

Each instance k > 0 is cut into three segments that one group (objectId k - 1, label
"object") aggregates, as ScanNet's annotators join over-segments into objects. Unannotated
points (label 0) become segments of "wall" and "floor" groups (which the reader ignores) and
segments no group lists.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from plyfile import PlyData, PlyElement


def write_scannet_scan(folder: Path, scan: str, points: np.ndarray, labels: np.ndarray,
                       seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    n = len(points)
    vertex = np.zeros(n, [("x", "f4"), ("y", "f4"), ("z", "f4"), ("red", "u1"), ("green", "u1"),
                          ("blue", "u1"), ("alpha", "u1")])
    for k, c in enumerate("xyz"):
        vertex[c] = points[:, k]
    vertex["red"], vertex["green"], vertex["blue"], vertex["alpha"] = 128, 128, 128, 255
    faces = np.zeros(n // 3, [("vertex_indices", "i4", (3,))])
    faces["vertex_indices"] = np.arange(3 * (n // 3)).reshape(-1, 3)
    PlyData([PlyElement.describe(vertex, "vertex"),
             PlyElement.describe(faces, "face", len_types={"vertex_indices": "u1"})],
            text=False, byte_order="<").write(str(folder / f"{scan}_vh_clean_2.ply"))

    part = rng.integers(0, 3, n)
    seg = np.where(labels > 0, labels * 10 + part, 100_000 + part)  # room: 3 segments
    groups = [{"id": int(k) - 1, "objectId": int(k) - 1, "label": "object",
               "segments": sorted({int(s) for s in seg[labels == k]})}
              for k in np.unique(labels[labels > 0])]
    room = len(groups) + 1000
    groups += [{"id": room, "objectId": room, "label": "wall", "segments": [100_000]},
               {"id": room + 1, "objectId": room + 1, "label": "Floor", "segments": [100_001]}]
    (folder / f"{scan}_vh_clean_2.0.010000.segs.json").write_text(json.dumps(
        {"params": {"kThresh": "0.0001", "segMinVerts": "20", "minPoints": "750",
                    "maxPoints": "30000", "thinThresh": "0.05", "flatThresh": "0.001",
                    "minLength": "0.02", "maxLength": "1"},
         "sceneId": scan, "segIndices": seg.tolist()}))
    (folder / f"{scan}.aggregation.json").write_text(json.dumps(
        {"sceneId": f"scannet.{scan}", "appId": "Aggregator.v2", "segGroups": groups,
         "segmentsFile": f"scannet.{scan}_vh_clean_2.0.010000.segs.json"}))
    return folder
