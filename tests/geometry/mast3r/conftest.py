"""Fixtures for the MASt3R tests: the tiny golden configuration and its weights."""

from __future__ import annotations

import functools
import json
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from lift3d.geometry.mast3r.model import Mast3rNet

INF = float("inf")

#: The tiny configuration of tiny_config.json (golden/mast3r), repeated here so that the tests
#: that need no reference output also run without ../shared.
TINY_ARGS = dict(
    pos_embed="RoPE100", patch_embed_cls="PatchEmbedDust3R", img_size=(64, 64),
    head_type="catmlp+dpt", output_mode="pts3d+desc24", depth_mode=("exp", -INF, INF),
    conf_mode=("exp", 1, INF), enc_embed_dim=64, enc_depth=4, enc_num_heads=2,
    dec_embed_dim=48, dec_depth=10, dec_num_heads=2, two_confs=True,
    desc_conf_mode=("exp", 0, INF), landscape_only=False,
)


def golden_weight(name: str, shape: tuple) -> torch.Tensor:
    """The golden README's deterministic weight for state-dict entry ``name``."""
    n = int(np.prod(shape)) if len(shape) else 1
    raw = np.random.PCG64(zlib.crc32(name.encode())).random_raw(n)
    u = (raw >> np.uint64(11)).astype(np.float64) * 2.0**-53 * 2.0 - 1.0  # uniform [-1, 1)
    if len(shape) == 1 and "norm" in name and name.endswith("weight"):
        w = 1.0 + 0.1 * u
    elif len(shape) <= 1:
        w = 0.02 * u
    else:
        w = u / np.sqrt(int(np.prod(shape[1:])))
    return torch.from_numpy(w.reshape(shape).astype(np.float32))


def tiny_net() -> Mast3rNet:
    """The tiny model with the golden weights (built from its own state-dict shapes)."""
    net = Mast3rNet(**TINY_ARGS)
    sd = {k: golden_weight(k, tuple(v.shape)) for k, v in net.state_dict().items()}
    net.load_state_dict(sd, strict=True)
    return net.eval()


@pytest.fixture(scope="session")
def tiny():
    return tiny_net()


@functools.lru_cache(maxsize=1)
def _load_golden(root: str):
    from safetensors.torch import load_file

    cfg = json.loads((Path(root) / "tiny_config.json").read_text())
    return cfg, load_file(str(Path(root) / "tiny_io.safetensors"))


@pytest.fixture
def golden_io(shared):
    """(tiny_config dict, {name: tensor}) of golden/mast3r, or skip when absent."""
    return _load_golden(str(shared("golden", "mast3r")))
