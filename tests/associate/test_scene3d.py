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


# ------------------------------------------------------------- support direction (gravity)
VOX = 0.01
FLOOR_ID, SLAB, BOX_ON, BOX_A, BOX_B = 1, 2, 7, 8, 9
LEGS = (3, 4, 5, 6)


def _face(lo, hi, axis, sign):
    """Points on one face of the box [lo, hi] (metres) at voxel centres, with its outward
    normal: the face normal to ``axis`` on the ``sign`` side."""
    lo, hi = np.asarray(lo, float), np.asarray(hi, float)
    grids = []
    for d in range(3):
        if d == axis:
            grids.append(np.array([hi[d] if sign > 0 else lo[d]]))
        else:
            grids.append(np.arange(lo[d] + VOX / 2, hi[d], VOX))
    p = np.stack(np.meshgrid(*grids, indexing="ij"), -1).reshape(-1, 3)
    n = np.zeros_like(p)
    n[:, axis] = sign
    return p, n


def _cuboid(lo, hi, label, hidden=()):
    """The faces of a cuboid (minus ``hidden``: (axis, sign) pairs) as labelled points."""
    ps, ns = [], []
    for axis in range(3):
        for sign in (-1, 1):
            if (axis, sign) not in hidden:
                p, n = _face(lo, hi, axis, sign)
                ps.append(p)
                ns.append(n)
    p, n = np.concatenate(ps), np.concatenate(ns)
    return p, n, np.full(len(p), label)


def _votes(*parts):
    p = np.concatenate([x[0] for x in parts])
    n = np.concatenate([x[1] for x in parts])
    lab = np.concatenate([x[2] for x in parts])
    acc = FuseAccumulator(VOX)
    acc.add(p, np.full((len(p), 3), 128, np.uint8), n, lab, np.ones(len(p)))
    return acc.votes()


def _furniture(with_legs=True):
    """A floor, a 0.8 x 0.6 m slab 0.7 m up on four 5 cm legs (one ID each), a box resting on
    the slab, and two boxes side by side on the floor (no face hidden but the ones resting)."""
    floor = _face((-1.0, -1.0, 0.0), (1.0, 1.0, 0.0), 2, 1)
    x, y = floor[0][:, 0], floor[0][:, 1]
    keep = ~((x > 0.5) & (x < 0.95) & (np.abs(y) < 0.15))  # under the two boxes
    parts = [(floor[0][keep], floor[1][keep], np.full(int(keep.sum()), FLOOR_ID))]
    top_lo, top_hi = (-0.4, -0.3, 0.70), (0.4, 0.3, 0.74)
    slab = _cuboid(top_lo, top_hi, SLAB)
    legs = []
    for k, (x, y) in enumerate([(-0.3, -0.2), (-0.3, 0.2), (0.3, -0.2), (0.3, 0.2)]):
        lo, hi = (x - 0.025, y - 0.025, 0.0), (x + 0.025, y + 0.025, 0.70)
        legs.append(_cuboid(lo, hi, LEGS[k], hidden=((2, -1), (2, 1))))
    if with_legs:  # the slab's underside is hidden where a leg meets it
        p, n, lab = slab
        under = n[:, 2] < 0
        inside = np.zeros(len(p), bool)
        for x, y in [(-0.3, -0.2), (-0.3, 0.2), (0.3, -0.2), (0.3, 0.2)]:
            inside |= (np.abs(p[:, 0] - x) < 0.025) & (np.abs(p[:, 1] - y) < 0.025)
        slab = (p[~(under & inside)], n[~(under & inside)], lab[~(under & inside)])
        parts += legs
    parts.append(slab)
    parts.append(_cuboid((-0.1, -0.1, 0.74), (0.1, 0.1, 0.94), BOX_ON, hidden=((2, -1),)))
    # two boxes on the floor, touching along x = 0.75 (the floor is cut out under them)
    parts.append(_cuboid((0.5, -0.15, 0.0), (0.75, 0.15, 0.3), BOX_A, hidden=((2, -1), (0, 1))))
    parts.append(_cuboid((0.75, -0.15, 0.0), (0.95, 0.15, 0.3), BOX_B, hidden=((2, -1), (0, -1))))
    return _votes(*parts)


