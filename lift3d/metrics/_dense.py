"""Dense indices of integer IDs (the step every metric takes before counting)."""

from __future__ import annotations

import numpy as np


def dense_index(a: np.ndarray, always: tuple[int, ...] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Sorted distinct values of an int (or bool) array (with the values ``always`` added) and each
    element's index among them: ``np.unique(a, return_inverse=True)`` for 1-D ``a``.

    Small non-negative IDs (the usual case: label maps) go through a lookup table, O(N + max):
    about 20x faster than np.unique's sort on tens of millions of pixels. Others are sorted.
    """
    a = np.asarray(a).ravel()
    if a.dtype == bool:  # as 0 / 1: a bool array would index the table as a mask
        a = a.view(np.uint8)
    extra = np.asarray(always, np.int64)
    lo = min(int(a.min()) if a.size else 0, int(extra.min()) if extra.size else 0)
    hi = max(int(a.max()) if a.size else 0, int(extra.max()) if extra.size else 0)
    if lo >= 0 and hi < 4 * a.size + 2**20:
        present = np.zeros(hi + 1, bool)
        present[a] = True
        present[extra] = True
        table = np.cumsum(present) - 1
        return np.flatnonzero(present), table[a]
    values, inv = np.unique(np.r_[extra, a.astype(np.int64)], return_inverse=True)
    return values, inv[extra.size:].ravel()
