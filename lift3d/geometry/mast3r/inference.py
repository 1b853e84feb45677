"""Pair inference over a frame graph: which pairs to run, and running them in batches.

Each frame is encoded once (the ViT-L encoder is most of the cost) and its tokens are reused
by every pair it takes part in; the decoder and heads then run per pair, batched by shape.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from lift3d.geometry.mast3r.align import PairPrediction
from lift3d.geometry.mast3r.matching import reciprocal_nns
from lift3d.geometry.mast3r.model import Mast3rNet


def make_pairs(n: int, graph: str = "swin", window: int = 3, symmetrize: bool = True
               ) -> list[tuple[int, int]]:
    """Frame pairs (i, j) to run.

    graph: ``complete`` (all pairs), ``swin`` (each frame with the next ``window``),
    ``chain`` (consecutive frames). With ``symmetrize`` each pair also runs as (j, i).
    """
    if graph == "complete":
        base = [(i, j) for i in range(n) for j in range(i + 1, n)]
    elif graph in ("swin", "chain"):
        k = 1 if graph == "chain" else window
        base = [(i, i + d) for i in range(n) for d in range(1, k + 1) if i + d < n]
    else:
        raise ValueError(f"unknown pair graph {graph!r}; choose complete, swin or chain")
    return base + [(j, i) for i, j in base] if symmetrize else base


@dataclass
class PairResult(PairPrediction):
    """One pair's network outputs at network resolution (numpy, float32).

    pts_i (H_i, W_i, 3) and pts_j (H_j, W_j, 3): both frames' points in camera i's frame;
    conf_i, conf_j: (H, W) point confidences (>= 1); desc_* (H, W, D) unit descriptors and
    desc_conf_* (H, W) (>= 0) only when requested.

    A :class:`~lift3d.geometry.mast3r.align.PairPrediction` (the alignment takes it as is)
    with the descriptors added.
    """

    desc_i: np.ndarray | None = None
    desc_j: np.ndarray | None = None
    desc_conf_i: np.ndarray | None = None
    desc_conf_j: np.ndarray | None = None


class PairRunner:
    """Runs ``net`` on pairs of prepared images, encoding each frame once.

    images: sequence of (3, h, w) float tensors in [-1, 1] (from ``prepare_image``; a lazy
    sequence makes each when first encoded). shapes: their (h, w), if known without them.
    """

    def __init__(self, net: Mast3rNet, images: list[torch.Tensor], batch_size: int = 4,
                 device: str | torch.device | None = None,
                 shapes: list[tuple[int, int]] | None = None):
        self.net = net
        self.images = images
        self.shapes = shapes  # network (h, w) per frame, when known without the images
        self.batch_size = max(1, int(batch_size))
        self.device = torch.device(device) if device is not None else next(
            net.parameters()).device
        self._enc: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}

    def _hw(self, i: int) -> tuple[int, int]:
        if self.shapes is not None:
            return tuple(self.shapes[i])
        return tuple(self.images[i].shape[-2:])

    @torch.inference_mode()
    def encode(self, frames: list[int]) -> None:
        """Encode the frames not yet cached, in batches of equal shape."""
        todo = [i for i in dict.fromkeys(frames) if i not in self._enc]
        for group in _group_by(todo, self._hw):
            for chunk in _chunks(group, self.batch_size):
                x = torch.stack([self.images[i] for i in chunk]).to(self.device)
                f, pos = self.net.encode(x)
                for k, i in enumerate(chunk):
                    self._enc[i] = (f[k], pos[k])

    @torch.inference_mode()
    def forward(self, ii: list[int], jj: list[int]) -> tuple[dict, dict]:
        """Decoder and heads for pairs (ii[b], jj[b]) of equal shapes; tensors on the device
        (see :meth:`Mast3rNet.forward_encoded`)."""
        self.encode(ii + jj)
        f1 = torch.stack([self._enc[i][0] for i in ii])
        p1 = torch.stack([self._enc[i][1] for i in ii])
        f2 = torch.stack([self._enc[j][0] for j in jj])
        p2 = torch.stack([self._enc[j][1] for j in jj])
        return self.net.forward_encoded(f1, p1, self._hw(ii[0]), f2, p2, self._hw(jj[0]))

    def predict(self, pairs: list[tuple[int, int]], with_desc=False,
                progress: bool = False, on_result=None) -> list[PairResult]:
        """Run every pair (batched by shape); results in the order of ``pairs``.

        with_desc: keep the descriptors (bool), or a predicate ``with_desc(i, j)`` saying for
        which pairs. progress: show a progress bar over the pairs (stderr).
        on_result: called with each PairResult as soon as its batch has run (the cache
        writes it there, so a run killed half-way keeps the pairs it finished).
        """
        keep_desc = with_desc if callable(with_desc) else (lambda i, j: bool(with_desc))
        from tqdm.auto import tqdm

        self.encode([i for p in pairs for i in p])
        out: dict[int, PairResult] = {}
        order = list(range(len(pairs)))
        key = lambda k: (self._hw(pairs[k][0]), self._hw(pairs[k][1]))  # noqa: E731
        chunks = [c for g in _group_by(order, key) for c in _chunks(g, self.batch_size)]
        with tqdm(total=len(pairs), desc="MASt3R pairs", unit="pair", disable=not progress) as bar:
            for chunk in chunks:
                ii = [pairs[k][0] for k in chunk]
                jj = [pairs[k][1] for k in chunk]
                r1, r2 = self.forward(ii, jj)
                r1 = {k: v.float().cpu().numpy() for k, v in r1.items()}
                r2 = {k: v.float().cpu().numpy() for k, v in r2.items()}
                for b, k in enumerate(chunk):
                    out[k] = PairResult(
                        ii[b], jj[b], r1["pts3d"][b], r2["pts3d_in_other_view"][b],
                        r1["conf"][b], r2["conf"][b],
                        *((r1["desc"][b], r2["desc"][b], r1["desc_conf"][b], r2["desc_conf"][b])
                          if keep_desc(ii[b], jj[b]) else ()),
                    )
                    if on_result is not None:
                        on_result(out[k])
                bar.update(len(chunk))
        return [out[k] for k in order]

    @torch.inference_mode()
    def descriptors(self, i: int, j: int) -> tuple[np.ndarray, ...]:
        """Pair (i, j)'s descriptors and their confidences, numpy float32: desc_i (H, W, D),
        desc_j (H, W, D), desc_conf_i (H, W), desc_conf_j (H, W). One decoder pass."""
        r1, r2 = self.forward([i], [j])
        return tuple(t[0].float().cpu().numpy() for t in (r1["desc"], r2["desc"],
                                                           r1["desc_conf"], r2["desc_conf"]))

    def match(self, i: int, j: int, subsample: int = 8, conf_thr: float = 0.0
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Reciprocal-NN matches of pair (i, j) at network resolution (one decoder pass, then
        :func:`match_descriptors` on the runner's device)."""
        return match_descriptors(*self.descriptors(i, j), subsample, conf_thr, self.device)


