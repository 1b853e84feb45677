"""Shared test fixtures.

Real data lives in ``../shared`` beside the repository (the team's machines and CI). On a
user's machine it is absent and the tests that need it skip, saying why. ``LIFT3D_SHARED``
points elsewhere if needed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

# tests/_synthetic_output.py and tests/_real_output.py import by name, whatever the import mode
sys.path.insert(0, str(Path(__file__).resolve().parent))


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


@pytest.fixture(scope="session")
def synthetic_out(tmp_path_factory):
    """A lift3d output folder of a known synthetic scene (see tests/_synthetic_output.py),
    built once per session for the export and viewer tests."""
    from _synthetic_output import build_output

    return build_output(tmp_path_factory.mktemp("synthetic"))


@pytest.fixture(scope="session")
def real_out(tmp_path_factory):
    """A lift3d output folder built from real 7-Scenes frames (tests/_real_output.py), once per
    session; skips when ../shared is absent."""
    from _real_output import build_real_output

    root = shared_path("data", "7scenes_redkitchen_rgbd")
    return build_real_output(root, tmp_path_factory.mktemp("real"))


@pytest.fixture
def offline_cache(tmp_path, monkeypatch):
    """An empty user cache (returned, not created), offline, and no checkpoint named by the
    environment: what a user without weights and without internet has."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("LIFT3D_CACHE", str(cache))
    monkeypatch.setenv("LIFT3D_OFFLINE", "1")
    monkeypatch.delenv("LIFT3D_SAM_CHECKPOINT", raising=False)
    monkeypatch.delenv("LIFT3D_MAST3R_CHECKPOINT", raising=False)
    return cache