def _groups(votes, cam_up, cfg=Scene3DConfig()):
    from lift3d.associate.scene3d import associate_rounds

    links = associate_rounds(votes, {}, cfg, None if cam_up is None else np.asarray(cam_up))
    return groups_to_mapping([(e.a, e.b) for e in links]), links


def test_a_slab_on_four_legs_is_one_object_and_what_rests_on_it_is_not():
    """Support direction: each leg meets the slab's underside (facing down) from below with
    its sides, so it hangs from the slab; the box on the slab meets its top (facing up), and
    the two boxes on the floor meet side by side: neither is an attachment. The cameras'
    up is off by 17 degrees; the floor gives the true one."""
    mapping, links = _groups(_furniture(), (0.3, 0.0, 1.0))
    for leg in LEGS:
        assert mapping.get(leg) == SLAB, [(e.a, e.b, e.reasons) for e in links]
    assert all("attached" in e.reasons for e in links if {e.a, e.b} & set(LEGS))
    for other in (BOX_ON, BOX_A, BOX_B, FLOOR_ID):
        assert mapping.get(other, other) == other, [(e.a, e.b, e.reasons) for e in links]


def test_no_attachment_without_gravity_or_with_the_rule_off():
    """Without cameras there is no up (the data's axes are never read), and the rule can be
    switched off: the legs stay apart (convexity refuses their concave seam)."""
    votes = _furniture()
    for cam_up, cfg in ((None, Scene3DConfig()), ((0, 0, 1.0), Scene3DConfig(attach=False))):
        mapping, _ = _groups(votes, cam_up, cfg)
        assert not set(LEGS) & set(mapping), mapping


def test_gravity_is_the_floor_normal_facing_the_cameras():
    from lift3d.associate.scene3d import gravity, id_shapes, structure_ids, voxel_winners

    votes = _furniture(with_legs=False)
    lab, _ = voxel_winners(votes)
    shapes = id_shapes(lab, votes.points, votes.voxel)
    structure = structure_ids(shapes, set(), votes.voxel, Scene3DConfig())
    assert FLOOR_ID in structure
    up = gravity(lab, votes, shapes, structure, np.array([0.3, 0.0, 1.0]), Scene3DConfig())
    assert up @ np.array([0.0, 0.0, 1.0]) > 0.999
    # an upside-down camera finds no floor facing it and keeps its own (wrong) up: no floor
    # is taken for a ceiling
    down = gravity(lab, votes, shapes, structure, np.array([0.0, 0.0, -1.0]), Scene3DConfig())
    assert down @ np.array([0.0, 0.0, -1.0]) > 0.999


def test_a_seam_the_views_see_sharply_convex_needs_less_3d_convexity():
    """A box cut into its top (one ID) and its sides (another): the seam is convex. With a 3D
    share demanded above what any seam reaches, only ``convex_share_seen`` can accept it, and
    only when the views saw the seam convex at >= ``convex_share_2d_sharp`` and touching."""
    from lift3d.associate.scene3d import judge_pairs

    p, n, lab = _cuboid((0.0, 0.0, 0.0), (0.3, 0.3, 0.3), 2, hidden=((2, -1),))
    lab = np.where(n[:, 2] > 0, 3, lab)  # the top is ID 3
    votes = _votes((p, n, lab))

    def convex(row, **kw):
        cfg = Scene3DConfig(convex_share=1.01, attach=False, **kw)
        e = judge_pairs(votes, {(2, 3): np.array(row, np.int64)}, cfg)[(2, 3)]
        return "convex" in e.reasons

    # (views seeing both, touching, contact px, convex px, concave px, pixels of the smaller
    # ID over the views seeing both, over those touching)
    sharp, blurred = [6, 6, 100, 95, 5, 600, 600], [6, 6, 100, 88, 12, 600, 600]
    apart = [6, 1, 100, 95, 5, 600, 100]
    assert convex(sharp, convex_share_seen=0.8)
    assert not convex(sharp, convex_share_seen=1.01)  # the rule off: the 3D share decides
    assert not convex(blurred, convex_share_seen=0.8)  # the views' seam not sharp enough
    assert not convex(apart, convex_share_seen=0.8)  # seen together, touching in 1 of 6


