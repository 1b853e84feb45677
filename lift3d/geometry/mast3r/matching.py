"""Reciprocal nearest-neighbour matching of MASt3R's dense descriptors.

Matches start from a subsampled grid of view-1 pixels and follow nearest neighbours back
and forth (1 -> 2 -> 1 -> ...) until each chain stops moving: a chain has converged when a
pixel pair is each other's nearest neighbour. Chains still moving after ``max_iter`` rounds
are dropped. Nearest means largest dot product of the (unit) descriptors.
"""

from __future__ import annotations

import numpy as np
import torch


def nn_dot(queries: torch.Tensor, db: torch.Tensor, max_elems: int = 1 << 24) -> torch.Tensor:
    """Index of the largest dot product in ``db`` for each query.

    queries: (M, D); db: (K, D) -> (M,) int64. Works in blocks of queries so that no more
    than ``max_elems`` similarities are held at once.
    """
    if queries.shape[0] == 0:
        return torch.zeros(0, dtype=torch.int64, device=db.device)
    step = max(1, max_elems // max(1, db.shape[0]))
    out = [(q @ db.T).argmax(dim=1) for q in queries.split(step)]
    return torch.cat(out)


def reciprocal_nns(
    desc1: torch.Tensor,
    desc2: torch.Tensor,
    subsample: int = 8,
    max_iter: int = 10,
) -> tuple[np.ndarray, np.ndarray]:
    """Reciprocal nearest neighbours between two descriptor maps.

    desc1: (H1, W1, D), desc2: (H2, W2, D) float tensors (unit descriptors).
    subsample: seeds are view-1 pixels on the grid ``(S//2 + S*i, S//2 + S*j)``.
    Returns xy1, xy2: (N, 2) int64 integer pixel coordinates (x, y) of the matched pixels,
    each pair once, sorted by view-1 then view-2 flat index; each pair are mutual nearest
    neighbours.
    """
    H1, W1, D = desc1.shape
    H2, W2, _ = desc2.shape
    p1 = desc1.reshape(-1, D)
    p2 = desc2.reshape(-1, D)
    s = subsample
    ys, xs = np.mgrid[s // 2 : H1 : s, s // 2 : W1 : s].reshape(2, -1)
    idx1 = torch.from_numpy(np.unique(xs + W1 * ys)).to(p1.device)  # flat view-1 indices
    idx2 = torch.full_like(idx1, -1)
    active = torch.ones(len(idx1), dtype=torch.bool, device=p1.device)
    for _ in range(max_iter):
        sel = active.nonzero().squeeze(1)
        new2 = nn_dot(p1[idx1[sel]], p2)
        moved2 = new2 != idx2[sel]
        idx2[sel] = new2
        sel = sel[moved2]  # a chain whose view-2 end did not move is reciprocal: done
        new1 = nn_dot(p2[idx2[sel]], p1)
        moved1 = new1 != idx1[sel]
        idx1[sel] = new1
        active[:] = False
        active[sel[moved1]] = True
        if not active.any():
            break
    done = ~active
    # several seeds may end in the same pair: keep each pair once, sorted by (idx1, idx2)
    pairs = np.unique(torch.stack([idx1[done], idx2[done]], 1).cpu().numpy(), axis=0)
    i1, i2 = pairs[:, 0], pairs[:, 1]
    xy1 = np.stack([i1 % W1, i1 // W1], axis=1)
    xy2 = np.stack([i2 % W2, i2 // W2], axis=1)
    return xy1, xy2
