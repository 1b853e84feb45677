"""The geometric segmenter on a generated RGB-D scene with ground truth: whole objects, apart
from the floor and walls, whatever their shading or colours."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import distance_transform_edt

from lift3d.cameras import backproject, camera_depth, scale_intrinsics
from lift3d.config import SegmenterConfig, resolve_segmenter, scene_has_depth
from lift3d.segment import Segmenter, build_segmenter
from lift3d.segment.classical import ClassicalSegmenter
from lift3d.segment.geometric import GeometricSegmenter
from lift3d.synth import render_scene
from lift3d.types import Frame, Scene

# seed 5, frame 0 at 160x120: a box (ID 10) whose top and front faces are lit differently, a
# cone painted in two colours (ID 2), on a checkered floor in front of a wall.
BOX, CONE = 10, 2


@pytest.fixture(scope="module")
def scene():
    return render_scene(seed=5, n_frames=1, width=160, height=120)


@pytest.fixture(scope="module")
def masks(scene):
    seg = GeometricSegmenter()
    return np.stack([m.segmentation for m in seg.auto_masks(scene.images[0],
                                                           depth=scene.depths[0], K=scene.K)])


def best(masks: np.ndarray, target: np.ndarray) -> tuple[float, int]:
    """Best IoU of ``target`` among ``masks`` (M, H, W) and that mask's index."""
    inter = (masks & target).sum((1, 2))
    iou = inter / np.maximum(masks.sum((1, 2)) + target.sum() - inter, 1)
    return float(iou.max()), int(iou.argmax())


def floor_and_walls(scene) -> tuple[np.ndarray, np.ndarray]:
    """Ground-truth background split into floor (world z ~ 0) and the rest (walls)."""
    gt, depth = scene.instances[0], scene.depths[0]
    z = backproject(depth, scene.K, scene.poses[0])[..., 2]
    background = (gt == 0) & (depth > 0)
    return background & (z < 0.02), background & (z >= 0.02)


def test_built_by_name_reads_depth():
    seg = build_segmenter("geometric", jump_rel=0.05)
    assert isinstance(seg, Segmenter) and isinstance(seg, GeometricSegmenter)
    assert seg.name == "geometric" and seg.uses_depth and seg.cfg.jump_rel == 0.05


def test_box_with_differently_shaded_faces_is_one_mask(scene, masks):
    box = scene.instances[0] == BOX
    luma = scene.images[0][box].astype(float).mean(1)
    lo, hi = np.percentile(luma, [10, 90])
    assert hi - lo > 25  # the faces are shaded apart...
    colour_only = ClassicalSegmenter().auto_masks(scene.images[0])
    assert best(np.stack([m.segmentation for m in colour_only]), box)[0] < 0.7  # ...and split
    assert best(masks, box)[0] >= 0.85


def test_two_coloured_object_is_one_mask(scene, masks):
    assert len(scene.objects[CONE - 1].colours) == 2
    assert best(masks, scene.instances[0] == CONE)[0] >= 0.85


def test_floor_walls_and_objects_are_apart(scene, masks):
    floor, walls = floor_and_walls(scene)
    objects = scene.instances[0] > 0
    iou, k = best(masks, floor)
    assert iou >= 0.8
    assert (masks[k] & objects).sum() < 0.02 * masks[k].sum()
    assert (masks[k] & walls).sum() < 0.05 * walls.sum()
    for i in (BOX, CONE):
        _, k = best(masks, scene.instances[0] == i)
        assert (masks[k] & (floor | walls)).sum() < 0.1 * masks[k].sum()


def test_prompt_returns_the_object_under_the_click(scene):
    seg = GeometricSegmenter()
    gt = scene.instances[0]
    points, targets = [], []
    for i in (BOX, CONE):
        inside = distance_transform_edt(gt == i)
        y, x = np.unravel_index(np.argmax(inside), gt.shape)
        points.append([[x + 0.5, y + 0.5]])
        targets.append(gt == i)
    out, scores = seg.prompt(scene.images[0], np.array(points, np.float32),
                             np.ones((2, 1), np.int32), depth=scene.depths[0], K=scene.K)
    assert out.shape == (2, *gt.shape) and np.all((scores > 0) & (scores <= 1))
    for m, t in zip(out, targets):
        assert (m & t).sum() / (m | t).sum() >= 0.8
    assert seg.n_image_passes == 1
    seg.prompt(scene.images[0], np.array(points, np.float32), np.ones((2, 1), np.int32),
               depth=scene.depths[0], K=scene.K)
    assert seg.n_image_passes == 1  # the same image and depth: no second pass


