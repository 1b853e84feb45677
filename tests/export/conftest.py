import pytest
from _synthetic_output import build_output


@pytest.fixture(scope="session")
def synthetic_out(tmp_path_factory):
    """A lift3d output folder of a known synthetic scene (see tests/_synthetic_output.py)."""
    return build_output(tmp_path_factory.mktemp("synthetic"))
