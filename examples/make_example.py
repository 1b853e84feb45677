"""Generate the bundled example scene (a synthetic room, 30 frames at 320x240) if missing.

Run from anywhere, with lift3d installed (``pip install -e .``):
``python examples/make_example.py [--seed N]``. The scene lands in
``examples/scene<N>/`` next to this script, in the ScanNet export layout with ground truth
(see :mod:`lift3d.synth`), ready for ``lift3d segment examples/scene0 -o out/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from lift3d.synth import ensure_example


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=0, help="scene seed (default 0)")
    args = parser.parse_args()
    path = ensure_example(Path(__file__).resolve().parent / f"scene{args.seed}", seed=args.seed)
    print(f"example scene: {path}")


if __name__ == "__main__":
    main()
