"""The SAM segmenter on the real code path: segment-anything's modules with random weights in a
tiny configuration, saved as a checkpoint file and loaded the way a user's checkpoint is."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from lift3d.segment import Segmenter, build_segmenter
from lift3d.segment.base import Mask
from lift3d.segment.sam import SamConfig, SamSegmenter
from lift3d.segment.sam_checkpoint import write_random_checkpoint


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return write_random_checkpoint(tmp_path_factory.mktemp("sam") / "tiny.pth", "tiny", seed=0)


@pytest.fixture
def seg(tiny_ckpt):
    return SamSegmenter.from_config(checkpoint=str(tiny_ckpt), device="cpu")


def synthetic_image(h: int = 120, w: int = 160) -> np.ndarray:
    """A grey gradient with a red disc and a blue rectangle: (h, w, 3) uint8."""
    yy, xx = np.mgrid[0:h, 0:w]
    img = np.stack([xx * 255 // w, yy * 255 // h, np.full_like(xx, 96)], -1).astype(np.uint8)
    img[(xx - w // 3) ** 2 + (yy - h // 2) ** 2 < (h // 5) ** 2] = (220, 30, 30)
    img[h // 4 : h // 2, 2 * w // 3 : 5 * w // 6] = (20, 40, 200)
    return img


def davis_frame(shared, seq: str = "blackswan", i: int = 0) -> np.ndarray:
    path = shared("data", "davis2016_480p", "JPEGImages", "480p", seq, f"{i:05d}.jpg")
    return np.asarray(Image.open(path).convert("RGB"))


def random_prompts(rng, n_sets: int, n_points: int, h: int, w: int):
    """(B, N, 2) float32 pixel-centre xy and (B, N) int32 labels with padding at random places;
    every set keeps at least one valid point."""
    points = rng.uniform((0, 0), (w, h), size=(n_sets, n_points, 2)).astype(np.float32)
    labels = rng.integers(-1, 2, size=(n_sets, n_points)).astype(np.int32)
    labels[:, 0] = np.where(labels[:, 0] < 0, 1, labels[:, 0])
    return points, rng.permuted(labels, axis=1)


def test_build_segmenter_loads_the_tiny_checkpoint_file(tiny_ckpt):
    seg = build_segmenter("sam", sam_checkpoint=str(tiny_ckpt), device="cpu")
    assert isinstance(seg, Segmenter) and isinstance(seg, SamSegmenter)
    assert seg.name == "sam" and seg.model_type == "tiny"
    assert seg.config.checkpoint == str(tiny_ckpt)
    assert seg.device == torch.device("cpu")
    assert seg.n_embeddings == 0  # loading embeds nothing


def test_prompt_shapes_dtypes_and_scores_on_a_real_frame(seg, shared):
    img = davis_frame(shared)
    points, labels = random_prompts(np.random.default_rng(0), 6, 3, *img.shape[:2])
    masks, scores = seg.prompt(img, points, labels)
    assert masks.shape == (6, *img.shape[:2]) and masks.dtype == bool
    assert scores.shape == (6,) and scores.dtype == np.float32
    assert np.all((scores >= 0) & (scores <= 1))
    # Random weights still give masks that depend on the prompt (not all empty / identical).
    assert masks.any() and len({m.tobytes() for m in masks}) > 1


def test_one_embedding_per_frame(tiny_ckpt, shared):
    seg = SamSegmenter.from_checkpoint(tiny_ckpt, SamConfig(device="cpu", points_per_side=4))
    img0, img1 = davis_frame(shared, i=0), davis_frame(shared, i=1)
    points, labels = random_prompts(np.random.default_rng(1), 4, 2, *img0.shape[:2])
    seg.prompt(img0, points, labels)
    seg.prompt(img0, points[:1], labels[:1])
    seg.auto_masks(img0)  # the generator shares the predictor and its embedding
    seg.prompt(img0.copy(), points, labels)  # same pixels, other array: still cached
    assert seg.n_embeddings == 1
    seg.prompt(img1, points, labels)
    assert seg.n_embeddings == 2
    seg.prompt(img0, points, labels)  # only the last frame is kept
    assert seg.n_embeddings == 3


@pytest.mark.parametrize("batch", [64, None])  # one decoder call; the device's default chunks
def test_batched_prompts_equal_one_by_one(tiny_ckpt, shared, batch):
    cfg = SamConfig(device="cpu", prompt_batch_size=batch)
    seg = SamSegmenter.from_checkpoint(tiny_ckpt, cfg)
    img = davis_frame(shared, "dog", 5)
    points, labels = random_prompts(np.random.default_rng(2), 12, 4, *img.shape[:2])
    masks, scores = seg.prompt(img, points, labels)
    one = [seg.prompt(img, points[i : i + 1], labels[i : i + 1]) for i in range(len(points))]
    masks1 = np.concatenate([m for m, _ in one])
    scores1 = np.concatenate([s for _, s in one])
    np.testing.assert_allclose(scores, scores1, atol=1e-5)
    # Batched matmuls round differently from single ones; a logit within ~1e-6 of the
    # threshold may flip. Allow a handful of pixels in 12 masks of 400k pixels.
    assert (masks != masks1).sum() <= 10
    assert seg.n_embeddings == 1


def test_padding_is_ignored_wherever_it_sits(seg):
    img = synthetic_image()
    pts = np.array([[[40.5, 60.5], [120.5, 40.5]]], dtype=np.float32)
    lab = np.array([[1, 0]], dtype=np.int32)
    padded = np.array([[[7.0, 7.0], [40.5, 60.5], [99.0, 3.0], [120.5, 40.5]]], np.float32)
    lab_padded = np.array([[-1, 1, -1, 0]], dtype=np.int32)
    m, s = seg.prompt(img, pts, lab)
    mp, sp = seg.prompt(img, padded, lab_padded)
    np.testing.assert_array_equal(m, mp)
    np.testing.assert_allclose(s, sp, atol=1e-6)


def test_set_without_points_gives_empty_mask_and_zero_score(seg):
    img = synthetic_image()
    pts = np.zeros((2, 2, 2), np.float32) + 50.5
    lab = np.array([[-1, -1], [1, -1]], np.int32)
    masks, scores = seg.prompt(img, pts, lab)
    assert not masks[0].any() and scores[0] == 0
    assert masks.shape == (2, *img.shape[:2])


def test_best_of_multimask_matches_sam_predict_torch(seg):
    """The fast path (choose on low-res logits, upsample one mask) against SamPredictor's own
    predict_torch (upsample all three, then choose by predicted IoU)."""
    img = synthetic_image()
    points, labels = random_prompts(np.random.default_rng(3), 5, 1, *img.shape[:2])
    masks, scores = seg.prompt(img, points, labels)
    pred = seg.predictor
    coords = torch.as_tensor(seg.to_model_coords(points))
    ref_masks, ref_iou, _ = pred.predict_torch(
        coords, torch.as_tensor(labels), multimask_output=True
    )
    best = ref_iou.argmax(1)
    rows = torch.arange(len(best))
    np.testing.assert_array_equal(masks, ref_masks[rows, best].numpy())
    np.testing.assert_allclose(scores, ref_iou[rows, best].clamp(0, 1).numpy(), atol=1e-6)


def test_pixel_centre_coordinates_become_sam_pixel_indices(seg):
    """On an image already at the model's input size (256 px, no resize), the centre of pixel
    (i, j), which lift3d writes (i + 0.5, j + 0.5), is SAM's point (i, j): its prompt encoder
    adds the 0.5 itself."""
    img = np.zeros((256, 256, 3), np.uint8)
    seg.set_image(img)
    ij = np.array([[[0, 0], [17, 200], [255, 255]]], dtype=np.float32)
    np.testing.assert_allclose(seg.to_model_coords(ij + 0.5), ij, atol=1e-5)
    # And on a 2x larger image the same normalised place: pixel centre * 0.5 - 0.5.
    seg.set_image(np.zeros((512, 512, 3), np.uint8))
    np.testing.assert_allclose(seg.to_model_coords(ij * 2 + 1.0), ij, atol=1e-5)


def test_auto_masks_on_a_synthetic_image(tiny_ckpt):
    cfg = SamConfig(
        device="cpu", points_per_side=4, pred_iou_thresh=0.0, stability_score_thresh=0.0
    )
    seg = SamSegmenter.from_checkpoint(tiny_ckpt, cfg)
    img = synthetic_image()
    masks = seg.auto_masks(img)
    assert masks and all(isinstance(m, Mask) for m in masks)
    assert all(m.segmentation.shape == img.shape[:2] and m.segmentation.dtype == bool
               for m in masks)
    assert all(0 <= m.score <= 1 for m in masks)
    assert seg.n_embeddings == 1


def test_auto_masks_crops_are_embedded_each_on_their_own(tiny_ckpt):
    """With one crop layer SAM embeds the whole image and its 4 crops; the whole-image
    embedding is the one prompts then reuse."""
    cfg = SamConfig(device="cpu", points_per_side=2, crop_n_layers=1,
                    pred_iou_thresh=0.0, stability_score_thresh=0.0)
    seg = SamSegmenter.from_checkpoint(tiny_ckpt, cfg)
    img = synthetic_image()
    seg.prompt(img, np.array([[[30.5, 30.5]]], np.float32), np.array([[1]], np.int32))
    seg.auto_masks(img)
    assert seg.n_embeddings == 1 + 4  # whole image once (cached), then the four crops


def test_bad_inputs_raise_shape_errors(seg):
    from lift3d.errors import ShapeError

    img = synthetic_image()
    with pytest.raises(ShapeError, match="points"):
        seg.prompt(img, np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int32))
    with pytest.raises(ShapeError, match="point_labels"):
        seg.prompt(img, np.zeros((2, 3, 2), np.float32), np.zeros((2, 2), np.int32))
    with pytest.raises(ShapeError, match="image"):
        seg.prompt(img[..., 0], np.zeros((1, 1, 2), np.float32), np.ones((1, 1), np.int32))


def test_unknown_setting_is_refused(tiny_ckpt):
    from lift3d.errors import Lift3DError

    with pytest.raises(Lift3DError, match="unknown SAM setting 'points_per_sid'"):
        SamSegmenter.from_config(checkpoint=str(tiny_ckpt), points_per_sid=8)


@pytest.mark.slow
def test_full_size_vit_b_with_random_weights_loads_through_the_user_path(tmp_path):
    """segment-anything's own vit_b builder, random weights, saved and loaded back as a user's
    checkpoint is: its keys and shapes are those of the official sam_vit_b file, the type is
    read from them, and every tensor arrives. (Running the 1024-px encoder on a CPU takes tens
    of seconds: that is measured in benchmarks/bench_sam.py, not here.)"""
    from segment_anything import build_sam_vit_b

    torch.manual_seed(0)
    saved = build_sam_vit_b().state_dict()
    path = tmp_path / "vit_b_random.pth"
    torch.save(saved, path)
    seg = SamSegmenter.from_config(checkpoint=str(path), device="cpu")
    assert seg.model_type == "vit_b"
    assert seg.model.image_encoder.img_size == 1024
    loaded = seg.model.state_dict()
    assert loaded.keys() == saved.keys()
    assert all(torch.equal(loaded[k], saved[k]) for k in saved)
    assert sum(p.numel() for p in seg.model.parameters()) == 93_735_472


def test_no_checkpoint_and_no_download_is_one_clear_error(tmp_path, monkeypatch):
    """What ``--segmenter auto`` tries first: build without downloading."""
    from lift3d.errors import CheckpointError

    monkeypatch.setenv("LIFT3D_CACHE", str(tmp_path))
    monkeypatch.delenv("LIFT3D_SAM_CHECKPOINT", raising=False)
    with pytest.raises(CheckpointError, match="sam_vit_h_4b8939.pth is not available offline"):
        build_segmenter("sam", download=False)


def test_iou_first_generator_equals_segment_anythings(tiny_ckpt):
    """Filtering by predicted IoU before upsampling keeps exactly the masks (and their RLEs,
    IoUs, stability scores, boxes, points) that SAM's own per-batch step keeps."""
    from segment_anything import SamAutomaticMaskGenerator

    # Random weights predict IoUs around 0-0.3 and near-zero logits: thresholds to match.
    cfg = SamConfig(device="cpu", points_per_side=8, pred_iou_thresh=0.05,
                    stability_score_thresh=0.5, stability_score_offset=0.01)
    seg = SamSegmenter.from_checkpoint(tiny_ckpt, cfg)
    ours = seg._mask_generator()
    ref = SamAutomaticMaskGenerator(seg.model, **cfg.generator_kwargs())
    ref.predictor = seg.predictor
    img = synthetic_image()
    seg.set_image(img)
    h, w = img.shape[:2]
    points = ours.point_grids[0] * np.array([[w, h]])
    a = ours._process_batch(points, (h, w), [0, 0, w, h], (h, w))
    b = ref._process_batch(points, (h, w), [0, 0, w, h], (h, w))
    assert 0 < len(a["rles"]) < 3 * len(points)  # the thresholds did filter
    assert a["rles"] == b["rles"]
    for key in ("iou_preds", "stability_score", "boxes", "points"):
        torch.testing.assert_close(a[key], b[key])


