import sys
from pathlib import Path

# this folder's helpers (e.g. _export_helpers.py) import by name whatever pytest's import mode;
# the shared fixtures (synthetic_out, real_out) are in tests/conftest.py
sys.path.insert(0, str(Path(__file__).parent))