def test_invalid_depth_falls_back_to_colour(scene):
    image, depth = scene.images[0], scene.depths[0]
    rng = np.random.default_rng(0)
    holes = depth.copy()
    holes[rng.random(depth.shape) < 0.2] = 0.0  # sensor dropouts
    holes[:30, :40] = np.nan  # a block without depth
    holes[60:, 120:] = 0.0
    seg = GeometricSegmenter()
    for d, K in ((holes, scene.K), (np.zeros_like(depth), scene.K), (depth, None), (None, None)):
        ms = np.stack([m.segmentation for m in seg.auto_masks(image, depth=d, K=K)])
        assert np.array_equal(ms.sum(0), np.ones(depth.shape))  # they tile the image
    ms = np.stack([m.segmentation for m in seg.auto_masks(image, depth=holes, K=scene.K)])
    assert best(ms, scene.instances[0] == BOX)[0] >= 0.8


def test_auto_is_geometric_with_depth_and_no_sam_checkpoint(offline_cache, scene):
    cfg = SegmenterConfig()
    assert resolve_segmenter(cfg, has_depth=True) == "geometric"
    assert resolve_segmenter(cfg, has_depth=False) == "classical"
    assert resolve_segmenter(SegmenterConfig(name="classical"), has_depth=True) == "classical"
    assert scene_has_depth(scene.as_scene())  # frames with depth, whatever the layout
    image_only = Scene(frames=[Frame(image=scene.images[0], name="0")], source=scene.as_scene()
                       .source, layout="images")
    assert not scene_has_depth(image_only)
    assert scene_has_depth(Scene(frames=[], source=image_only.source, layout="scannet"))


def test_camera_depth_and_scaled_intrinsics(scene):
    depth, K, pose = scene.depths[0], scene.K, scene.poses[0]
    valid = depth > 0
    z = camera_depth(backproject(depth, K, pose), valid, pose)
    assert np.allclose(z[valid], depth[valid], atol=1e-4) and np.all(z[~valid] == 0)
    half = scale_intrinsics(K, 0.5, 0.5)
    # the centre of the image's top-left 2x2 block, (0.5, 0.5), is pixel (0, 0) at half size
    assert np.allclose(half @ np.linalg.inv(K) @ [0.5, 0.5, 1.0], [0.0, 0.0, 1.0])


def main_id_iou(labels: list[np.ndarray], instances: list[np.ndarray]) -> float:
    """Mean over frames and objects (>= 200 px) of the IoU of the ID covering most of it."""
    out = []
    for lab, gt in zip(labels, instances):
        for i in np.unique(gt)[1:]:
            obj = gt == i
            if obj.sum() >= 200:
                ids, counts = np.unique(lab[obj], return_counts=True)
                main = lab == ids[np.argmax(counts)]
                out.append((main & obj).sum() / (main | obj).sum())
    return float(np.mean(out))


def test_the_tracker_gives_it_each_frames_depth():
    """The first frame's masks, the prompts and the re-seeding all read the frame's depth:
    tracked and independent labels are far closer to whole objects than the same segmenter's
    without depth (its colour fallback)."""
    from lift3d.geometry.rgbd import RGBDGeometry
    from lift3d.track import TrackConfig, independent_labels, track_sequence

    synthetic = render_scene(seed=5, n_frames=3, width=160, height=120)
    geometry = RGBDGeometry()(synthetic.as_scene())
    seg, cfg, gt = GeometricSegmenter(), TrackConfig(), synthetic.instances
    colour = main_id_iou(independent_labels(synthetic.images, seg, cfg), gt)
    tracked = main_id_iou(track_sequence(synthetic.images, geometry, seg, cfg), gt)
    independent = main_id_iou(independent_labels(synthetic.images, seg, cfg, geometry=geometry),
                              gt)
    assert tracked >= colour + 0.15 and independent >= colour + 0.15