def test_views_showing_a_sliver_weigh_little_in_the_consensus():
    """Two IDs touching in 2 of the 4 views that see both (below the consensus of 0.6) are
    one object when those 2 views hold most of the smaller ID's pixels (a chair's seat seen
    from behind: a sliver beside the back in the other views, where no seam can be seen), and
    stay apart when the views that show them apart show them as well."""
    from lift3d.associate.scene3d import judge_pairs

    p, n, lab = _cuboid((0.0, 0.0, 0.0), (0.3, 0.3, 0.3), 2, hidden=((2, -1),))
    lab = np.where(n[:, 2] > 0, 3, lab)
    votes = _votes((p, n, lab))

    def convex(row, **kw):
        cfg = Scene3DConfig(attach=False, **kw)
        e = judge_pairs(votes, {(2, 3): np.array(row, np.int64)}, cfg)[(2, 3)]
        return "convex" in e.reasons

    slivers_apart = [4, 2, 100, 97, 3, 2325, 1976]
    evenly_apart = [4, 2, 100, 97, 3, 2400, 1200]
    assert convex(slivers_apart)
    assert not convex(slivers_apart, consensus_by_pixels=False)
    assert not convex(evenly_apart)


def test_the_two_faces_of_a_board_are_one_part_and_two_boxes_face_to_face_are_not():
    """A board 1.5 voxels thick standing upright, its front face one ID and its back (with
    the rim) another: their normals are opposed and face away from each other (convex), so
    they are one thin part. Two boxes as far apart, their facing sides seen: opposed normals
    too, but facing each other (concave): two objects."""
    floor = _face((-1.0, -1.0, 0.0), (1.0, 1.0, 0.0), 2, 1)
    keep = ~((np.abs(floor[0][:, 0]) < 0.45) & (floor[0][:, 1] > 0.2) & (floor[0][:, 1] < 0.65))
    keep &= ~((np.abs(floor[0][:, 0]) < 0.4) & (floor[0][:, 1] < 0.0) & (floor[0][:, 1] > -0.05))
    p, n, lab = _cuboid((-0.4, -0.035, 0.0), (0.4, -0.02, 0.6), 2, hidden=((2, -1),))
    lab = np.where(n[:, 1] > 0, 3, lab)  # the front face (+y) is ID 3; back and rim ID 2
    a = _cuboid((-0.45, 0.2, 0.0), (-0.0075, 0.65, 0.4), BOX_A, hidden=((2, -1),))
    b = _cuboid((0.0075, 0.2, 0.0), (0.45, 0.65, 0.4), BOX_B, hidden=((2, -1),))
    votes = _votes((floor[0][keep], floor[1][keep], np.full(keep.sum(), FLOOR_ID)),
                   (p, n, lab), a, b)
    mapping, links = _groups(votes, (0.0, 0.0, 1.0), Scene3DConfig(attach=False))
    assert mapping.get(3) == 2 and any("thin" in e.reasons for e in links), links
    assert mapping.get(BOX_B, BOX_B) == BOX_B and mapping.get(BOX_A, BOX_A) == BOX_A, links
    off, _ = _groups(votes, (0.0, 0.0, 1.0), Scene3DConfig(attach=False, thin_share=1.01))
    assert off.get(3) != 2  # without the rule the board's faces stay apart


def test_thin_faces_seen_together_but_apart_are_not_one_part():
    """The thin rule's view consensus starts at one view: a board's two faces are hardly ever
    in one view, so one that sees both IDs without their touching means two things (old main
    asked for two such views, and room seed 2's table took a chair through a fragment seen
    once beside the table, never touching it)."""
    from lift3d.associate.scene3d import judge_pairs

    p, n, lab = _cuboid((-0.4, -0.035, 0.0), (0.4, -0.02, 0.6), 2, hidden=((2, -1),))
    lab = np.where(n[:, 1] > 0, 3, lab)
    votes = _votes((p, n, lab))

    def thin(row):
        e = judge_pairs(votes, {(2, 3): np.array(row, np.int64)}, Scene3DConfig(attach=False))
        return "thin" in e[(2, 3)].reasons

    assert thin([0, 0, 0, 0, 0, 0, 0])  # never seen together: the faces of one board
    assert thin([1, 1, 1, 1, 0, 50, 50])  # seen together once, touching
    assert not thin([1, 0, 0, 0, 0, 50, 0])  # seen together once, apart


