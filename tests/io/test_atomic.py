"""Atomic writer (lift3d/io/atomic.py): files land whole, with the mode the umask asks for."""

from __future__ import annotations

import os
import stat

import pytest

from lift3d.io.atomic import write_json, write_with


@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o002, 0o664), (0o077, 0o600)])
def test_new_files_respect_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        write_json(tmp_path / "a.json", {"x": 1})
        write_with(tmp_path / "b.bin", lambda tmp: tmp.write_bytes(b"\0"))
    finally:
        os.umask(old)
    for name in ("a.json", "b.bin"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == mode, name
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.json", "b.bin"]  # no temp left
