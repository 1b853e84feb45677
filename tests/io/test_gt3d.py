"""Labelled 3D ground truth: ScanNet's scan annotation (mesh + segs + aggregation) and
labelled PLYs, written in their formats from known labels."""

from __future__ import annotations

import numpy as np
import pytest
from _scannet_gt import write_scannet_scan

from lift3d.errors import InputError
from lift3d.io.gt3d import find_gt3d, load_gt3d, read_labelled_ply
from lift3d.io.outputs import write_ply
from lift3d.types import LabelledCloud


def _labelled(n=900, seed=0):
    rng = np.random.default_rng(seed)
    pts = rng.random((n, 3)).astype(np.float32)
    lab = rng.integers(0, 5, n).astype(np.int32)
    return pts, lab


def test_scannet_scan_gives_each_vertex_its_instance(tmp_path):
    pts, lab = _labelled()
    write_scannet_scan(tmp_path / "scene0007_00", "scene0007_00", pts, lab)
    gt = find_gt3d(tmp_path / "scene0007_00")
    np.testing.assert_array_equal(gt.points, pts)
    np.testing.assert_array_equal(gt.labels, lab)  # objectId + 1; walls and floors stay 0
    assert gt.source.name == "scene0007_00.aggregation.json"
    same = load_gt3d(tmp_path / "scene0007_00" / "scene0007_00_vh_clean_2.ply")
    np.testing.assert_array_equal(same.labels, lab)


def test_wall_and_floor_groups_stay_unannotated(tmp_path):
    import json

    pts, lab = _labelled()
    folder = write_scannet_scan(tmp_path / "s", "s", pts, lab)
    agg = folder / "s.aggregation.json"
    doc = json.loads(agg.read_text())
    doc["segGroups"][0]["label"] = "wall"  # instance 1 now a wall
    agg.write_text(json.dumps(doc))
    gt = find_gt3d(folder)
    np.testing.assert_array_equal(gt.labels, np.where(lab == 1, 0, lab))


def test_scannet_files_must_agree(tmp_path):
    import json

    pts, lab = _labelled()
    folder = write_scannet_scan(tmp_path / "s", "s", pts, lab)
    segs = folder / "s_vh_clean_2.0.010000.segs.json"
    doc = json.loads(segs.read_text())
    doc["segIndices"] = doc["segIndices"][:-5]
    segs.write_text(json.dumps(doc))
    with pytest.raises(InputError, match="895 segment indices for 900 mesh vertices"):
        find_gt3d(folder)
    (folder / "s.aggregation.json").unlink()
    with pytest.raises(InputError, match="without s.aggregation.json"):
        find_gt3d(folder)


def test_labelled_ply(tmp_path):
    pts, lab = _labelled()
    n = len(pts)
    cloud = LabelledCloud(pts, np.zeros((n, 3), np.uint8), np.zeros((n, 3), np.float32), lab,
                          np.ones(n, np.float32), np.ones(n, np.int32))
    write_ply(tmp_path / "gt_cloud.ply", cloud)  # lift3d's own: a `label` property
    gt = find_gt3d(tmp_path)
    np.testing.assert_array_equal(gt.labels, lab)
    from plyfile import PlyData, PlyElement

    v = np.zeros(n, [("x", "f4"), ("y", "f4"), ("z", "f4"), ("instance", "i4"), ("label", "i4")])
    v["x"], v["y"], v["z"], v["instance"], v["label"] = *pts.T, lab, 7
    PlyData([PlyElement.describe(v, "vertex")]).write(str(tmp_path / "mine.ply"))
    np.testing.assert_array_equal(load_gt3d(tmp_path / "mine.ply").labels, lab)  # instance wins
    bare = np.zeros(n, [("x", "f4"), ("y", "f4"), ("z", "f4")])
    PlyData([PlyElement.describe(bare, "vertex")]).write(str(tmp_path / "bare.ply"))
    with pytest.raises(InputError, match="expected x, y, z and one of instance"):
        read_labelled_ply(tmp_path / "bare.ply")
    with pytest.raises(InputError, match="semantic classes"):
        read_labelled_ply(tmp_path / "x_vh_clean_2.labels.ply")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="no labelled 3D ground truth"):
        load_gt3d(tmp_path / "empty")
