"""Tracklet linking (lift3d/associate/tracklets.py) on generated 2D videos whose true objects
are known, and end to end through `lift3d segment --associate tracklets` on real DAVIS frames.

The generated video: a static textured grey-green background, a textured red disk moving right
and a static blue square. The ID maps stand in for a tracker's: they follow the true masks, and
each test breaks or splits an object's ID the way the tracker does on DAVIS.
"""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from lift3d.associate import AssociateConfig, Association, build_associator
from lift3d.associate.tracklets import TrackletAssociator
from lift3d.associate.tracklets_config import TrackletConfig

H, W, N = 96, 128, 10
BG, DISK, SQUARE = 1, 5, 3
SPEED = 3  # pixels per frame


def _texture(rng: np.random.Generator, base: tuple[int, int, int], amp: float) -> np.ndarray:
    """(H, W, 3) float: a colour with smooth noise, so optical flow has texture to follow."""
    noise = cv2.GaussianBlur(rng.normal(0, 1, (H, W, 3)).astype(np.float32), (0, 0), 2.0)
    return np.asarray(base, np.float32) + amp * noise / noise.std()


def _video(disk_colour=(200, 40, 40), swap_at: int | None = None, swap_colour=(40, 60, 210),
           bg_colour=(110, 130, 100)):
    """Frames and the true masks of the disk (a list per frame) and the square. With
    ``swap_at``, from that frame on a differently coloured disk replaces the first one."""
    rng = np.random.default_rng(0)
    bg = _texture(rng, bg_colour, 25)
    disk_tex = _texture(rng, disk_colour, 20)
    swap_tex = _texture(rng, swap_colour, 20)
    ys, xs = np.mgrid[0:H, 0:W]
    square = (ys >= 60) & (ys < 84) & (xs >= 90) & (xs < 114)
    frames, disks = [], []
    for t in range(N):
        cx = 25 + SPEED * t
        disk = (xs - cx) ** 2 + (ys - 35) ** 2 <= 14 ** 2
        img = bg.copy()
        tex = swap_tex if swap_at is not None and t >= swap_at else disk_tex
        img[disk] = np.roll(tex, SPEED * t, axis=1)[disk]  # the texture moves with the disk
        img[square] = (40, 60, 210)
        frames.append(np.clip(img, 0, 255).astype(np.uint8))
        disks.append(disk)
    return frames, disks, square


def _labels(disk: np.ndarray, square: np.ndarray, disk_id) -> np.ndarray:
    lab = np.full((H, W), BG, np.int32)
    lab[square] = SQUARE
    if callable(disk_id):
        ys, xs = np.nonzero(disk)
        lab[ys, xs] = disk_id(xs)
    else:
        lab[disk] = disk_id
    return lab


def _solve(frames, label_maps, cfg: TrackletConfig | None = None) -> Association:
    assoc = TrackletAssociator(cfg)
    for t, (img, lab) in enumerate(zip(frames, label_maps)):
        assoc.add_frame(t, img, lab, None)
    return assoc.solve(None)


def test_a_broken_id_is_linked():
    frames, disks, square = _video()
    labels = [_labels(d, square, DISK if t < 5 else 9) for t, d in enumerate(disks)]
    result = _solve(frames, labels)
    assert result.mapping == {9: DISK}
    (merge,) = result.merges
    assert merge.ids == [DISK, 9] and merge.into == DISK
    assert merge.reason == "handover"
    assert merge.evidence["steps"][0]["handover"] > 0.8


def test_parts_moving_together_are_merged_but_not_into_the_background():
    frames, disks, square = _video()
    centre = [25 + SPEED * t for t in range(N)]
    labels = [_labels(d, square, lambda xs, c=c: np.where(xs < c, DISK, 6))
              for d, c in zip(disks, centre)]
    result = _solve(frames, labels)
    assert result.mapping == {6: DISK}
    assert result.merges[0].reason == "motion"


def test_motion_tells_apart_what_colour_cannot():
    """A red disk moving over a static red background: alike in colour, the flow across their
    boundary differs far more than inside either, so they stay apart (with the background-size
    cap lifted, so that motion alone decides; without the motion test they merge)."""
    frames, disks, square = _video(bg_colour=(190, 50, 45))
    labels = [_labels(d, square, DISK) for d in disks]
    no_cap = TrackletConfig(max_group_share=1.0)
    assert _solve(frames, labels, no_cap).mapping == {}
    blind = TrackletConfig(max_group_share=1.0, max_flow_contrast=1e9, max_flow_diff=1e9)
    assert _solve(frames, labels, blind).mapping == {DISK: BG}


def test_two_different_objects_are_not_linked():
    """A red disk ends and a blue one is born where it would be: same place, same motion,
    different appearance: two objects."""
    frames, disks, square = _video(swap_at=5)
    labels = [_labels(d, square, DISK if t < 5 else 9) for t, d in enumerate(disks)]
    result = _solve(frames, labels)
    assert result.mapping == {}


def test_a_gap_is_bridged_where_the_flow_says():
    """The disk's ID vanishes for two frames (unlabelled) and a new ID is born where the
    disk's last mask, moved on by its flow, lands."""
    frames, disks, square = _video()
    labels = []
    for t, d in enumerate(disks):
        lab = _labels(d, square, DISK if t < 4 else 9)
        if t in (4, 5):
            lab[d] = 0
        labels.append(lab)
    result = _solve(frames, labels)
    assert result.mapping == {9: DISK}
    assert result.merges[0].reason == "gap"


def test_without_frames_nothing_merges():
    assert TrackletAssociator().solve(None).mapping == {}


def test_auto_links_tracklets_on_2d_geometry():
    assert isinstance(build_associator(AssociateConfig(method="auto"), "2d"), TrackletAssociator)
    assert isinstance(build_associator(AssociateConfig(method="tracklets"), "3d"),
                      TrackletAssociator)


@pytest.fixture(scope="module")
def davis_clip(tmp_path_factory):
    """The first frames of DAVIS dog, downscaled, as an image folder (skips without
    ../shared)."""
    from tests.conftest import shared_path

    src = shared_path("data", "davis2016_480p", "JPEGImages", "480p", "dog")
    out = tmp_path_factory.mktemp("dog")
    for p in sorted(src.glob("*.jpg"))[:10]:
        img = cv2.imread(str(p))
        cv2.imwrite(str(out / p.name), cv2.resize(img, (214, 120), interpolation=cv2.INTER_AREA))
    return out


def test_pipeline_writes_merged_labels_and_reports_merges(davis_clip, tmp_path):
    from typer.testing import CliRunner

    from lift3d.cli import app
    from lift3d.io.outputs import read_label_png

    out = tmp_path / "out"
    res = CliRunner().invoke(app, ["segment", str(davis_clip), "-o", str(out), "--geometry",
                                   "flow", "--segmenter", "classical", "--associate",
                                   "tracklets", "--quiet"])
    assert res.exit_code == 0, res.output
    report = json.loads((out / "report.json").read_text())
    assoc = report["association"]
    assert assoc["method"] == "tracklets" and assoc["merges"], assoc
    cached = Association.from_json(json.loads((out / "cache" / "association.json").read_text()))
    assert cached.mapping
    seen = set()
    for p in sorted((out / "labels").glob("*.png")):
        seen.update(np.unique(read_label_png(p)).tolist())
    assert not seen & set(cached.mapping), "merged-away IDs are still in labels/"
    assert report["n_ids"] == len(seen - {0})
    for m in assoc["merges"]:
        assert m["into"] == min(m["ids"]) and m["reason"]