def test_small_object_standing_apart_is_kept_a_sliver_is_not():
    """A 10 x 10 px object (0.13 % of 320 x 240, below ``min_area_frac``) standing 1.5 m in
    front of a wall of its own colour is its own mask, marked ``isolated``; a 3 x 50 px sliver
    as far in front (150 px, as small) is not compact, and a 10 x 10 px hole in the wall (a
    gap seen through, 1.5 m behind it) does not stand in front: both join the wall. Old main
    joined every region under 0.2 % of the image to its most similar neighbour: a cup on a
    table became part of the table."""
    from lift3d.cameras import centred_intrinsics

    h, w = 240, 320
    image = np.full((h, w, 3), 120, np.uint8)
    depth = np.full((h, w), 3.0, np.float32)
    obj = np.zeros((h, w), bool)
    obj[100:110, 60:70] = True
    sliver = np.zeros((h, w), bool)
    sliver[60:110, 200:203] = True
    depth[obj | sliver] = 1.5
    hole = np.zeros((h, w), bool)
    hole[150:160, 250:260] = True
    depth[hole] = 4.5
    found = GeometricSegmenter().auto_masks(image, depth=depth, K=centred_intrinsics(h, w, 60))
    masks = np.stack([m.segmentation for m in found])
    iou, k = best(masks, obj)
    assert iou >= 0.9 and found[k].isolated
    assert best(masks, sliver)[0] < 0.5 and best(masks, hole)[0] < 0.5
    assert sum(m.isolated for m in found) == 1


def test_fine_regions_split_at_depth_breaks_not_at_slopes_or_creases():
    """``split_at_jumps`` cuts a fine region where the inverse depth steps (a 3-pixel strip
    6 % in front of a wall, a shelf's front edge) and nowhere on a plane seen at a grazing
    angle or along a crease (a floor meeting a wall): inverse depth is affine on a plane, so
    only a step breaks the run of equal differences."""
    from lift3d.segment.geometric import depth_jump_links, split_at_jumps

    h, w = 40, 60
    x = np.arange(w, dtype=np.float64)[None, :].repeat(h, 0)
    # a plane receding fast to the right (grazing), then a crease into a fronto-parallel wall
    inv = np.where(x < 30, 0.5 - 0.012 * x, 0.5 - 0.012 * 30)
    z = (1.0 / inv).astype(np.float32)
    trusted = np.ones((h, w), bool)
    jh, jv = depth_jump_links(z, trusted, 0.03)
    assert not jh.any() and not jv.any()
    strip = np.zeros((h, w), bool)
    strip[5:35, 40:43] = True
    z2 = np.where(strip, z * 0.94, z).astype(np.float32)
    jh, jv = depth_jump_links(z2, trusted, 0.03)
    assert jh[5:35, 39].all() and jh[5:35, 42].all()  # both sides of the strip
    assert jh.sum() == 2 * 30 and jv.sum() == 2 * 3  # and its two ends, nothing else
    fine = np.zeros((h, w), np.int32)  # one region over everything, as Felzenszwalb gave
    out = split_at_jumps(fine, z2, trusted, 0.03)
    assert len(np.unique(out[strip])) == 1 and not np.isin(out[~strip], out[strip]).any()
    assert len(np.unique(out)) == 2
    # an untrusted pixel never breaks a link
    assert not depth_jump_links(z2, np.zeros((h, w), bool), 0.03)[0].any()


def test_split_gives_a_shelf_edge_back_to_the_shelf():
    """Room preset seed 2, frame 8: a shelf 4.4 m away whose front edge is 3 pixels wide in
    front of the wall. Felzenszwalb's fine regions run over the edge into the wall; split at
    the depth breaks, the coarse masks give far fewer shelf pixels to masks that are mostly
    something else (166 -> 71 at the time of writing)."""
    from lift3d.synth import preset_config

    sc = render_scene(seed=2, n_frames=30, config=preset_config("room"), lazy=True)
    img, depth, gt = sc.images[8], sc.depths[8], sc.instances[8]
    shelf = gt == 7

    def lost(rel: float) -> int:
        found = GeometricSegmenter(split_jump_rel=rel).auto_masks(img, depth=depth, K=sc.K)
        return sum(int((m.segmentation & shelf).sum()) for m in found
                   if (m.segmentation & shelf).sum() < 0.5 * m.segmentation.sum())

    off, on = lost(0.0), lost(0.03)
    assert on < 0.6 * off, (off, on)