@torch.inference_mode()
def match_descriptors(desc_i: np.ndarray, desc_j: np.ndarray, dc_i: np.ndarray, dc_j: np.ndarray,
                      subsample: int = 8, conf_thr: float = 0.0, device=None
                      ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Reciprocal-NN matches between two frames' descriptors (H, W, D) with confidences (H, W).

    Returns xy_i, xy_j (N, 2) int64 network pixels and conf (N,) float32 in [0, 1):
    c / (1 + c) with c the smaller descriptor confidence of the two ends; matches with
    c < ``conf_thr`` are dropped.
    """
    dev = torch.device(device) if device is not None else torch.device("cpu")
    xy_i, xy_j = reciprocal_nns(torch.from_numpy(np.ascontiguousarray(desc_i)).to(dev),
                                torch.from_numpy(np.ascontiguousarray(desc_j)).to(dev), subsample)
    c = np.minimum(dc_i[xy_i[:, 1], xy_i[:, 0]], dc_j[xy_j[:, 1], xy_j[:, 0]])
    keep = c >= conf_thr
    return xy_i[keep], xy_j[keep], (c[keep] / (1.0 + c[keep])).astype(np.float32)


def _group_by(items: list, key) -> list[list]:
    groups: dict = {}
    for it in items:
        groups.setdefault(key(it), []).append(it)
    return list(groups.values())


def _chunks(items: list, n: int) -> list[list]:
    return [items[k : k + n] for k in range(0, len(items), n)]
