"""MASt3R geometry backend: lift3d's own MASt3R network, pair inference, matches, alignment.

Public API: :class:`Mast3rGeometry` (the GeometrySource), :class:`Mast3rConfig`,
:class:`Mast3rNet` (the network; ``from_checkpoint`` / ``from_pretrained``). Imported on
first use, so reading :class:`Mast3rConfig` (``lift3d.geometry.mast3r.config``) needs no torch.
"""

from lift3d.geometry.mast3r.config import Mast3rConfig

__all__ = ["Mast3rConfig", "Mast3rGeometry", "Mast3rNet"]


def __getattr__(name: str):
    if name == "Mast3rGeometry":
        from lift3d.geometry.mast3r.backend import Mast3rGeometry

        return Mast3rGeometry
    if name == "Mast3rNet":
        from lift3d.geometry.mast3r.model import Mast3rNet

        return Mast3rNet
    raise AttributeError(name)
