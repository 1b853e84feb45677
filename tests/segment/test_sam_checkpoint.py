"""Finding, verifying and loading SAM checkpoints: every failure is one clear CheckpointError."""

from __future__ import annotations

import pytest
import torch

from lift3d.errors import CheckpointError
from lift3d.segment.sam_checkpoint import (
    MODEL_TYPES,
    OFFICIAL_FILES,
    arch_signature,
    find_sam_checkpoint,
    load_sam,
    write_random_checkpoint,
)


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    return write_random_checkpoint(tmp_path_factory.mktemp("sam") / "tiny.pth", "tiny", seed=0)


@pytest.mark.parametrize("model_type", ["vit_h", "vit_l", "vit_b"])
def test_official_architectures_are_segment_anythings(model_type):
    """Names and shapes equal those of segment-anything's own builders (the official
    checkpoints' layout), compared on the meta device: no memory, no weights."""
    from segment_anything import sam_model_registry

    with torch.device("meta"):
        ref = sam_model_registry[model_type]().state_dict()
    assert arch_signature(model_type) == {k: tuple(v.shape) for k, v in ref.items()}


def test_architectures_are_told_apart_by_their_shapes():
    sigs = [arch_signature(t) for t in MODEL_TYPES]
    assert all(a != b for i, a in enumerate(sigs) for b in sigs[i + 1 :])


def test_tiny_checkpoint_round_trips(tiny_ckpt):
    model, kind = load_sam(tiny_ckpt)
    assert kind == "tiny"
    saved = torch.load(tiny_ckpt, map_location="cpu", weights_only=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in saved.items())
    assert torch.allclose(model.pixel_mean.flatten(), torch.tensor([123.675, 116.28, 103.53]))
    assert not any(t.is_meta for t in [*model.parameters(), *model.buffers()])
    assert not model.training


def test_lookup_order_explicit_env_cache(tiny_ckpt, offline_cache, tmp_path, monkeypatch):
    assert find_sam_checkpoint(tiny_ckpt, "tiny") == tiny_ckpt
    monkeypatch.setenv("LIFT3D_SAM_CHECKPOINT", str(tiny_ckpt))
    assert find_sam_checkpoint(None, "auto") == tiny_ckpt
    monkeypatch.delenv("LIFT3D_SAM_CHECKPOINT")
    offline_cache.mkdir()
    cached = offline_cache / OFFICIAL_FILES["vit_b"].filename
    cached.write_bytes(b"x")
    assert find_sam_checkpoint(None, "auto") == cached  # any official file in the cache
    assert find_sam_checkpoint(None, "vit_b") == cached


def test_offline_and_missing_says_which_file_goes_where(offline_cache):
    with pytest.raises(CheckpointError) as err:
        find_sam_checkpoint(None, "auto")
    msg = str(err.value)
    assert "sam_vit_h_4b8939.pth" in msg
    assert str(offline_cache / "sam_vit_h_4b8939.pth") in msg
    assert "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth" in msg
    assert "LIFT3D_SAM_CHECKPOINT" in msg


def test_explicit_path_that_does_not_exist(offline_cache, tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        find_sam_checkpoint(tmp_path / "nope.pth", "auto")


def test_tiny_has_no_download(offline_cache):
    with pytest.raises(CheckpointError, match="no released weights"):
        find_sam_checkpoint(None, "tiny")


def test_truncated_file_is_refused(tiny_ckpt, tmp_path):
    bad = tmp_path / "cut.pth"
    bad.write_bytes(tiny_ckpt.read_bytes()[:5000])
    with pytest.raises(CheckpointError, match="cannot be read") as err:
        load_sam(bad)
    assert str(bad) in str(err.value)


def test_official_name_with_wrong_size_is_refused_before_loading(tiny_ckpt, tmp_path):
    bad = tmp_path / "sam_vit_b_01ec64.pth"
    bad.write_bytes(tiny_ckpt.read_bytes())
    with pytest.raises(CheckpointError, match="bytes.*incomplete or corrupt") as err:
        load_sam(bad)
    assert "download it again from https://dl.fbaipublicfiles.com" in str(err.value)


def test_official_name_with_right_size_but_wrong_bytes_is_refused(tmp_path):
    bad = tmp_path / "sam_vit_b_01ec64.pth"
    with open(bad, "wb") as f:  # sparse: takes no disk space
        f.truncate(OFFICIAL_FILES["vit_b"].size)
    with pytest.raises(CheckpointError, match="SHA-256"):
        load_sam(bad)


def test_wrong_model_type_names_the_right_one(tiny_ckpt):
    with pytest.raises(CheckpointError, match="holds a SAM tiny model, not vit_b") as err:
        load_sam(tiny_ckpt, "vit_b")
    assert "--sam-model-type tiny" in str(err.value)


def test_foreign_state_dict_is_refused_with_the_difference(tiny_ckpt, tmp_path):
    state = torch.load(tiny_ckpt, weights_only=True)
    state["mask_decoder.iou_token.weight"] = torch.zeros(1, 65)
    del state["prompt_encoder.no_mask_embed.weight"]
    bad = tmp_path / "edited.pth"
    torch.save(state, bad)
    with pytest.raises(CheckpointError) as err:
        load_sam(bad, "tiny")
    msg = str(err.value)
    assert "1 missing: prompt_encoder.no_mask_embed.weight" in msg
    assert "mask_decoder.iou_token.weight (1, 65) != (1, 64)" in msg
    with pytest.raises(CheckpointError, match="matches none of the SAM architectures"):
        load_sam(bad)


def test_not_a_state_dict(tmp_path):
    bad = tmp_path / "list.pth"
    torch.save([torch.zeros(2)], bad)
    with pytest.raises(CheckpointError, match="not a SAM state dict"):
        load_sam(bad)


def test_unknown_model_type(tiny_ckpt):
    with pytest.raises(CheckpointError, match="unknown SAM model type 'vit_x'"):
        load_sam(tiny_ckpt, "vit_x")
