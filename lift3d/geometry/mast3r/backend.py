"""The ``mast3r`` geometry backend: pair inference, global alignment, original-resolution
pointmaps on demand and a descriptor matcher; pair outputs and the alignment cached on disk."""

from __future__ import annotations

import dataclasses
from collections import OrderedDict
from pathlib import Path

import numpy as np
import torch

from lift3d.errors import InputError, Lift3DError
from lift3d.geometry.mast3r.cache import Mast3rCache, net_fingerprint
from lift3d.geometry.mast3r.config import Mast3rConfig
from lift3d.geometry.mast3r.inference import PairResult, PairRunner, match_descriptors
from lift3d.geometry.mast3r.model import Mast3rNet
from lift3d.geometry.mast3r.preprocess import (
    ImagePrep,
    pixel_to_original,
    plan,
    prepare_image,
    resample_to_original,
)
from lift3d.types import Geometry, Lazy, Matches, PointMaps, Scene


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
        return cls.from_settings(Mast3rConfig(**cfg), checkpoint, device, model_args)

    @classmethod
    def from_settings(cls, cfg: Mast3rConfig, checkpoint: str | None = None,
                      device: str | None = None, model_args: dict | None = None
                      ) -> Mast3rGeometry:
        """Load the released checkpoint (as :meth:`from_config`) with typed settings."""
        dev = torch.device(device) if device is not None else _default_device()
        net = Mast3rNet.from_pretrained(checkpoint, device=dev, **(model_args or {}))
        return cls(net, cfg, dev)

    def __call__(self, scene: Scene, cache_dir: Path | None = None) -> Geometry:
        """Pair inference, global alignment and a matcher; with ``cache_dir`` every pair's
        outputs and the alignment are kept there (:mod:`~lift3d.geometry.mast3r.cache`), so a
        resumed run does no inference it has done before."""
        n = len(scene)
        if n < 2:
            raise InputError(f"MASt3R needs at least 2 frames, the scene has {n}", scene.source,
                             "use a scene with several views, or --geometry rgbd/flow")
        from lift3d.geometry.mast3r.align import AlignConfig, global_align

        runner, preps = self.prepare(scene)
        cache = None
        if cache_dir is not None:
            cache = Mast3rCache(Path(cache_dir) / "mast3r", self.cache_key(scene, preps))
        res = cache.load_alignment() if cache is not None else None
        if res is None:
            preds = self.infer(runner, self.cfg.pairs(n), cache)
            res = global_align(preds, n, AlignConfig())
            del preds
            if cache is not None:
                cache.save_alignment(res)
        return self.to_geometry(res, preps, runner, cache)

    def cache_key(self, scene: Scene, preps: list[ImagePrep]) -> dict:
        """What the cached pairs and alignment depend on: frames, settings, the network."""
        cfg = {k: v for k, v in dataclasses.asdict(self.cfg).items() if k != "progress"}
        return {"frames": scene.names, "sizes": [list(p.orig_hw) for p in preps],
                "config": cfg, "net": net_fingerprint(self.net)}

    def infer(self, runner: PairRunner, pairs: list[tuple[int, int]],
              cache: Mast3rCache | None = None) -> list[PairResult]:
        """Every pair's outputs, in the order of ``pairs``: read from ``cache`` where it has
        them, else run (and written there as each batch finishes). The consecutive pairs
        (i, i + 1), which the tracker matches, keep their descriptors in the cache."""
        def consecutive(i: int, j: int) -> bool:
            return cache is not None and j == i + 1

        got = {p: cache.load_pair(*p) for p in pairs} if cache is not None else {}
        todo = [p for p in pairs if got.get(p) is None]

        def keep(r: PairResult) -> None:
            if cache is not None:
                cache.save_pair(r, with_desc=consecutive(r.i, r.j))
            r.desc_i = r.desc_j = r.desc_conf_i = r.desc_conf_j = None  # memory: only pts

        if todo:
            for r in runner.predict(todo, with_desc=consecutive, progress=self.cfg.progress,
                                    on_result=keep):
                got[(r.i, r.j)] = r
        return [got[p] for p in pairs]

    def prepare(self, scene: Scene) -> tuple[PairRunner, list[ImagePrep]]:
        """A runner whose network inputs are made from each frame when it is first encoded,
        and every frame's resize/crop plan."""
        frames, long_side = scene.frames, self.cfg.long_side
        preps = [plan(f.hw, long_side) for f in _each(frames)]
        images = Lazy(len(frames), lambda k: prepare_image(frames[k].image, long_side)[0],
                      keep=2 * max(1, self.cfg.batch_size))
        return PairRunner(self.net, images, self.cfg.batch_size, self.device,
                          [p.net_hw for p in preps]), preps

    def to_geometry(self, res, preps: list[ImagePrep], runner: PairRunner,
                    cache: Mast3rCache | None = None) -> Geometry:
        """Aligned network-resolution results -> Geometry whose PointMaps are resampled to
        each frame's original size when asked."""
        min_conf = self.cfg.min_conf

        def pointmap(k: int) -> PointMaps:
            prep = preps[k]
            pts, inside = resample_to_original(np.asarray(res.points[k], np.float32), prep)
            c, _ = resample_to_original(np.asarray(res.conf[k], np.float32), prep)
            ok = inside & (c >= min_conf) & np.isfinite(pts).all(-1)
            return PointMaps(
                points=pts.astype(np.float32), conf=c.astype(np.float32), valid=ok,
                K=original_K(float(res.focals[k]), np.asarray(res.pp[k], np.float64), prep),
                cam_to_world=np.asarray(res.cam_to_world[k], np.float64),
            )

        return Geometry(Lazy(len(preps), pointmap, keep=3),
                        Mast3rMatcher(runner, preps, self.cfg, cache), kind="3d")


