"""Shared test fixtures.

Real data lives in ``../shared`` beside the repository (the team's machines and CI). On a
user's machine it is absent and the tests that need it skip, saying why. ``LIFT3D_SHARED``
points elsewhere if needed.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def shared_root() -> Path:
    return Path(os.environ.get("LIFT3D_SHARED", REPO.parent / "shared"))


def shared_path(*parts: str) -> Path:
    """Path under ../shared, or skip the calling test with the reason."""
    p = shared_root().joinpath(*parts)
    if not p.exists():
        pytest.skip(
            f"needs {p}: the team's real data and reference outputs beside the repository "
            "(absent on users' machines; set LIFT3D_SHARED to point elsewhere)"
        )
    return p


@pytest.fixture
def shared():
    """``shared('data', '7scenes_redkitchen_rgbd')`` -> Path, or skip."""
    return shared_path