def test_a_short_lived_id_on_a_surface_another_id_won_is_absorbed():
    """The ``absorbed`` rule: a fragment re-seeded for one frame on a box that an ID covers
    in the other frames joins that ID; the same fragment seen in as many frames as the box
    is an ID of its own (no rule then joins it: its voxels are the box's face, not a part),
    and a box standing apart, seen once, keeps its own ID (it won its voxels)."""
    from lift3d.associate.scene3d import associate_rounds

    box = _cuboid((0.0, 0.0, 0.0), (0.3, 0.3, 0.3), SLAB, hidden=((2, -1),))
    p, n, _ = box
    face = p[:, 0] > 0.3 - 1e-9  # the box's +x face: the fragment
    apart = _cuboid((1.0, 0.0, 0.0), (1.2, 0.2, 0.2), BOX_B, hidden=((2, -1),))
    acc = FuseAccumulator(VOX)
    for _ in range(3):  # the box seen (and labelled) in three frames
        acc.add(p, np.full((len(p), 3), 128, np.uint8), n, box[2], np.ones(len(p)))
    acc.add(p[face], np.full((int(face.sum()), 3), 128, np.uint8), n[face],
            np.full(int(face.sum()), BOX_A), np.ones(int(face.sum())))
    acc.add(apart[0], np.full((len(apart[0]), 3), 128, np.uint8), apart[1], apart[2],
            np.ones(len(apart[0])))
    votes = acc.votes()

    def merged(seen_fragment):
        seen = {SLAB: 3, BOX_A: seen_fragment, BOX_B: 1}
        links = associate_rounds(votes, {}, Scene3DConfig(), None, seen)
        return groups_to_mapping([(e.a, e.b) for e in links]), links

    mapping, links = merged(1)
    assert mapping.get(BOX_A) == SLAB, [(e.a, e.b, e.reasons) for e in links]
    assert [e.reasons for e in links if BOX_A in (e.a, e.b)] == [["absorbed"]]
    assert BOX_B not in mapping, [(e.a, e.b, e.reasons) for e in links]
    mapping, links = merged(3)
    assert BOX_A not in mapping, [(e.a, e.b, e.reasons) for e in links]
    # without frame counts (the associator's add_frame never ran) the rule is off
    links = associate_rounds(votes, {}, Scene3DConfig(), None)
    assert not any("absorbed" in e.reasons for e in links)


def test_boxes_side_by_side_in_one_superpoint_stay_apart_at_a_concave_seam():
    """Two boxes flush side by side, 30 and 20 cm tall, 50 cm deep: their fronts and backs
    line up, and with superpoints as coarse as noisy fused normals make them (a large ``sp_k``)
    one superpoint spans both; where they meet, the tall box's side rises above the short
    one's top, a concave seam longer than the flat ones, which vetoes the superpoint merge."""
    from dataclasses import replace

    from lift3d.associate.scene3d import associate_rounds

    y = 0.25
    floor = _face((-1.0, -1.0, 0.0), (1.0, 1.0, 0.0), 2, 1)
    fx, fy = floor[0][:, 0], floor[0][:, 1]
    keep = ~((fx > 0.0) & (fx < 0.5) & (np.abs(fy) < y))  # under the boxes
    p, n, lab = _cuboid((0.0, -y, 0.0), (0.25, y, 0.3), BOX_A, hidden=((2, -1),))
    shown = ~((p[:, 0] > 0.25 - 1e-9) & (p[:, 2] < 0.2))  # its side shows above BOX_B only
    votes = _votes((floor[0][keep], floor[1][keep], np.full(int(keep.sum()), FLOOR_ID)),
                   (p[shown], n[shown], lab[shown]),
                   _cuboid((0.25, -y, 0.0), (0.5, y, 0.2), BOX_B, hidden=((2, -1), (0, -1))))
    coarse = replace(Scene3DConfig(), sp_k=1000.0)

    def links(cfg):
        return [(e.a, e.b, e.reasons) for e in associate_rounds(votes, {}, cfg, None)]

    assert links(replace(coarse, sp_concave_veto=0.0)) == [(BOX_A, BOX_B, ["superpoints"])]
    assert links(coarse) == []  # vetoed: the seam's convex share (0.45) is below 0.55


SIDE_L, SIDE_R, BOARD, BACK, LOW_BOX, HIGH_BOX = 11, 12, 13, 14, 15, 16


