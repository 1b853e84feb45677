"""Shape checks that run at public entry points (and raise with expected vs actual)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from lift3d.errors import ShapeError


def check_shape(name: str, arr: np.ndarray, shape: Sequence[int | None], dtype=None) -> None:
    """Raise :class:`ShapeError` unless ``arr`` has ``shape`` (``None`` = any size) and dtype.

    ``dtype`` may be a numpy dtype, or a numpy abstract type such as ``np.floating``.
    """
    actual = tuple(np.shape(arr))
    if len(actual) != len(shape) or any(s is not None and s != a for s, a in zip(shape, actual)):
        want = "(" + ", ".join("*" if s is None else str(s) for s in shape) + ")"
        raise ShapeError(f"{name}: expected shape {want}, got {actual}")
    if dtype is not None:
        if not np.issubdtype(arr.dtype, dtype):
            want = getattr(dtype, "__name__", str(dtype))
            raise ShapeError(f"{name}: expected dtype {want}, got {arr.dtype}")
