"""MASt3R geometry backend: lift3d's own MASt3R network, pair inference, matches, alignment.

Public API: :class:`Mast3rGeometry` (the GeometrySource), :class:`Mast3rConfig`,
:class:`Mast3rNet` (the network; ``from_checkpoint`` / ``from_pretrained``).
"""

from lift3d.geometry.mast3r.backend import Mast3rConfig, Mast3rGeometry
from lift3d.geometry.mast3r.model import Mast3rNet

__all__ = ["Mast3rConfig", "Mast3rGeometry", "Mast3rNet"]
