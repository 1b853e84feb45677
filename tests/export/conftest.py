import sys
from pathlib import Path

import pytest

# The shared helpers (tests/_synthetic_output.py, tests/_real_output.py, _export_helpers.py)
# import by name whatever pytest's import mode.
sys.path[:0] = [str(Path(__file__).parent), str(Path(__file__).parents[1])]

from _synthetic_output import build_output  # noqa: E402


@pytest.fixture(scope="session")
def synthetic_out(tmp_path_factory):
    """A lift3d output folder of a known synthetic scene (see tests/_synthetic_output.py)."""
    return build_output(tmp_path_factory.mktemp("synthetic"))
