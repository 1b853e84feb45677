"""Fixtures of the reader tests (helpers in _io_scenes.py)."""

from __future__ import annotations

import pytest
from _io_scenes import make_scannet


@pytest.fixture
def scannet_dir(tmp_path):
    """A 4-frame ScanNet-export plane scene (frames 0, 1, 2, 10) and its ground truth."""
    root = tmp_path / "scene0000_00"
    return root, make_scannet(root)
