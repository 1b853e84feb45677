"""The ``mast3r`` geometry backend: pair inference, global alignment, original-resolution
Geometry and lazily computed dense matches."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import torch

from lift3d.errors import InputError, Lift3DError
from lift3d.geometry.mast3r.inference import PairRunner, make_pairs
from lift3d.geometry.mast3r.model import Mast3rNet
from lift3d.geometry.mast3r.preprocess import (
    ImagePrep,
    pixel_to_original,
    prepare_image,
    resample_to_original,
)
from lift3d.types import Geometry, Matches, Scene


@dataclass(frozen=True)
class Mast3rConfig:
    """Settings of the MASt3R backend."""

    long_side: int = 512  # network input long side (pixels); the released model's size
    graph: str = "auto"  # pairs: complete | swin | chain | auto (complete up to complete_max)
    window: int = 3  # swin: each frame is paired with the next `window` frames
    complete_max: int = 8  # auto: all pairs up to this many frames, swin beyond
    symmetrize: bool = True  # run each pair both ways, (i, j) and (j, i)
    batch_size: int = 4  # pairs (and frames to encode) per forward pass
    min_conf: float = 1.5  # points with aligned confidence below this are invalid (conf >= 1)
    match_subsample: int = 8  # matching seeds on a grid of this step (network pixels)
    match_conf_thr: float = 0.0  # drop matches whose smaller descriptor confidence is below
    attention: str = "sdpa"  # sdpa (fused) | torch (plain reference)
    progress: bool = True  # progress bar over the pairs (stderr)

    def pairs(self, n: int) -> list[tuple[int, int]]:
        graph = self.graph
        if graph == "auto":
            graph = "complete" if n <= self.complete_max else "swin"
        return make_pairs(n, graph, self.window, self.symmetrize)


def _default_device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


class Mast3rGeometry:
    """GeometrySource running lift3d's MASt3R network on a Scene.

    ``Mast3rGeometry(net, cfg)`` takes a built network (reads no file);
    :meth:`from_config` loads the released checkpoint.
    """

    name = "mast3r"

    def __init__(self, net: Mast3rNet, cfg: Mast3rConfig = Mast3rConfig(),
                 device: str | torch.device | None = None):
        self.cfg = cfg
        self.device = torch.device(device) if device is not None else _default_device()
        self.net = net.to(self.device).eval().set_attention(cfg.attention)

    @classmethod
    def from_config(cls, checkpoint: str | None = None, device: str | None = None,
                    model_args: dict | None = None, **cfg) -> Mast3rGeometry:
        """Load the released checkpoint (``checkpoint`` path, ``$LIFT3D_MAST3R_CHECKPOINT``,
        the cache, or a download) and build the backend; ``cfg``: :class:`Mast3rConfig` fields;
        ``model_args`` override the released architecture (other checkpoints of the family).
        """
        known = {f.name for f in dataclasses.fields(Mast3rConfig)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise Lift3DError(f"unknown MASt3R settings {unknown}",
                              fix=f"choose among {sorted(known)}")
        dev = torch.device(device) if device is not None else _default_device()
        net = Mast3rNet.from_pretrained(checkpoint, device=dev, **(model_args or {}))
        return cls(net, Mast3rConfig(**cfg), dev)

    def __call__(self, scene: Scene) -> Geometry:
        n = len(scene)
        if n < 2:
            raise InputError(f"MASt3R needs at least 2 frames, the scene has {n}", scene.source,
                             "use a scene with several views, or --geometry rgbd/flow")
        from lift3d.geometry.mast3r.align import AlignConfig, global_align

        runner, preps = self.prepare(scene)
        preds = runner.predict(self.cfg.pairs(n), progress=self.cfg.progress)
        res = global_align(preds, n, AlignConfig())
        return self.to_geometry(res, preps, runner)

    def prepare(self, scene: Scene) -> tuple[PairRunner, list[ImagePrep]]:
        """Network inputs of every frame and a runner holding them."""
        images, preps = [], []
        for f in scene.frames:
            img, prep = prepare_image(f.image, self.cfg.long_side)
            images.append(img)
            preps.append(prep)
        return PairRunner(self.net, images, self.cfg.batch_size, self.device), preps

    def to_geometry(self, res, preps: list[ImagePrep], runner: PairRunner) -> Geometry:
        """Aligned network-resolution results -> Geometry at each frame's original size."""
        points, conf, valid, Ks, poses = [], [], [], [], []
        for k, prep in enumerate(preps):
            pts, inside = resample_to_original(np.asarray(res.points[k], np.float32), prep)
            c, _ = resample_to_original(np.asarray(res.conf[k], np.float32), prep)
            ok = inside & (c >= self.cfg.min_conf) & np.isfinite(pts).all(-1)
            points.append(pts.astype(np.float32))
            conf.append(c.astype(np.float32))
            valid.append(ok)
            Ks.append(original_K(float(res.focals[k]), np.asarray(res.pp[k], np.float64), prep))
            poses.append(np.asarray(res.cam_to_world[k], np.float64))
        return Geometry(points, conf, valid, Ks, poses,
                        match_fn=make_match_fn(runner, preps, self.cfg))


def original_K(focal: float, pp: np.ndarray, prep: ImagePrep) -> np.ndarray:
    """(3, 3) intrinsics in original pixels from a network-resolution focal and principal
    point (integer pixel indices at pixel centres, as in the network's pointmaps)."""
    sx, sy = prep.scale_xy
    x0, y0 = prep.crop_xy
    return np.array([
        [focal / sx, 0.0, (pp[0] + 0.5 + x0) / sx - 0.5],
        [0.0, focal / sy, (pp[1] + 0.5 + y0) / sy - 0.5],
        [0.0, 0.0, 1.0],
    ])


def make_match_fn(runner: PairRunner, preps: list[ImagePrep], cfg: Mast3rConfig):
    """match_fn(i, j) -> Matches in original pixels; each pair computed once, on request."""
    cache: dict[tuple[int, int], Matches] = {}

    def match_fn(i: int, j: int) -> Matches:
        if (i, j) not in cache:
            xy_i, xy_j, c = runner.match(i, j, cfg.match_subsample, cfg.match_conf_thr)
            cache[(i, j)] = Matches(pixel_to_original(xy_i, preps[i]),
                                    pixel_to_original(xy_j, preps[j]), c)
        return cache[(i, j)]

    return match_fn
