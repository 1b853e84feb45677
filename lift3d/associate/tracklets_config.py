"""Settings of the 2D tracklet linker (lift3d/associate/tracklets.py)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrackletConfig:
    """Linking tracklets on the 2D (flow) path. Distances and flows are in pixels of the
    working resolution (the frame downscaled to ``work_side``); appearance similarities are
    Bhattacharyya coefficients of Lab colour histograms (1 = same distribution)."""

    work_side: int = 320
    """Frames and labels are downscaled so their longer side is at most this (pixels) before
    any statistic is taken: the linker costs a few per cent of the tracker's time."""
    flow_preset: str = "medium"
    """DIS optical-flow preset between consecutive downscaled frames: ultrafast | fast | medium."""
    hist_bins: int = 8
    """Lab colour histogram bins per channel (a joint histogram of hist_bins**3 bins)."""
    boundary_offset: int = 2
    """Pixels between the two samples compared across an ID boundary (flow is smooth at a
    boundary; samples a little inside each side see each side's own motion)."""
    max_flow_diff: float = 1.0
    """Two touching groups may merge only if their flows differ by at most this much across
    their shared boundary (mean over boundary samples and frames, pixels per frame): parts
    of one object move together, an object and what is behind it do not."""
    max_flow_contrast: float = 1.5
    """...and their boundary's flow difference is at most this many times the flow difference
    between samples inside them (plus ``flow_noise``): an articulated or turning object moves
    unevenly inside too, so what counts is a boundary that differs more than the inside."""
    flow_noise: float = 0.02
    """Flow differences (pixels per frame) below this are noise, not motion."""
    min_appearance: float = 0.6
    """Two groups merge only if their pooled colour histograms are at least this similar."""
    min_handover: float = 0.5
    """Two groups that look alike merge, whatever their boundary's motion, when an ID of one
    ends and at least this share of its last mask is carried by the flow into an ID of the
    other, or an ID of one is born with at least this share of its first mask carried there
    from an ID of the other (a handover: the tracker dropped an ID and re-seeded the object
    under a new one), or they are gap-linked with this overlap."""
    max_group_share: float = 0.25
    """No merge may make a group cover more than this share of the frame (its pixels over
    the frames from its first to its last, per frame): an object is not most of the picture,
    and a chain of merges must not carry the object into the background."""
    max_gap: int = 8
    """Frames an ID may be absent between its end and another's birth to be linked."""
    min_gap_overlap: float = 0.5
    """A gap link needs the ended ID's last mask, moved on by its last flow, to cover at least
    this share of the smaller of it and the born ID's first mask."""