def _shelf():
    """A floor, a shelf of two 2 cm side panels, a 1.2 cm back panel and one board between
    them (one ID each; the faces where parts meet hidden), and beside it two boxes standing
    on the floor side by side, 30 and 45 cm tall."""
    floor = _face((-1.0, -1.0, 0.0), (1.5, 1.0, 0.0), 2, 1)
    x, y = floor[0][:, 0], floor[0][:, 1]
    keep = ~((x > -0.41) & (x < 0.41) & (y > -0.01) & (y < 0.31))  # under the shelf
    keep &= ~((x > 0.69) & (x < 1.16) & (np.abs(y) < 0.16))  # under the boxes
    parts = [(floor[0][keep], floor[1][keep], np.full(int(keep.sum()), FLOOR_ID))]
    parts.append(_cuboid((-0.40, 0.0, 0.0), (-0.38, 0.3, 1.0), SIDE_L, hidden=((2, -1),)))
    parts.append(_cuboid((0.38, 0.0, 0.0), (0.40, 0.3, 1.0), SIDE_R, hidden=((2, -1),)))
    parts.append(_cuboid((-0.38, 0.0, 0.0), (0.38, 0.012, 1.0), BACK,
                         hidden=((2, -1), (0, -1), (0, 1))))
    parts.append(_cuboid((-0.38, 0.012, 0.48), (0.38, 0.3, 0.5), BOARD,
                         hidden=((0, -1), (0, 1), (1, -1))))
    parts.append(_cuboid((0.7, -0.15, 0.0), (0.9, 0.15, 0.3), LOW_BOX, hidden=((2, -1), (0, 1))))
    parts.append(_cuboid((0.9, -0.15, 0.0), (1.15, 0.15, 0.45), HIGH_BOX,
                         hidden=((2, -1), (0, -1))))
    return _votes(*parts)


def test_a_board_held_between_panels_is_one_shelf_and_boxes_side_by_side_are_not():
    """The ``held`` rule: the board's top and underside both meet the side panels and the
    back panel (facing sideways) at concave creases, and nothing rests on a vertical
    surface, so the board, the sides and the back are one shelf. The lower box's top meets
    the higher box's side concavely too, but no downward face does: two objects. Without
    the rule the shelf stays in parts (its seams are concave)."""
    votes = _shelf()
    mapping, links = _groups(votes, (0.0, 0.0, 1.0))
    shelf = {mapping.get(i, i) for i in (SIDE_L, SIDE_R, BOARD, BACK)}
    assert len(shelf) == 1, [(e.a, e.b, e.reasons) for e in links]
    assert any("held" in e.reasons for e in links)
    for other in (LOW_BOX, HIGH_BOX, FLOOR_ID):
        assert mapping.get(other, other) == other, [(e.a, e.b, e.reasons) for e in links]
    mapping, _ = _groups(votes, (0.0, 0.0, 1.0), Scene3DConfig(held_min_edges=0))
    assert mapping.get(BOARD, BOARD) == BOARD, mapping


PANEL, PLATE, CORNER, TOPPER = 21, 22, 23, 24


def test_a_plate_before_a_parallel_panel_is_a_step_not_a_smooth_surface():
    """A 2 cm thick plate standing against a panel (its front all the views show): the
    plate's front and the panel's front
    face the same way 2 cm apart, and the k-NN graph joins them around the plate's rim.
    Parallel normals alone called those edges flat, so one superpoint ran over both and
    the seam counted convex; the edges leave the surface (``step_off``): a step, so the
    plate stays apart. With the step test off they merge. (Surfaces far from the cameras
    are sparser than a point per voxel: the k-NN edges reach across the 2 cm.)"""
    from dataclasses import replace

    def sparse(part):  # seen from afar: a point every 3 cm, so the k-NN reach across
        p, n, lab = part
        idx = np.rint((p - VOX / 2) / VOX).astype(int) % 3
        keep = ((idx == 0) | (np.abs(n) > 0.5)).all(1)
        return p[keep], n[keep], lab[keep]

    front = _face((-0.3, 0.0, 0.0), (0.3, 0.02, 0.6), 1, 1)  # all the views show of it
    panel = (front[0], front[1], np.full(len(front[0]), PANEL))
    plate = _cuboid((-0.1, 0.02, 0.2), (0.1, 0.04, 0.4), PLATE, hidden=((1, -1),))
    votes = _votes(sparse(panel), sparse(plate))
    graph = voxel_graph(votes)
    assert graph.step(Scene3DConfig()).any()
    mapping, links = _groups(votes, None)
    assert mapping.get(PLATE, PLATE) == PLATE, [(e.a, e.b, e.reasons) for e in links]
    mapping, links = _groups(votes, None, replace(Scene3DConfig(), step_off=2.0))
    assert mapping.get(PLATE) == PANEL or mapping.get(PANEL) == PLATE, links


