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


def with_settings(cfg, overrides: dict, what: str):
    """The frozen dataclass ``cfg`` with the fields in ``overrides`` replaced, each value
    coerced to the type of the field's current value where it is a number or a flag given
    as text (``--set`` passes text). An unknown name raises a :class:`Lift3DError` that
    names the valid ones."""
    import dataclasses

    from lift3d.errors import Lift3DError

    if not overrides:
        return cfg
    known = {f.name for f in dataclasses.fields(cfg)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise Lift3DError(f"unknown {what} setting {', '.join(map(repr, unknown))}",
                          fix=f"valid settings: {', '.join(sorted(known))}")
    return dataclasses.replace(cfg, **{k: coerce_setting(v, getattr(cfg, k), f"{what} {k}")
                                       for k, v in overrides.items()})


def coerce_setting(value, current, name: str):
    """``value`` as the type of ``current`` when ``value`` is text and ``current`` a bool,
    int or float (``"0.5"`` -> 0.5, ``"false"`` -> False); other values as they are. A text
    that is not such a value raises a :class:`Lift3DError` naming the setting."""
    from lift3d.errors import Lift3DError

    if not isinstance(value, str) or isinstance(current, str) or current is None:
        return value
    text = value.strip()
    try:
        if isinstance(current, bool):
            flags = {"true": True, "1": True, "yes": True, "on": True,
                     "false": False, "0": False, "no": False, "off": False}
            return flags[text.lower()]
        if isinstance(current, int):
            return int(text)
        if isinstance(current, float):
            return float(text)
    except (KeyError, ValueError):
        kind = "true or false" if isinstance(current, bool) else type(current).__name__
        raise Lift3DError(f"{name}: {value!r} is not a valid value",
                          fix=f"give {kind} (now {current!r})") from None
    return value
