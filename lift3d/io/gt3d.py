"""Labelled 3D ground truth: points (mesh vertices or a cloud) that carry instance IDs.

Two forms are read (0 = unannotated everywhere):

* ScanNet's annotation of a scan (``scans/<scan>/`` of the ScanNet download)::

      <scan>_vh_clean_2.ply                      the annotated mesh; its vertices are the points
      <scan>_vh_clean_2.0.010000.segs.json       {"segIndices": [segment of each vertex], ...}
      <scan>.aggregation.json                    {"segGroups": [{"objectId": k, "label": "chair",
                                                   "segments": [segment IDs]}, ...], ...}

  A vertex's instance is ``objectId + 1`` of the group holding its segment (as ScanNet's
  ``export_train_mesh_for_evaluation.py``: a later group wins a segment listed twice).
  Groups labelled wall, floor or ceiling (:data:`IGNORED_LABELS`) stay unannotated: class-
  agnostic instance evaluation leaves the room's structure out, as ScanNet's benchmark does.
* A PLY whose vertices have x, y, z and an integer ``instance`` (or ``instance_id``, or
  ``label``) property: lift3d's ``gt_cloud.ply`` of generated scenes, or any labelled mesh
  or cloud. ScanNet's ``*_vh_clean_2.labels.ply`` holds semantic classes, not instances, and
  is refused.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lift3d.errors import InputError
from lift3d.io.common import read_ply_vertices

MESH_SUFFIX = "_vh_clean_2.ply"
SEGS_SUFFIX = "_vh_clean_2.0.010000.segs.json"
AGGREGATION_SUFFIX = ".aggregation.json"
IGNORED_LABELS = ("wall", "floor", "ceiling")
"""ScanNet raw categories left unannotated (compared in lower case)."""
INSTANCE_PROPERTIES = ("instance", "instance_id", "label")
"""Vertex properties read as instance IDs, the first present wins."""
LIFT3D_GT_CLOUD = "gt_cloud.ply"


@dataclass
class GroundTruth3D:
    """points: (M, 3) float32, the labelled vertices or points; labels: (M,) int32 instance
    IDs, 0 = unannotated; source: the file the labels came from; prop: the PLY vertex
    property they were read from (None: ScanNet's aggregation)."""

    points: np.ndarray
    labels: np.ndarray
    source: Path
    prop: str | None = None


def read_labelled_ply(path: str | Path) -> GroundTruth3D:
    """A PLY with x, y, z and an instance property (:data:`INSTANCE_PROPERTIES`)."""
    path = Path(path)
    if path.name.endswith("_vh_clean_2.labels.ply"):
        raise InputError("ScanNet's labels.ply holds semantic classes, not instances", path,
                         f"pass the scan folder (with *{MESH_SUFFIX}, *{SEGS_SUFFIX} and "
                         f"*{AGGREGATION_SUFFIX})")
    v = read_ply_vertices(path)
    names = v.dtype.names or ()
    prop = next((p for p in INSTANCE_PROPERTIES if p in names), None)
    if prop is None or not all(c in names for c in "xyz"):
        raise InputError(f"PLY vertices have {', '.join(names)}; expected x, y, z and one of "
                         f"{', '.join(INSTANCE_PROPERTIES)}", path,
                         "write the instance ID of every vertex as a vertex property")
    points = np.stack([np.asarray(v[c], np.float32) for c in "xyz"], axis=1)
    return GroundTruth3D(points, np.asarray(v[prop], np.int64).astype(np.int32), path, prop)


def _read_json(path: Path, key: str) -> dict:
    try:
        doc = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as err:
        raise InputError(f"cannot read JSON ({err})", path) from err
    if not isinstance(doc, dict) or key not in doc:
        raise InputError(f"no {key!r} in this file", path, "is it a ScanNet annotation file?")
    return doc


def read_scannet_instances(mesh: str | Path, segs: str | Path, aggregation: str | Path,
                           ignored: tuple[str, ...] = IGNORED_LABELS) -> GroundTruth3D:
    """Per-vertex instance IDs of a ScanNet scan (module docstring): ``mesh`` the
    ``*_vh_clean_2.ply``, ``segs`` its ``*.segs.json``, ``aggregation`` the
    ``*.aggregation.json``."""
    mesh, segs, aggregation = Path(mesh), Path(segs), Path(aggregation)
    v = read_ply_vertices(mesh)
    points = np.stack([np.asarray(v[c], np.float32) for c in "xyz"], axis=1)
    seg_of_vertex = np.asarray(_read_json(segs, "segIndices")["segIndices"], np.int64)
    if seg_of_vertex.shape != (len(points),):
        raise InputError(f"{seg_of_vertex.size} segment indices for {len(points)} mesh vertices",
                         segs, f"use the segs.json of {mesh.name} (the same decimated mesh)")
    seg_ids, inverse = np.unique(seg_of_vertex, return_inverse=True)
    instance_of_seg = np.zeros(seg_ids.size, np.int32)
    skip = {s.lower() for s in ignored}
    for group in _read_json(aggregation, "segGroups")["segGroups"]:
        if str(group.get("label", "")).lower() in skip:
            continue
        instance_of_seg[_known(seg_ids, group["segments"])] = int(group["objectId"]) + 1
    return GroundTruth3D(points, instance_of_seg[inverse], aggregation)


def _known(seg_ids: np.ndarray, segments) -> np.ndarray:
    """Positions in ``seg_ids`` of the listed segments that exist on the mesh."""
    s = np.asarray(segments, np.int64)
    if seg_ids.size == 0 or s.size == 0:
        return np.zeros(0, np.int64)
    pos = np.clip(np.searchsorted(seg_ids, s), 0, max(seg_ids.size - 1, 0))
    return pos[seg_ids[pos] == s]


def scannet_files(folder: Path) -> tuple[Path, Path, Path] | None:
    """(mesh, segs, aggregation) of the ScanNet scan in ``folder``, None when absent."""
    meshes = sorted(folder.glob(f"*{MESH_SUFFIX}"))
    if not meshes:
        return None
    scan = meshes[0].name[: -len(MESH_SUFFIX)]
    segs = folder / f"{scan}{SEGS_SUFFIX}"
    agg = folder / f"{scan}{AGGREGATION_SUFFIX}"
    missing = [p.name for p in (segs, agg) if not p.is_file()]
    if missing:
        raise InputError(f"ScanNet mesh {meshes[0].name} without {' and '.join(missing)}", folder,
                         "copy the scan's annotation files beside its mesh")
    return meshes[0], segs, agg


def find_gt3d(folder: str | Path) -> GroundTruth3D | None:
    """The labelled 3D ground truth in a scene folder: a ScanNet scan's annotation, else
    lift3d's ``gt_cloud.ply``; None when it has neither."""
    folder = Path(folder)
    files = scannet_files(folder)
    if files is not None:
        return read_scannet_instances(*files)
    if (folder / LIFT3D_GT_CLOUD).is_file():
        return read_labelled_ply(folder / LIFT3D_GT_CLOUD)
    return None


def load_gt3d(path: str | Path) -> GroundTruth3D:
    """Labelled 3D ground truth from a scan folder (:func:`find_gt3d`), a ScanNet
    ``*_vh_clean_2.ply`` (its annotation files beside it) or a labelled PLY."""
    path = Path(path)
    if path.is_dir():
        gt = find_gt3d(path)
        if gt is None:
            raise InputError("no labelled 3D ground truth here", path,
                             f"expected *{MESH_SUFFIX} with *{SEGS_SUFFIX} and "
                             f"*{AGGREGATION_SUFFIX}, or {LIFT3D_GT_CLOUD}")
        return gt
    if not path.is_file():
        raise InputError("no such file or folder", path)
    if path.name.endswith(MESH_SUFFIX):
        files = scannet_files(path.parent)
        if files is not None and files[0] == path:
            return read_scannet_instances(*files)
    return read_labelled_ply(path)
