"""The classical segmenter on a drawn image with known discs and on real DAVIS frames."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from lift3d.segment import Segmenter, build_segmenter
from lift3d.segment.classical import ClassicalConfig, ClassicalSegmenter

H, W = 240, 320
# Disc A: one colour. Disc B: two colours (left half orange, right half blue), like an
# object with two parts that a colour segmenter (and often SAM) returns separately.
A_CENTRE, A_RADIUS = (90, 120), 50
B_CENTRE, B_RADIUS = (225, 110), 55


def iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / max((a | b).sum(), 1))


def disc(centre, radius) -> np.ndarray:
    ys, xs = np.mgrid[:H, :W]
    return (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius**2


@pytest.fixture(scope="module")
def drawn():
    """(image, disc A, disc B left half, disc B right half) on a textured background."""
    rng = np.random.default_rng(7)
    ys, xs = np.mgrid[:H, :W]
    bg = np.stack([90 + 40 * xs / W, 120 + 0 * xs, 80 + 40 * ys / H], -1)  # smooth gradient
    bg += 12 * np.sin(xs / 3.0)[..., None] * np.array([1, 1, 1])  # fine stripes: texture
    image = bg + rng.normal(0, 6, bg.shape)
    a = disc(A_CENTRE, A_RADIUS)
    b = disc(B_CENTRE, B_RADIUS)
    b_left = b & (xs < B_CENTRE[0])
    b_right = b & ~b_left
    for m, colour in ((a, (200, 30, 40)), (b_left, (240, 160, 20)), (b_right, (30, 60, 200))):
        image[m] = np.array(colour) + rng.normal(0, 6, (m.sum(), 3))
    image = np.clip(image, 0, 255).astype(np.uint8)
    return image, a, b_left, b_right


def davis(seq: str, n: int = 0) -> np.ndarray:
    from tests.conftest import shared_path

    path = shared_path("data", "davis2016_480p", "JPEGImages", "480p", seq, f"{n:05d}.jpg")
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_is_a_segmenter_built_by_name():
    seg = build_segmenter("classical", merge_threshold=8.0)
    assert isinstance(seg, Segmenter) and isinstance(seg, ClassicalSegmenter)
    assert seg.name == "classical" and seg.cfg.merge_threshold == 8.0


def test_auto_masks_on_drawn_discs(drawn):
    image, a, b_left, b_right = drawn
    masks = ClassicalSegmenter().auto_masks(image)
    assert 3 <= len(masks) <= 30
    for m in masks:
        assert m.segmentation.dtype == bool and m.segmentation.shape == (H, W)
        assert 0.0 <= m.score <= 1.0
        assert m.area >= ClassicalConfig().min_area_frac * H * W  # tiny fragments are gone
    cover = np.sum([m.segmentation for m in masks], 0)
    assert (cover == 1).all()  # they tile the image
    # Each drawn part is one mask (the two-coloured disc as two).
    for part in (a, b_left, b_right):
        assert max(iou(m.segmentation, part) for m in masks) > 0.9
    # The clean discs score higher than the textured background (the largest mask).
    for part in (a, b_left, b_right):
        best = max(masks, key=lambda m: iou(m.segmentation, part))
        assert best.score > masks[0].score


def test_prompt_inside_a_disc_returns_the_disc(drawn):
    image, a, b_left, b_right = drawn
    seg = ClassicalSegmenter()
    pts = np.array([[[90.5, 120.5]], [[180.5, 110.5]]], np.float32)
    masks, scores = seg.prompt(image, pts, np.ones((2, 1), np.int32))
    assert masks.shape == (2, H, W) and masks.dtype == bool
    assert scores.shape == (2,) and scores.dtype == np.float32
    assert iou(masks[0], a) > 0.8
    assert iou(masks[1], b_left) > 0.8  # one click: the part under it
    # Clicks on both halves: the whole two-coloured disc.
    two = np.array([[[200.5, 110.5], [250.5, 110.5]]], np.float32)
    m2, s2 = seg.prompt(image, two, np.ones((1, 2), np.int32))
    assert iou(m2[0], b_left | b_right) > 0.8
    assert 0 < s2[0] < scores[1]  # two regions agree less than one
    assert ((0 <= scores) & (scores <= 1)).all() and scores.min() > 0.3


def test_batched_prompts_equal_one_by_one_and_padding_is_ignored(drawn):
    image = drawn[0]
    seg = ClassicalSegmenter()
    rng = np.random.default_rng(0)
    pts = rng.uniform(0, [W, H], (5, 4, 2)).astype(np.float32)
    labels = rng.integers(-1, 2, (5, 4)).astype(np.int32)
    labels[:, 0] = 1
    masks, scores = seg.prompt(image, pts, labels)
    for k in range(5):
        keep = labels[k] >= 0
        m, s = seg.prompt(image, pts[k][keep][None], labels[k][keep][None])
        assert (m[0] == masks[k]).all() and s[0] == scores[k]
    # Padding points may lie anywhere (even off the image): they change nothing.
    padded_pts = np.concatenate([pts, np.full((5, 3, 2), -50.0, np.float32)], 1)
    padded_labels = np.concatenate([labels, np.full((5, 3), -1, np.int32)], 1)
    m3, s3 = seg.prompt(image, padded_pts, padded_labels)
    assert (m3 == masks).all() and (s3 == scores).all()
    assert seg.n_image_passes == 1


def test_negative_point_removes_a_region(drawn):
    image, a, b_left, b_right = drawn
    seg = ClassicalSegmenter()
    both = np.array([[[200.5, 110.5], [250.5, 110.5]]], np.float32)
    m, _ = seg.prompt(image, both, np.array([[1, 1]], np.int32))
    assert m[0][b_right].mean() > 0.9
    m_neg, _ = seg.prompt(image, both, np.array([[1, 0]], np.int32))
    assert m_neg[0][b_right].mean() < 0.05 and iou(m_neg[0], b_left) > 0.8
    # A negative on the background leaves disc A intact.
    m_bg, _ = seg.prompt(image, np.array([[[90.5, 120.5], [10.5, 10.5]]], np.float32),
                         np.array([[1, 0]], np.int32))
    assert iou(m_bg[0], a) > 0.8
    # Only negatives: nothing selected, score 0.
    m0, s0 = seg.prompt(image, both, np.array([[0, -1]], np.int32))
    assert not m0.any() and s0[0] == 0.0


def test_negative_point_splits_a_region_by_colour():
    # A disc whose halves differ slightly (9 CIELAB units): one coarse region, two colours.
    rng = np.random.default_rng(1)
    ys, xs = np.mgrid[:H, :W]
    image = np.full((H, W, 3), (60, 60, 70), float)
    d = disc((160, 120), 80)
    left, right = d & (xs < 160), d & (xs >= 160)
    image[left], image[right] = (140, 170, 60), (160, 170, 60)
    image = np.clip(image + rng.normal(0, 4, image.shape), 0, 255).astype(np.uint8)
    seg = ClassicalSegmenter()
    pts = np.array([[[120.5, 120.5], [200.5, 120.5]]], np.float32)
    whole, _ = seg.prompt(image, pts[:, :1], np.ones((1, 1), np.int32))
    assert iou(whole[0], d) > 0.9  # one click: the whole disc
    split, score = seg.prompt(image, pts, np.array([[1, 0]], np.int32))
    assert iou(split[0], left) > 0.9 and 0 < score[0] <= 1


def test_stray_click_is_ignored(drawn):
    image, a, _, _ = drawn
    seg = ClassicalSegmenter()
    angle = np.linspace(0, 2 * np.pi, 9, endpoint=False)
    inside = np.stack([90.5 + 35 * np.cos(angle), 120.5 + 35 * np.sin(angle)], 1)
    pts = np.concatenate([inside, [[10.5, 200.5]]])[None].astype(np.float32)  # 1 of 10 spilled
    m, s = seg.prompt(image, pts, np.ones((1, 10), np.int32))
    assert iou(m[0], a) > 0.8
    m_clean, s_clean = seg.prompt(image, inside[None].astype(np.float32), np.ones((1, 9), np.int32))
    assert iou(m_clean[0], a) > 0.8
    assert s[0] < s_clean[0]  # the disagreeing point lowers the score


def test_segmentation_is_cached_per_image(drawn):
    image = drawn[0]
    seg = ClassicalSegmenter()
    pts = np.array([[[90.5, 120.5]]], np.float32)
    one = np.ones((1, 1), np.int32)
    first = seg.prompt(image, pts, one)
    seg.prompt(image.copy(), pts, one)  # same bytes, new array: still cached
    seg.auto_masks(image)
    assert seg.n_image_passes == 1
    other = image.copy()
    other[0, 0] ^= 1
    seg.prompt(other, pts, one)
    assert seg.n_image_passes == 2
    again = seg.prompt(image, pts, one)  # only the last image is kept
    assert seg.n_image_passes == 3
    assert (again[0] == first[0]).all() and again[1][0] == first[1][0]  # deterministic


@pytest.mark.parametrize("seq", ["blackswan", "car-roundabout"])
def test_auto_masks_on_davis(seq):
    image = davis(seq)
    h, w = image.shape[:2]
    masks = ClassicalSegmenter().auto_masks(image)
    assert 5 <= len(masks) <= 150
    assert all(m.segmentation.shape == (h, w) and 0 <= m.score <= 1 for m in masks)
    assert np.sum([m.segmentation for m in masks], 0).min() == 1  # every pixel covered


def test_prompt_on_davis_object_gives_a_plausible_mask():
    from tests.conftest import shared_path

    image = davis("car-roundabout")
    gt_path = shared_path("data", "davis2016_480p", "Annotations", "480p", "car-roundabout",
                          "00000.png")
    gt = cv2.imread(str(gt_path), cv2.IMREAD_GRAYSCALE) > 127
    # Positive clicks at points well inside the ground-truth car, as the tracker would send.
    inner = cv2.erode(gt.astype(np.uint8), np.ones((25, 25), np.uint8)) > 0
    ys, xs = np.nonzero(inner)
    pick = np.random.default_rng(0).choice(ys.size, 8, replace=False)
    pts = np.stack([xs[pick] + 0.5, ys[pick] + 0.5], 1)[None].astype(np.float32)
    masks, scores = ClassicalSegmenter().prompt(image, pts, np.ones((1, 8), np.int32))
    m = masks[0]
    # The mask lies mostly on the car (a classical segmenter may split the car into parts).
    assert m.any() and (m & gt).sum() / m.sum() > 0.7
    assert 0 < scores[0] <= 1


def test_spread_clicks_pick_the_level_that_fits_them():
    # A faint disc (7 CIELAB units from the background) merges into the background at the
    # coarse level but stands alone at the middle level.
    rng = np.random.default_rng(3)
    image = np.full((H, W, 3), (120, 130, 140), float)
    d = disc((160, 120), 40)
    image[d] = (135, 140, 145)
    image = np.clip(image + rng.normal(0, 3, image.shape), 0, 255).astype(np.uint8)
    seg = ClassicalSegmenter()
    assert max(iou(m.segmentation, d) for m in seg.auto_masks(image)) < 0.5
    angle = np.linspace(0, 2 * np.pi, 5, endpoint=False)
    ring = np.stack([160.5 + 25 * np.cos(angle), 120.5 + 25 * np.sin(angle)], 1)
    masks, scores = seg.prompt(image, ring[None].astype(np.float32), np.ones((1, 5), np.int32))
    assert iou(masks[0], d) > 0.8 and scores[0] > 0
    # Without the extent limit the clicks get the coarse region: disc and background.
    loose = ClassicalSegmenter(extent_factor=1e9)
    m_loose, _ = loose.prompt(image, ring[None].astype(np.float32), np.ones((1, 5), np.int32))
    assert m_loose[0].mean() > 0.9


def test_auto_masks_where_keeps_exactly_the_regions_touching_it():
    """``where`` drops only the regions without a pixel in it: same masks, scores, order."""
    rng = np.random.default_rng(0)
    img = np.zeros((120, 160, 3), np.uint8)
    img[:, 80:] = (200, 40, 40)
    img[30:70, 20:60] = (40, 200, 40)
    img[80:110, 100:150] = (40, 40, 200)
    img = np.clip(img + rng.integers(0, 8, img.shape), 0, 255).astype(np.uint8)
    seg = ClassicalSegmenter()
    full = seg.auto_masks(img)
    where = np.zeros(img.shape[:2], bool)
    where[40:60, 30:50] = True  # inside the green square only
    where[0, 0] = True  # one pixel of the black background
    part = seg.auto_masks(img, where=where)
    expected = [m for m in full if (m.segmentation & where).any()]
    assert 0 < len(part) == len(expected) < len(full)
    for a, b in zip(part, expected):
        np.testing.assert_array_equal(a.segmentation, b.segmentation)
        assert a.score == b.score
    assert seg.n_image_passes == 1
    assert seg.auto_masks(img, where=np.zeros(img.shape[:2], bool)) == []


class _IgnoresWhere(ClassicalSegmenter):
    """The classical segmenter as it was before ``where``: every region, every time."""

    def auto_masks(self, image, where=None):
        return super().auto_masks(image)


@pytest.mark.parametrize("seed", [0, 1])
def test_tracker_with_where_keeps_its_labels_and_quality(tmp_path, seed):
    """Re-seeding from the regions touching the unmasked area gives the same tracking as from
    all regions, except that a region whose unmasked part lies only in specks below the
    re-seeding area (each too small to re-seed) no longer re-seeds from their union: seed 1
    has no such case and its labels are identical; seed 0 has from frame 2 on (later IDs are
    renumbered), and its quality against ground truth is unchanged."""
    from lift3d.geometry import build_geometry
    from lift3d.io import load_scene
    from lift3d.metrics.video import sequence_iou
    from lift3d.synth import make_scene
    from lift3d.track import TrackConfig, track_sequence

    scene = load_scene(make_scene(tmp_path / "scene", seed=seed, n_frames=8, width=160,
                                  height=120))
    geometry = build_geometry("rgbd")(scene)
    images = [f.image for f in scene.frames]
    new = track_sequence(images, geometry, ClassicalSegmenter(), TrackConfig())
    old = track_sequence(images, geometry, _IgnoresWhere(), TrackConfig())
    if seed == 1:
        for a, b in zip(new, old):
            np.testing.assert_array_equal(a, b)
    q_new, q_old = sequence_iou(new, scene.gt_labels), sequence_iou(old, scene.gt_labels)
    assert q_new.sequence_iou >= q_old.sequence_iou - 1e-3
    assert q_new.frame_iou >= q_old.frame_iou - 1e-3
    labelled = [np.mean([(m > 0).mean() for m in maps]) for maps in (new, old)]
    assert labelled[0] >= labelled[1] - 0.002
