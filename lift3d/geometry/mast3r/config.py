"""Settings of the MASt3R backend (no torch import: the configuration tree reads it)."""

from __future__ import annotations

from dataclasses import dataclass


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
        from lift3d.geometry.mast3r.inference import make_pairs

        return make_pairs(n, graph, self.window, self.symmetrize)
