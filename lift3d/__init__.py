"""lift3d: lift 2D segmentation into 3D that stays consistent across views.

``import lift3d`` stays light: heavy packages (torch, open3d, segment-anything) are imported
by the backends that need them.
"""

from lift3d.errors import Lift3DError
from lift3d.types import Frame, Geometry, LabelledCloud, Labels, Matches, Scene

__version__ = "0.1.0"

__all__ = ["Frame", "Geometry", "LabelledCloud", "Labels", "Lift3DError", "Matches", "Scene"]
