"""Scene readers (auto-detected layouts) and the writers of lift3d's output folder.

``load_scene(path)`` reads a ScanNet export, a 7-Scenes sequence, a TUM RGB-D sequence, a
DAVIS sequence or a plain folder of images into a :class:`~lift3d.types.Scene`;
``detect_layout(path)`` says which one a folder is.
"""

from lift3d.io.davis import list_davis_sequences, load_davis_sequence
from lift3d.io.detect import LAYOUTS, detect_layout, load_scene

__all__ = ["LAYOUTS", "detect_layout", "list_davis_sequences", "load_davis_sequence",
           "load_scene"]
