"""The tracker end to end with the real SAM architecture (tiny config, random weights) on a
generated scene: the path a user's checkpoint takes, one image embedding per frame."""

from __future__ import annotations

import numpy as np
import pytest

from lift3d.geometry import build_geometry
from lift3d.io import load_scene
from lift3d.segment import build_segmenter
from lift3d.track import TrackConfig, track_sequence

pytest.importorskip("segment_anything")

# random weights predict low IoU: accept every mask so the tracker has something to carry
PERMISSIVE = dict(pred_iou_thresh=0.0, stability_score_thresh=0.0, points_per_side=8)


@pytest.fixture(scope="module")
def scene_and_ckpt(tmp_path_factory):
    from lift3d.segment.sam_checkpoint import write_random_checkpoint
    from lift3d.synth import make_scene

    root = tmp_path_factory.mktemp("sam")
    scene = make_scene(root / "scene", seed=1, n_frames=5, width=160, height=120)
    return scene, write_random_checkpoint(root / "tiny.pth", "tiny")


def test_tracker_runs_with_sam_one_embedding_per_frame(scene_and_ckpt):
    scene_dir, ckpt = scene_and_ckpt
    scene = load_scene(scene_dir)
    geometry = build_geometry("rgbd")(scene)
    sam = build_segmenter("sam", checkpoint=ckpt, device="cpu", **PERMISSIVE)
    labels = track_sequence([f.image for f in scene.frames], geometry, sam, TrackConfig())
    assert len(labels) == 5
    assert all(lab.shape == (120, 160) and lab.dtype == np.int32 for lab in labels)
    assert (labels[0] > 0).mean() > 0.2
    # automatic masks and every prompt of a frame share that frame's single embedding
    assert sam.n_embeddings == 5
    # (sam-reseed) frame 0 decodes the whole 8 x 8 grid; re-seeding only the unmasked points
    assert 64 <= sam.n_grid_points < 64 * 5
    # at least one ID lives from the first frame to the next through prompts
    assert set(np.unique(labels[0])) & set(np.unique(labels[1])) - {0}


def test_cli_segment_with_a_sam_checkpoint(scene_and_ckpt, tmp_path):
    from typer.testing import CliRunner

    from lift3d.cli import app

    scene_dir, ckpt = scene_and_ckpt
    out = tmp_path / "out"
    result = CliRunner().invoke(app, ["segment", str(scene_dir), "-o", str(out), "-q",
                                      "--segmenter", "sam", "--sam-checkpoint", str(ckpt),
                                      "--device", "cpu", "--max-frames", "2"])
    assert result.exit_code == 0, result.output
    assert len(list((out / "labels").glob("*.png"))) == 2
