"""Mast3rNet: exact checkpoint layout, and parity with the official outputs (golden/mast3r)."""

from __future__ import annotations

import json

import pytest
import torch

from lift3d.geometry.mast3r.model import MAST3R_VITL_512_ARGS, Mast3rNet

from .conftest import TINY_ARGS

OUTPUTS = {
    "pred1": ("pts3d", "conf", "desc", "desc_conf"),
    "pred2": ("pts3d_in_other_view", "conf", "desc", "desc_conf"),
}


def _norm_args(args: dict) -> dict:
    return {k: list(v) if isinstance(v, (list, tuple)) else v for k, v in args.items()}


def test_full_architecture_matches_released_checkpoint_manifest(shared):
    manifest = json.loads((shared("golden", "mast3r") / "full_config_manifest.json").read_text())
    args = dict(manifest["model_args"])
    assert _norm_args({**args, "patch_embed_cls": "PatchEmbedDust3R"}) == _norm_args(
        MAST3R_VITL_512_ARGS)
    with torch.device("meta"):
        net = Mast3rNet(**args)  # as released: ManyAR_PatchEmbed, same keys
    got = {k: list(v.shape) for k, v in net.state_dict().items()}
    assert got == manifest["state_dict_shapes"]
    assert list(got) == list(manifest["state_dict_shapes"])  # same order, key for key
    n_params = sum(p.numel() for p in net.parameters())  # shared layer_rn counted once
    assert n_params == manifest["n_params"]


def test_tiny_architecture_matches_golden_keys(golden_io):
    cfg, _ = golden_io
    assert _norm_args(cfg["model_args"]) == _norm_args(TINY_ARGS)
    with torch.device("meta"):
        net = Mast3rNet(**cfg["model_args"])
    assert {k: list(v.shape) for k, v in net.state_dict().items()} == cfg["state_dict_keys"]


@pytest.mark.parametrize("case", ["landscape", "portrait"])
@pytest.mark.parametrize("impl", ["sdpa", "torch"])
def test_outputs_match_official(tiny, golden_io, case, impl):
    _, io = golden_io
    tiny.set_attention(impl)
    try:
        with torch.no_grad():
            pred1, pred2 = tiny(io[f"{case}.view1_img"], io[f"{case}.view2_img"])
    finally:
        tiny.set_attention("sdpa")
    for view, pred in (("pred1", pred1), ("pred2", pred2)):
        assert set(pred) == set(OUTPUTS[view])
        for name in OUTPUTS[view]:
            ref = io[f"{case}.{view}.{name}"]
            assert pred[name].shape == ref.shape, name
            rel = (pred[name] - ref).abs().max() / ref.abs().max()
            assert rel < 1e-4, f"{case} {view}.{name}: relative error {rel:.2e}"


def test_views_of_different_shapes_run_and_swap_consistently(tiny):
    g = torch.Generator().manual_seed(0)
    a = torch.rand(1, 3, 48, 64, generator=g) * 2 - 1
    b = torch.rand(1, 3, 64, 48, generator=g) * 2 - 1
    with torch.no_grad():
        p1, p2 = tiny(a, b)
        # encoding one view alone gives the tokens of the joint pass
        fa, _ = tiny.encode(a)
        fab, _ = tiny.encode(torch.cat([a, a]))
    assert p1["pts3d"].shape == (1, 48, 64, 3)
    assert p2["pts3d_in_other_view"].shape == (1, 64, 48, 3)
    assert torch.allclose(fa, fab[:1], atol=1e-6)
    assert (p1["conf"] >= 1).all() and (p2["desc_conf"] >= 0).all()
    assert torch.allclose(p1["desc"].norm(dim=-1), torch.ones(1, 48, 64), atol=1e-5)


def test_rejects_unsupported_configurations():
    with pytest.raises(ValueError, match="landscape_only"):
        Mast3rNet(**{**TINY_ARGS, "landscape_only": True})
    with pytest.raises(ValueError, match="multiple of the patch size"):
        Mast3rNet(**TINY_ARGS).encode(torch.zeros(1, 3, 40, 64))
