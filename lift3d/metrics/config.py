"""The metric's configuration: the one place that holds (and resolves) the radius of H."""

from __future__ import annotations

from dataclasses import dataclass

BLOCK_POINTS = 4_000_000
"""Default query points per spatial block of exact H (``MetricConfig.block_points``)."""


@dataclass(frozen=True)
class MetricConfig:
    """How `lift3d segment` measures H(I,M) (eq. 6) of its ID maps."""

    eps: float | None = None
    """Radius of H in scene units (pixels for flow); None = eps_rel x scene scale (3D) or
    flow_eps_px (2D)."""
    eps_rel: float = 0.01
    """Radius of H relative to the scene scale (median depth of the first frame), when eps is
    None."""
    flow_eps_px: float = 1.0
    """Radius of H in pixels for 2D (flow) geometry, when eps is None."""
    max_frames: int | None = None
    """Measure H on at most this many evenly spaced frames (None = every frame, exact over
    the whole sequence). A documented restriction for quick looks at long scenes; the report
    records which frames were used."""
    block_points: int = BLOCK_POINTS
    """Query points per spatial block of exact H on a 3D geometry: memory is bounded by about
    100 bytes x this many points (plus ~30 bytes per point spilled to the temporary folder)
    whatever the number of frames; H is the same for any value."""

    def radius(self, geometry) -> tuple[float, str]:
        """(eps, units) of H for this geometry: scene units for 3D, pixels for 2D."""
        if geometry.kind == "3d":
            if self.eps is not None:
                return float(self.eps), "scene units"
            from lift3d.geometry.voxels import scene_scale

            return self.eps_rel * max(scene_scale(geometry), 1e-9), "scene units"
        return float(self.eps if self.eps is not None else self.flow_eps_px), "pixels"

    def frames(self, n: int) -> list[int]:
        """The frame indices H is measured on."""
        import numpy as np

        if self.max_frames is None or self.max_frames >= n:
            return list(range(n))
        return sorted(set(np.linspace(0, n - 1, self.max_frames).round().astype(int).tolist()))
