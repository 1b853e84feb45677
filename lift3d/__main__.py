"""`python -m lift3d` = the `lift3d` command."""

from lift3d.cli import main

main()
