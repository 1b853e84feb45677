"""The ``sam`` segmenter: Segment Anything behind the :class:`~lift3d.segment.base.Segmenter`
interface.

Built on the ``segment-anything`` package: ``SamAutomaticMaskGenerator`` for ``auto_masks``,
``SamPredictor``'s embedding and prompt pipeline for ``prompt``. What matters for the tracker:

* one image embedding per frame. :class:`CachingSamPredictor` remembers which image its
  embedding belongs to (a hash of the pixels) and skips the image encoder when the same frame
  is prompted again; the automatic generator is handed this same predictor, so ``auto_masks``
  and ``prompt`` on one frame share one embedding (with ``crop_n_layers=0``; crops are
  embedded each on their own, as SAM does);
* prompts batched: the prompt sets of a frame go through the prompt encoder and mask decoder
  together (grouped by their number of points, see :meth:`SamSegmenter.prompt`), in chunks
  of ``prompt_batch_size`` (64 on a GPU, 16 on a CPU);
* automatic masks filtered by predicted IoU before, not after, upsampling
  (:class:`IouFirstMaskGenerator`: same masks, a fraction of the work on a CPU);
* multimask output: of SAM's three masks per prompt the one with the highest predicted IoU is
  kept, and that IoU is returned as the score.

Checkpoints are found, verified and loaded by :mod:`lift3d.segment.sam_checkpoint`.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from lift3d.checks import check_shape, with_settings
from lift3d.device import pick_device
from lift3d.errors import BackendUnavailable
from lift3d.segment.base import Mask, check_where
from lift3d.segment.sam_checkpoint import find_sam_checkpoint, load_sam

try:
    from segment_anything import SamAutomaticMaskGenerator, SamPredictor
    from segment_anything.modeling import Sam
    from segment_anything.utils.amg import (
        MaskData,
        batch_iterator,
        batched_mask_to_box,
        build_all_layer_point_grids,
        calculate_stability_score,
        is_box_near_crop_edge,
        mask_to_rle_pytorch,
        remove_small_regions,
        uncrop_masks,
    )
    from torchvision.ops.boxes import batched_nms
except ImportError as _err:  # one clear message instead of a traceback at first use
    raise BackendUnavailable(
        f"the SAM backend needs the segment-anything package ({_err})", None,
        "pip install segment-anything, or use --segmenter classical",
    ) from _err


CPU_PROMPT_BATCH = 16
"""Prompt sets per decoder call on a CPU when ``SamConfig.prompt_batch_size`` is None."""


@dataclass(frozen=True)
class SamConfig:
    """Settings of the SAM segmenter (CLI: ``--sam-*``; recorded in report.json).

    The automatic-generator fields are ``SamAutomaticMaskGenerator``'s arguments with its
    defaults, which segment-anything tuned for ViT-H and the method uses unchanged.
    """

    checkpoint: str | None = None
    """Checkpoint file; None: ``$LIFT3D_SAM_CHECKPOINT``, then the user cache, then download."""
    download: bool | None = None
    """Download the official file when none is found; None: unless ``LIFT3D_OFFLINE=1``."""
    model_type: str = "auto"
    """vit_h, vit_l, vit_b, tiny, or auto (read from the checkpoint's tensor shapes)."""
    device: str | None = None
    """cuda, cuda:N, mps, cpu; None or "auto": cuda, then mps, then cpu."""
    verify_checksum: bool = True
    """Check the SHA-256 of files with an official name (a few seconds for vit_h)."""
    multimask_output: bool = True
    """Point prompts: take SAM's three candidate masks and keep the best by predicted IoU."""
    prompt_batch_size: int | None = None
    """Prompt sets per mask-decoder call; None: 64 on a GPU, 16 on the CPU. The decoder's
    linear layers run on (sets x 4096 tokens) rows, so batching pays on a CPU too: vit_b's
    decoder, torch 2.14, 2 threads, 48 five-point sets at 640x480 took 21 CPU s in batches
    of 2 and 10.6 CPU s in batches of 16 (48: 10.2 s; ``benchmarks/bench_sam_track.py``
    measures it in a tracked frame). 16 keeps a batch's upsampled masks near 64 MB."""
    points_per_side: int = 32
    """Automatic masks: grid of points_per_side**2 single-point prompts over the image."""
    points_per_batch: int = 64
    """Automatic masks: grid points decoded per call."""
    pred_iou_thresh: float = 0.88
    """Automatic masks: keep masks whose predicted IoU exceeds this."""
    stability_score_thresh: float = 0.95
    """Automatic masks: keep masks whose IoU under a +-offset logit threshold is at least this."""
    stability_score_offset: float = 1.0
    """Automatic masks: the logit offset of the stability score."""
    box_nms_thresh: float = 0.7
    """Automatic masks: box IoU above which duplicate masks are suppressed."""
    crop_n_layers: int = 0
    """Automatic masks: extra layers of image crops (layer i: 4**i crops), 0 = whole image only."""
    crop_nms_thresh: float = 0.7
    """Automatic masks: box IoU for suppressing duplicates between crops."""
    crop_overlap_ratio: float = 512 / 1500
    """Automatic masks: overlap of neighbouring crops, as a fraction of the image side."""
    crop_n_points_downscale_factor: int = 1
    """Automatic masks: points per side in crop layer i are divided by this**i."""
    min_mask_region_area: int = 0
    """Automatic masks: remove islands and holes smaller than this many pixels (0 = off)."""

    def generator_kwargs(self) -> dict:
        """The fields that are ``SamAutomaticMaskGenerator`` arguments."""
        names = (
            "points_per_side", "points_per_batch", "pred_iou_thresh", "stability_score_thresh",
            "stability_score_offset", "box_nms_thresh", "crop_n_layers", "crop_nms_thresh",
            "crop_overlap_ratio", "crop_n_points_downscale_factor", "min_mask_region_area",
        )
        return {n: getattr(self, n) for n in names}


def _image_key(image: np.ndarray, image_format: str) -> bytes:
    """Identity of an image's pixels: a 128-bit BLAKE2 digest (~2 ms for 854 x 480 x 3)."""
    h = hashlib.blake2b(digest_size=16)
    h.update(repr((image.shape, image.dtype.str, image_format)).encode())
    h.update(np.ascontiguousarray(image).data)
    return h.digest()


class CachingSamPredictor(SamPredictor):
    """``SamPredictor`` that embeds each distinct image once.

    ``set_image`` skips the image encoder when handed the same pixels as the embedding it
    holds; ``reset_image`` (which the automatic generator calls after each crop, to free
    memory) keeps that embedding so later prompts on the frame reuse it; :meth:`forget` really
    drops it. ``n_embeddings`` counts image-encoder runs.
    """

    def __init__(self, sam_model: Sam) -> None:
        self._key: bytes | None = None
        self.n_embeddings = 0
        super().__init__(sam_model)

    def set_image(self, image: np.ndarray, image_format: str = "RGB") -> None:
        key = _image_key(image, image_format)
        if self.is_image_set and key == self._key:
            return
        super().set_image(image, image_format)
        self._key = key

    def set_torch_image(self, transformed_image: torch.Tensor, original_image_size) -> None:
        self._key = None  # whatever was cached is being replaced
        super().set_torch_image(transformed_image, original_image_size)
        self.n_embeddings += 1

    def reset_image(self) -> None:
        if self._key is None:
            super().reset_image()

    def forget(self) -> None:
        """Drop the cached embedding (frees its memory)."""
        self._key = None
        self.reset_image()


class IouFirstMaskGenerator(SamAutomaticMaskGenerator):
    """``SamAutomaticMaskGenerator`` that drops masks below ``pred_iou_thresh`` *before*
    upsampling them to the image size, not after.

    The predicted IoU does not depend on the upsampling, and each mask is upsampled on its
    own, so the output is the same; the work is not: SAM upsamples 3 masks per grid point
    (3 x 64 x 1024 x 1024 floats per batch) and with real weights most fail the threshold.
    On a CPU this step dominates ``auto_masks``. Overrides the generator's per-batch step
    (``_process_batch``, segment-anything 1.0); the rest of the generator is unchanged.
    """

    def _process_batch(self, points, im_size, crop_box, orig_size) -> MaskData:
        orig_h, orig_w = orig_size
        data = decode_grid_points(
            self.predictor, points, im_size, self.pred_iou_thresh,
            self.stability_score_thresh, self.stability_score_offset,
        )
        # From here on as SamAutomaticMaskGenerator._process_batch.
        keep = ~is_box_near_crop_edge(data["boxes"], crop_box, [0, 0, orig_w, orig_h])
        if not torch.all(keep):
            data.filter(keep)
        data["masks"] = uncrop_masks(data["masks"], crop_box, orig_h, orig_w)
        data["rles"] = mask_to_rle_pytorch(data["masks"])
        del data["masks"]
        return data


def decode_grid_points(
    predictor: SamPredictor, points: np.ndarray, im_size: tuple[int, int],
    pred_iou_thresh: float, stability_score_thresh: float, stability_score_offset: float,
) -> MaskData:
    """One batch of the automatic generator's single-point prompts, decoded and filtered.

    predictor: holds the embedding of the (crop) image of size ``im_size`` (H, W).
    points: (b, 2) float64 pixel coordinates (x, y) as the generator's point grids give them.
    Returns MaskData with ``masks`` (m, H, W) bool, ``iou_preds`` (m,), ``stability_score``
    (m,), ``boxes`` (m, 4) XYXY and ``points`` (m, 2) of the up to 3 b multimask outputs that
    pass the predicted-IoU (>) and stability (>=) thresholds: the first steps of
    ``SamAutomaticMaskGenerator._process_batch`` with the IoU filter moved before upsampling.
    """
    model = predictor.model
    in_points = torch.as_tensor(
        predictor.transform.apply_coords(points, im_size), device=predictor.device
    )
    in_labels = torch.ones(len(in_points), dtype=torch.int, device=predictor.device)
    sparse, dense = model.prompt_encoder(
        points=(in_points[:, None, :], in_labels[:, None]), boxes=None, masks=None
    )
    low_res, iou = model.mask_decoder(
        image_embeddings=predictor.features,
        image_pe=model.prompt_encoder.get_dense_pe(),
        sparse_prompt_embeddings=sparse,
        dense_prompt_embeddings=dense,
        multimask_output=True,
    )
    data = MaskData(
        masks=low_res.flatten(0, 1),
        iou_preds=iou.flatten(0, 1),
        points=torch.as_tensor(points.repeat(low_res.shape[1], axis=0)),
    )
    if pred_iou_thresh > 0.0:
        data.filter(data["iou_preds"] > pred_iou_thresh)
    if len(data["masks"]) == 0:
        data["masks"] = torch.zeros((0, *im_size), device=predictor.device)
    else:
        data["masks"] = model.postprocess_masks(
            data["masks"][:, None], predictor.input_size, predictor.original_size
        )[:, 0]
    data["stability_score"] = calculate_stability_score(
        data["masks"], model.mask_threshold, stability_score_offset
    )
    if stability_score_thresh > 0.0:
        data.filter(data["stability_score"] >= stability_score_thresh)
    data["masks"] = data["masks"] > model.mask_threshold
    data["boxes"] = batched_mask_to_box(data["masks"])
    return data


def remove_small_mask_regions(
    masks: np.ndarray, min_area: int, nms_thresh: float
) -> tuple[np.ndarray, np.ndarray]:
    """``SamAutomaticMaskGenerator.postprocess_small_regions`` on bool masks (m, H, W)
    instead of RLEs: holes then islands below ``min_area`` pixels removed, then box NMS that
    prefers unchanged masks. Returns the kept masks (k, H, W) bool and their indices (k,)."""
    new, unchanged = [], []
    for mask in masks:
        mask, holes = remove_small_regions(mask, min_area, mode="holes")
        mask, islands = remove_small_regions(mask, min_area, mode="islands")
        new.append(mask)
        unchanged.append(float(not (holes or islands)))
    stacked = torch.as_tensor(np.stack(new))
    keep = batched_nms(
        batched_mask_to_box(stacked).float(), torch.as_tensor(unchanged),
        torch.zeros(len(new)), iou_threshold=nms_thresh,
    ).numpy()
    return stacked.numpy()[keep], keep


class SamSegmenter:
    """Segment Anything as a :class:`~lift3d.segment.base.Segmenter`.

    Construct with :meth:`from_config` (finds and loads the checkpoint) or
    :meth:`from_checkpoint`; the constructor takes a ready model and reads no file.
    ``n_embeddings``: how many times the image encoder ran (one per distinct frame);
    ``n_grid_points``: how many automatic-mask grid points were decoded (all frames).
    """

    name = "sam"
    uses_depth = False

    def __init__(self, model: Sam, config: SamConfig | None = None, model_type: str = "custom"):
        self.config = config or SamConfig()
        self.model_type = model_type
        self.model = model.eval()
        self.predictor = CachingSamPredictor(self.model)
        self._generator: IouFirstMaskGenerator | None = None
        self.n_grid_points = 0

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def from_config(cls, config: SamConfig | None = None, **overrides) -> SamSegmenter:
        """Find, verify and load the checkpoint ``config`` names, on ``config.device``.

        overrides: :class:`SamConfig` fields (a ``sam_`` prefix is accepted, so CLI option
        names pass through: ``sam_checkpoint=...``). Raises :class:`CheckpointError` when no
        usable checkpoint is found (saying which file to put where) or it is damaged.
        """
        config = _with_overrides(config or SamConfig(), overrides)
        path = find_sam_checkpoint(config.checkpoint, config.model_type, config.download)
        return cls.from_checkpoint(path, config)

    @classmethod
    def from_checkpoint(
        cls, path: str | Path, config: SamConfig | None = None, **overrides
    ) -> SamSegmenter:
        """Load the SAM checkpoint file at ``path`` (any place, any name) onto the device."""
        config = _with_overrides(config or SamConfig(), overrides)
        config = dataclasses.replace(config, checkpoint=str(path))
        device = pick_device(config.device)
        model, model_type = load_sam(path, config.model_type, verify=config.verify_checksum)
        return cls(model.to(device), config, model_type)

    # -- the Segmenter interface --------------------------------------------------------------

    @property
    def n_embeddings(self) -> int:
        return self.predictor.n_embeddings

    @property
    def device(self) -> torch.device:
        return self.model.device

    def set_image(self, image: np.ndarray) -> None:
        """Embed ``image`` ((H, W, 3) uint8 RGB) unless it is the frame already embedded."""
        check_shape("image", image, (None, None, 3), np.uint8)
        self.predictor.set_image(image)

    def auto_masks(self, image: np.ndarray, where: np.ndarray | None = None) -> list[Mask]:
        """SAM's automatic masks for ``image`` ((H, W, 3) uint8 RGB), scored by predicted IoU.

        where: optional (H, W) bool. Only the generator's grid points that fall in it (the
        pixel holding the point is True) are decoded, on the frame's one embedding; None: all
        of them. Settings: the generator fields of :class:`SamConfig`. Scores are clipped to
        [0, 1].

        With ``crop_n_layers = 0`` the masks are exactly what ``SamAutomaticMaskGenerator``
        gives with ``point_grids`` set to those points, in its order: the same decoding and
        per-mask filters (:func:`decode_grid_points`), box NMS over the masks kept, then the
        small-region post-processing when ``min_mask_region_area > 0``; only the RLE encoding
        and the records the tracker never reads are skipped. With crop layers each crop
        needs its own embedding: the generator runs as segment-anything defines it and
        ``where`` is not used (callers filter).
        """
        check_shape("image", image, (None, None, 3), np.uint8)
        where = check_where(where, image)
        if self.config.crop_n_layers > 0:
            return self._generator_masks(image)
        masks, iou = self._grid_masks(image, where)
        return [
            Mask(segmentation=m, score=float(np.clip(s, 0.0, 1.0))) for m, s in zip(masks, iou)
        ]

    def grid_points(self, hw: tuple[int, int], where: np.ndarray | None = None) -> np.ndarray:
        """The automatic generator's point grid in pixel coordinates (x, y) of an (H, W)
        image, as it prompts them ((K, 2) float64, pixel centres at integer + 0.5), keeping
        only the points whose pixel is True in ``where`` (if given)."""
        cfg = self.config
        grid = build_all_layer_point_grids(cfg.points_per_side, 0, 1)[0]
        points = grid * np.array([[hw[1], hw[0]]])
        if where is None:
            return points
        col = np.clip(np.floor(points[:, 0]).astype(np.int64), 0, hw[1] - 1)
        row = np.clip(np.floor(points[:, 1]).astype(np.int64), 0, hw[0] - 1)
        return points[where[row, col]]

    def prompt(
        self, image: np.ndarray, points: np.ndarray, point_labels: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """One mask per prompt set, all sets of the frame decoded in batches.

        image: (H, W, 3) uint8 RGB; embedded once (cached across calls on the same frame).
        points: (B, N, 2) float pixel coordinates (x, y), pixel centres at integer + 0.5.
        point_labels: (B, N) int: 1 foreground, 0 background, -1 padding.
        Returns masks (B, H, W) bool and scores (B,) float32: SAM's predicted IoU of the kept
        mask, clipped to [0, 1]. A set with no valid point gets an empty mask and score 0.

        Padding is dropped, not passed to SAM as "not a point" tokens: sets are grouped by
        their number of valid points and each group decoded as one batch, so a set's mask is
        the one it would get alone (extra not-a-point tokens would change the decoder's
        attention and hence the mask).
        """
        check_shape("image", image, (None, None, 3), np.uint8)
        check_shape("points", points, (None, None, 2), np.number)
        n_sets, n_points = points.shape[:2]
        check_shape("point_labels", point_labels, (n_sets, n_points), np.integer)
        height, width = image.shape[:2]
        masks = np.zeros((n_sets, height, width), dtype=bool)
        scores = np.zeros(n_sets, dtype=np.float32)
        if n_sets == 0:
            return masks, scores
        self.predictor.set_image(image)
        # Valid points first, in their given order, so the first n of a set are its points.
        order = np.argsort(point_labels < 0, axis=1, kind="stable")
        pts = np.take_along_axis(points.astype(np.float32), order[..., None], axis=1)
        labels = np.take_along_axis(point_labels.astype(np.int32), order, axis=1)
        n_valid = (point_labels >= 0).sum(axis=1)
        step = self.config.prompt_batch_size or (CPU_PROMPT_BATCH if self.device.type == "cpu" else 64)
        for n in np.unique(n_valid[n_valid > 0]):
            rows = np.flatnonzero(n_valid == n)
            for start in range(0, len(rows), step):
                idx = rows[start : start + step]
                m, s = self._decode(pts[idx, :n], labels[idx, :n])
                masks[idx], scores[idx] = m, s
        return masks, scores

    # -- internals ----------------------------------------------------------------------------

    def to_model_coords(self, xy: np.ndarray) -> np.ndarray:
        """Pixel-centre (+0.5) image coordinates -> what SAM's prompt encoder takes.

        SAM's point coordinates are pixel indices in the resized (long side = image_size)
        frame: its prompt encoder adds 0.5 itself before normalising. So scale to the resized
        frame, then take the 0.5 off, and a point lands where it was given.
        """
        return self.predictor.transform.apply_coords(xy, self.predictor.original_size) - 0.5

    @torch.inference_mode()
    def _decode(self, points: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Masks for b prompt sets of n valid points each on the embedded frame.

        points: (b, n, 2) float32 pixel-centre xy; labels: (b, n) int32 in {0, 1}.
        Returns (b, H, W) bool at the original resolution and (b,) float32 scores.

        What ``SamPredictor.predict_torch`` does, except that the best of the multimask
        outputs is chosen on the low-resolution logits, so only one mask per set (not three)
        is upsampled to the image size.
        """
        model, pred = self.model, self.predictor
        coords = torch.as_tensor(self.to_model_coords(points), device=self.device)
        lab = torch.as_tensor(labels, dtype=torch.int, device=self.device)
        sparse, dense = model.prompt_encoder(points=(coords, lab), boxes=None, masks=None)
        low_res, iou = model.mask_decoder(
            image_embeddings=pred.features,
            image_pe=model.prompt_encoder.get_dense_pe(),
            sparse_prompt_embeddings=sparse,
            dense_prompt_embeddings=dense,
            multimask_output=self.config.multimask_output,
        )
        best = iou.argmax(dim=1)
        rows = torch.arange(len(best), device=best.device)
        chosen = low_res[rows, best][:, None]
        upsampled = model.postprocess_masks(chosen, pred.input_size, pred.original_size)
        masks = (upsampled[:, 0] > model.mask_threshold).cpu().numpy()
        scores = iou[rows, best].clamp(0.0, 1.0).float().cpu().numpy()
        return masks, scores

    @torch.inference_mode()
    def _grid_masks(
        self, image: np.ndarray, where: np.ndarray | None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Masks (k, H, W) bool and predicted IoUs (k,) of the grid points in ``where``, on
        the whole image's cached embedding (see :meth:`auto_masks`)."""
        cfg, (h, w) = self.config, image.shape[:2]
        points = self.grid_points((h, w), where)
        if len(points) == 0:
            return np.zeros((0, h, w), bool), np.zeros(0, np.float32)
        self.predictor.set_image(image)
        self.n_grid_points += len(points)
        packed, iou, boxes = [], [], []
        for (batch,) in batch_iterator(self._auto_batch_size(), points):
            data = decode_grid_points(
                self.predictor, batch, (h, w), cfg.pred_iou_thresh,
                cfg.stability_score_thresh, cfg.stability_score_offset,
            )
            # Masks wait for NMS bit-packed on the host (8x smaller than bool): the generator
            # keeps RLEs for the same reason, but they cost more to make and to undo.
            packed.append(np.packbits(data["masks"].cpu().numpy(), axis=-1))
            iou.append(data["iou_preds"].float().cpu())
            boxes.append(data["boxes"].cpu())
        iou_t, boxes_t = torch.cat(iou), torch.cat(boxes)
        if len(iou_t) == 0:
            return np.zeros((0, h, w), bool), np.zeros(0, np.float32)
        # Box NMS within the (single) crop, scored by predicted IoU, as the generator does.
        keep = batched_nms(
            boxes_t.float(), iou_t, torch.zeros(len(boxes_t)), iou_threshold=cfg.box_nms_thresh
        ).numpy()
        masks = np.unpackbits(np.concatenate(packed)[keep], axis=-1, count=w).astype(bool)
        scores = iou_t.numpy()[keep]
        if cfg.min_mask_region_area > 0:
            nms = max(cfg.box_nms_thresh, cfg.crop_nms_thresh)
            masks, kept = remove_small_mask_regions(masks, cfg.min_mask_region_area, nms)
            scores = scores[kept]
        return masks, scores

    def _auto_batch_size(self) -> int:
        """Grid points per decoder call: ``points_per_batch`` on a GPU; on the CPU
        ``prompt_batch_size`` (default 16, see its field)."""
        if self.device.type != "cpu":
            return self.config.points_per_batch
        return self.config.prompt_batch_size or CPU_PROMPT_BATCH

    def _generator_masks(self, image: np.ndarray) -> list[Mask]:
        """segment-anything's generator (IoU-first), for crop layers."""
        records = self._mask_generator().generate(image)
        return [
            Mask(
                segmentation=np.asarray(r["segmentation"], dtype=bool),
                score=float(np.clip(r["predicted_iou"], 0.0, 1.0)),
            )
            for r in records
        ]

    def _mask_generator(self) -> SamAutomaticMaskGenerator:
        if self._generator is None:
            gen = IouFirstMaskGenerator(self.model, **self.config.generator_kwargs())
            # Share the caching predictor (and its embedding) instead of the generator's own.
            gen.predictor = self.predictor
            self._generator = gen
        return self._generator


def _with_overrides(config: SamConfig, overrides: dict) -> SamConfig:
    """``config`` with fields replaced (:func:`~lift3d.checks.with_settings`); ``sam_``
    prefixes stripped; None values ignored."""
    return with_settings(config, {k.removeprefix("sam_"): v for k, v in overrides.items()
                                  if v is not None}, "SAM")