def _each(frames):
    """Iterate frames (a list or a lazy sequence) one at a time."""
    for k in range(len(frames)):
        yield frames[k]


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


class Mast3rMatcher:
    """Reciprocal-NN descriptor matches in original pixels.

    Descriptors come from the pair cache (the consecutive pairs inferred with the alignment)
    or, for a pair not cached, from one decoder pass, then written to the cache. The last
    ``keep`` pairs' matches are kept in memory.
    """

    cost = "network"
    """A decoder pass per pair whose descriptors are not cached; cached pairs cost one
    nearest-neighbour search."""

    keep = 8

    def __init__(self, runner: PairRunner, preps: list[ImagePrep], cfg: Mast3rConfig,
                 cache: Mast3rCache | None = None) -> None:
        self.runner, self.preps, self.cfg, self.cache = runner, preps, cfg, cache
        self._recent: OrderedDict[tuple[int, int], Matches] = OrderedDict()

    def prepare(self, pairs: list[tuple[int, int]]) -> None:
        """Infer (and cache) the descriptors of every pair not cached yet."""
        for i, j in pairs:
            self._descriptors(i, j)

    def _descriptors(self, i: int, j: int) -> tuple[np.ndarray, ...]:
        if self.cache is not None:
            r = self.cache.load_pair(i, j, with_desc=True)
            if r is not None:
                return r.desc_i, r.desc_j, r.desc_conf_i, r.desc_conf_j
        d = self.runner.descriptors(i, j)
        if self.cache is not None:
            r = self.cache.load_pair(i, j)
            if r is not None:  # a pair of the graph: add its descriptors to its file
                r.desc_i, r.desc_j, r.desc_conf_i, r.desc_conf_j = d
                self.cache.add_desc(r)
        return d

    def matches(self, i: int, j: int) -> Matches:
        if (i, j) in self._recent:
            self._recent.move_to_end((i, j))
            return self._recent[(i, j)]
        xy_i, xy_j, c = match_descriptors(*self._descriptors(i, j), self.cfg.match_subsample,
                                          self.cfg.match_conf_thr, self.runner.device)
        m = Matches(pixel_to_original(xy_i, self.preps[i]),
                    pixel_to_original(xy_j, self.preps[j]), c)
        self._recent[(i, j)] = m
        while len(self._recent) > self.keep:
            self._recent.popitem(last=False)
        return m