# -- automatic masks, whole image and restricted to a region ------------------------------------

# Random weights predict IoUs around 0-0.3 and near-zero logits: thresholds that keep masks.
KEEP = dict(points_per_side=8, pred_iou_thresh=0.05, stability_score_thresh=0.5,
            stability_score_offset=0.01)


def two_regions(h: int = 120, w: int = 160) -> np.ndarray:
    """(h, w) bool: the disc and the rectangle of :func:`synthetic_image` (two components)."""
    yy, xx = np.mgrid[0:h, 0:w]
    where = (xx - w // 3) ** 2 + (yy - h // 2) ** 2 < (h // 5) ** 2
    where[h // 4 : h // 2, 2 * w // 3 : 5 * w // 6] = True
    return where


def reference_generator(seg: SamSegmenter, point_grid: np.ndarray | None = None):
    """segment-anything's own generator on ``seg``'s model and cached embedding, masks as bool
    arrays; ``point_grid``: (K, 2) normalised points replacing its grid."""
    from segment_anything import SamAutomaticMaskGenerator

    kwargs = seg.config.generator_kwargs()
    if point_grid is not None:
        kwargs.update(points_per_side=None, point_grids=[point_grid])
    gen = SamAutomaticMaskGenerator(seg.model, output_mode="binary_mask", **kwargs)
    gen.predictor = seg.predictor
    return gen


def assert_same_masks(ours: list[Mask], records: list[dict]) -> None:
    """Same masks bit for bit, in the same order, with the same (clipped) predicted IoUs."""
    assert len(ours) == len(records)
    for m, r in zip(ours, records):
        np.testing.assert_array_equal(m.segmentation, r["segmentation"])
        assert m.score == pytest.approx(float(np.clip(r["predicted_iou"], 0, 1)), abs=1e-6)


def in_region(records: list[dict], where: np.ndarray) -> list[dict]:
    """The records whose prompt point's pixel lies in ``where``."""
    def inside(r):
        x, y = r["point_coords"][0]
        return bool(where[int(np.floor(y)), int(np.floor(x))])

    return [r for r in records if inside(r)]


@pytest.mark.parametrize("min_area", [0, 30])  # with and without small-region post-processing
def test_auto_masks_equal_segment_anythings_generator(tiny_ckpt, min_area):
    """The whole-image path (no RLEs, IoU first, bit-packed masks) gives exactly SAM's
    automatic masks, in its order."""
    seg = SamSegmenter.from_checkpoint(
        tiny_ckpt, SamConfig(device="cpu", min_mask_region_area=min_area, **KEEP)
    )
    img = synthetic_image()
    ours = seg.auto_masks(img)
    records = reference_generator(seg).generate(img)
    assert records  # the thresholds kept masks
    assert_same_masks(ours, records)
    assert seg.n_embeddings == 1 and seg.n_grid_points == 64


def test_masks_in_a_region_are_the_full_generators_masks_of_its_points(tiny_ckpt):
    """With box NMS off, the masks re-seeded with ``where`` are exactly the full generator's
    masks whose prompt point lies in ``where``: the decoding and the per-mask filters
    (predicted IoU, stability) do not depend on the other points."""
    seg = SamSegmenter.from_checkpoint(
        tiny_ckpt, SamConfig(device="cpu", box_nms_thresh=1.0, **KEEP)
    )
    img, where = synthetic_image(), two_regions()
    full = reference_generator(seg).generate(img)
    expected = in_region(full, where)
    assert 0 < len(expected) < len(full)  # the region holds some of the grid, not all
    ours = seg.auto_masks(img, where=where)
    assert_same_masks(ours, expected)
    assert seg.n_grid_points == len(seg.grid_points(img.shape[:2], where)) < 64


@pytest.mark.parametrize("min_area", [0, 30])
def test_masks_in_a_region_equal_the_generator_on_the_points_in_it(tiny_ckpt, min_area):
    """With box NMS (and post-processing), restricting to ``where`` is segment-anything's
    generator run with its grid cut to the points in ``where``: NMS ranks the region's
    candidates among themselves, so a mask is no longer suppressed by one prompted outside
    the region (which the tracker could not have used)."""
    seg = SamSegmenter.from_checkpoint(
        tiny_ckpt, SamConfig(device="cpu", min_mask_region_area=min_area, **KEEP)
    )
    img, where = synthetic_image(), two_regions()
    h, w = img.shape[:2]
    grid = seg.grid_points((h, w), where) / np.array([[w, h]])
    expected = reference_generator(seg, grid).generate(img)
    assert expected
    assert_same_masks(seg.auto_masks(img, where=where), expected)
    # Random weights give near-whole-image boxes, so the whole image's NMS keeps one mask,
    # prompted outside the region; the region's best mask is the one it re-seeds.
    full = reference_generator(seg).generate(img)
    assert len(full) == 1 and in_region(full, where) == [] and len(expected) == 1


def test_auto_masks_where_shares_the_embedding_and_skips_empty_regions(tiny_ckpt):
    seg = SamSegmenter.from_checkpoint(tiny_ckpt, SamConfig(device="cpu", **KEEP))
    img = synthetic_image()
    seg.prompt(img, np.array([[[30.5, 30.5]]], np.float32), np.array([[1]], np.int32))
    seg.auto_masks(img, where=two_regions())
    assert seg.n_embeddings == 1
    assert seg.auto_masks(img, where=np.zeros(img.shape[:2], bool)) == []
    assert seg.n_grid_points == len(seg.grid_points(img.shape[:2], two_regions()))


def test_bad_where_is_a_shape_error(seg):
    from lift3d.errors import ShapeError

    img = synthetic_image()
    with pytest.raises(ShapeError, match="where"):
        seg.auto_masks(img, where=np.ones((10, 10), bool))
    with pytest.raises(ShapeError, match="where"):
        seg.auto_masks(img, where=np.ones(img.shape[:2], np.uint8))


def test_grid_points_are_the_generators_and_select_by_pixel(seg):
    from segment_anything.utils.amg import build_point_grid

    h, w = 120, 160
    np.testing.assert_allclose(seg.grid_points((h, w)), build_point_grid(32) * [[w, h]])
    where = np.zeros((h, w), bool)
    where[:, :5] = True  # the first grid column sits at x = 160 / 64 = 2.5
    pts = seg.grid_points((h, w), where)
    assert len(pts) == 32 and np.all(pts[:, 0] == 2.5)