def test_a_room_sized_piece_joins_nothing_before_it():
    """A floor strip and the wall above it as one ID (a corner: not planar, so not
    structure), and a box on the wall's top edge whose front continues the wall's front: the
    seam is flat, the views see them touch. Room-sized IDs (``room_extent``) are no part of
    the furniture before them: apart; without the limit the box joins the corner."""
    from dataclasses import replace

    from lift3d.associate.scene3d import associate_rounds

    floor = _face((-1.0, 0.02, 0.0), (1.0, 1.0, 0.0), 2, 1)
    wall = _face((-1.0, 0.0, 0.0), (1.0, 0.02, 0.8), 1, 1)
    corner = (np.concatenate([floor[0], wall[0]]), np.concatenate([floor[1], wall[1]]),
              np.full(len(floor[0]) + len(wall[0]), CORNER))
    votes = _votes(corner, _cuboid((-0.1, -0.2, 0.8), (0.1, 0.02, 1.0), TOPPER,
                                   hidden=((2, -1),)))
    pairs = {(CORNER, TOPPER): np.array([4, 4, 60, 60, 0, 400, 400])}

    def merged(cfg):
        links = associate_rounds(votes, pairs, cfg, None)
        return [(e.a, e.b, e.reasons) for e in links]

    assert merged(Scene3DConfig()) == []
    assert merged(replace(Scene3DConfig(), room_extent=1e9)) != []



WALL_A, WALL_B, FLOOR_C = 31, 32, 33


def test_one_wall_labelled_in_turn_by_two_ids_is_one_surface():
    """The tracker labelled a wall with one ID in some frames and another in others; the
    second also took a strip of the floor, so it is not planar and not structure, and the
    structure veto kept it from the wall's first ID: the frames showed the wall speckled
    with both. Each puts most of its votes on voxels the other voted on too (``shared``):
    one surface. A box on the floor shares only the voxels along its base: apart."""
    from dataclasses import replace

    wall = _face((-1.0, 0.0, 0.0), (1.0, 0.0, 1.5), 1, 1)
    floor = _face((-1.0, 0.0, 0.0), (1.0, 1.5, 0.0), 2, 1)
    strip = floor[0][:, 1] < 0.3
    box = _cuboid((-0.1, 0.6, 0.0), (0.1, 0.8, 0.2), BOX_A, hidden=((2, -1),))
    near = floor[0][:, 1] > 0.58  # the floor's ID also voted on the box's base, and back
    near &= (floor[0][:, 1] < 0.82) & (np.abs(floor[0][:, 0]) < 0.12)
    p = np.concatenate([wall[0], wall[0], floor[0][strip], floor[0], box[0], floor[0][near]])
    n = np.concatenate([wall[1], wall[1], floor[1][strip], floor[1], box[1], floor[1][near]])
    lab = np.concatenate([np.full(len(wall[0]), WALL_A), np.full(len(wall[0]), WALL_B),
                          np.full(int(strip.sum()), WALL_B), np.full(len(floor[0]), FLOOR_C),
                          box[2], np.full(int(near.sum()), BOX_A)])
    acc = FuseAccumulator(VOX)
    acc.add(p, np.full((len(p), 3), 128, np.uint8), n, lab, np.ones(len(p)))
    votes = acc.votes()
    mapping, links = _groups(votes, (0.0, 0.0, 1.0))
    assert mapping.get(WALL_B, WALL_B) == mapping.get(WALL_A, WALL_A), links
    assert any("shared" in e.reasons for e in links)
    assert mapping.get(BOX_A, BOX_A) == BOX_A
    mapping, _ = _groups(votes, (0.0, 0.0, 1.0), replace(Scene3DConfig(), shared_share=2.0))
    assert mapping.get(WALL_B, WALL_B) != mapping.get(WALL_A, WALL_A)
