"""The 3D associator on a generated scene whose ground truth is cut the way a segmenter cuts
it: an object split in two tracked IDs must become one, the floor must stay apart from what
stands on it; and the plain data every associator hands the pipeline (mappings, LUTs)."""

from __future__ import annotations

import numpy as np
import pytest

from lift3d.associate import Association, Merge, apply_mapping, groups_to_mapping
from lift3d.associate.scene3d import SceneAssociator, superpoints, voxel_graph
from lift3d.associate.scene3d_config import Scene3DConfig
from lift3d.fuse import FuseAccumulator, fuse_voxel

FLOOR, ROOM, HALF = 900, 901, 1000  # tracked IDs given to the floor, the rest of the room,
# and the second half of the split object


# ------------------------------------------------------------------------- plain data
def test_groups_to_mapping_joins_groups_that_share_an_id():
    m = groups_to_mapping([[5, 3], [7, 5], [9, 8], [4]])
    assert m == {5: 3, 7: 3, 9: 8}  # groups 3-5 and 5-7 are one; {4} alone changes nothing


def test_apply_mapping_is_idempotent_and_keeps_unmapped_ids():
    labels = np.array([[0, 3, 5], [7, 9, 12]], np.int32)
    m = groups_to_mapping([[3, 5, 7], [9, 12]])
    once = apply_mapping(labels, m)
    np.testing.assert_array_equal(once, [[0, 3, 3], [3, 9, 9]])
    np.testing.assert_array_equal(apply_mapping(once, m), once)  # a resumed relabel is safe
    assert once.dtype == np.int32
    np.testing.assert_array_equal(apply_mapping(labels, {}), labels)


def test_association_lut_and_json_round_trip():
    a = Association(groups_to_mapping([[4, 2], [6, 9]]),
                    [Merge([2, 4], 2, "convex", {"convex_share": 0.9}),
                     Merge([6, 9], 6, "superpoints")], "3d")
    lut = a.lut(5)  # a mapped ID beyond max_id still gets its slot
    assert len(lut) == 10 and lut[4] == 2 and lut[9] == 6 and lut[5] == 5 and lut[0] == 0
    b = Association.from_json(a.to_json())
    assert b.mapping == a.mapping and b.method == "3d"
    assert [m.reason for m in b.merges] == ["convex", "superpoints"]


# ------------------------------------------------------------------------- on a scene
@pytest.fixture(scope="module")
def small_scene(tmp_path_factory):
    from lift3d.geometry import build_geometry
    from lift3d.io import load_scene
    from lift3d.synth import make_scene

    path = make_scene(tmp_path_factory.mktemp("assoc") / "s", seed=0, n_frames=8, width=160,
                      height=120)
    scene = load_scene(path, progress=False)
    return scene, build_geometry("rgbd")(scene)


def cut_ground_truth(scene, geometry):
    """Ground-truth IDs cut as a segmenter would: the most seen object split in two along a
    vertical plane through its middle (its right half gets ``HALF``), the floor and the rest
    of the room each one ID. Returns (per-frame ID maps, the split object's ID)."""
    gt = scene.gt_labels
    ids, area = np.unique(np.concatenate([g.ravel() for g in gt]), return_counts=True)
    area[ids == 0] = 0
    obj = int(ids[area.argmax()])
    mid = float(np.median(scene.gt_points[scene.gt_point_labels == obj][:, 0]))
    out = []
    for t, g in enumerate(gt):
        p = geometry[t].points
        lab = g.astype(np.int32).copy()
        lab[(g == obj) & (p[..., 0] > mid)] = HALF
        lab[(g == 0) & (p[..., 2] < 0.02)] = FLOOR
        lab[(g == 0) & (p[..., 2] >= 0.02)] = ROOM
        out.append(lab)
    return out, obj


def associate(scene, geometry, labels, cfg=Scene3DConfig()):
    fusion = FuseAccumulator(fuse_voxel(geometry))
    assoc = SceneAssociator(cfg)
    for t, lab in enumerate(labels):
        fusion.add_frame(geometry[t], scene.frames[t].image, lab)
        assoc.add_frame(t, scene.frames[t].image, lab, geometry[t])
    return assoc.solve(fusion), fusion


def test_split_object_is_merged_and_the_floor_is_not(small_scene):
    scene, geometry = small_scene
    labels, obj = cut_ground_truth(scene, geometry)
    a, _ = associate(scene, geometry, labels)
    assert a.method == "3d"
    assert a.mapping.get(HALF) == obj, a.to_json()  # the two halves are one object again
    objects = set(np.unique(np.concatenate([g.ravel() for g in scene.gt_labels])).tolist()) - {0}
    objects |= {HALF}
    for merge in a.merges:  # no merge joins the room with an object, nor two objects
        assert merge.reason and merge.evidence["links"]
        in_room = {FLOOR, ROOM} & set(merge.ids)
        assert not in_room or set(merge.ids) <= {FLOOR, ROOM}, merge
        assert len({obj if i == HALF else i for i in merge.ids} & (objects | {obj})) <= 1, merge


def test_uncut_ground_truth_gets_no_merge_between_objects(small_scene):
    """Ground truth as tracked IDs: every object is whole, so nothing but room pieces may
    merge (a check against merging what only touches)."""
    scene, geometry = small_scene
    labels = [g.astype(np.int32) for g in scene.gt_labels]
    a, _ = associate(scene, geometry, labels)
    assert a.mapping == {}, a.to_json()


def test_superpoints_cut_objects_from_the_floor(small_scene):
    """The superpoints of the fused cloud: objects (convex pieces) are not one superpoint
    with the floor (a concave crease lies between)."""
    scene, geometry = small_scene
    labels = [g.astype(np.int32) for g in scene.gt_labels]
    fusion = FuseAccumulator(fuse_voxel(geometry))
    for t, lab in enumerate(labels):
        fusion.add_frame(geometry[t], scene.frames[t].image, lab)
    votes = fusion.votes()
    sp = superpoints(voxel_graph(votes), len(votes.n_obs), Scene3DConfig())
    from lift3d.associate.scene3d import voxel_winners

    lab, _ = voxel_winners(votes)
    floor = sp[(lab == 0) & (votes.points[:, 2] < 0.02)]
    floor_sp = np.bincount(floor).argmax()  # the floor's own superpoint
    in_floor_sp = lab[sp == floor_sp]
    assert (in_floor_sp == 0).mean() > 0.97  # objects' voxels stay out of it
    assert len(np.unique(sp)) < len(sp) / 20  # superpoints, not voxels


def test_two_d_geometry_gives_no_merge(small_scene):
    scene, geometry = small_scene
    assoc = SceneAssociator()
    labels, _ = cut_ground_truth(scene, geometry)
    assoc.add_frame(0, scene.frames[0].image, labels[0], None)
    assert assoc.solve(None).mapping == {}
