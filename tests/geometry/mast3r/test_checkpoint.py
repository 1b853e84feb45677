"""Checkpoint files: both published forms load strictly through the user's path; broken,
mismatched or missing files give a CheckpointError that says what to do."""

from __future__ import annotations

import argparse
import os
import subprocess

import pytest
import torch
from safetensors.torch import save_file, save_model

from lift3d.errors import CheckpointError
from lift3d.geometry.mast3r.checkpoint import (
    MAST3R_FILENAME,
    MAST3R_SAFETENSORS_FILENAME,
    MAST3R_URLS,
    read_state_dict,
)
from lift3d.geometry.mast3r.model import Mast3rNet

from .conftest import TINY_ARGS


def _official_pth(net: Mast3rNet, path):
    args = argparse.Namespace(model="AsymmetricMASt3R(enc_depth=4, ...)", lr=1e-4, epochs=10)
    torch.save({"model": net.state_dict(), "args": args, "epoch": 9}, path)


def _same_weights(a: torch.nn.Module, b: torch.nn.Module) -> bool:
    sa, sb = a.state_dict(), b.state_dict()
    return sa.keys() == sb.keys() and all(torch.equal(sa[k], sb[k]) for k in sa)


def test_official_pth_loads_from_path_env_and_cache(tiny, offline_cache, tmp_path, monkeypatch):
    path = tmp_path / "mine.pth"
    _official_pth(tiny, path)
    assert _same_weights(Mast3rNet.from_pretrained(path, **TINY_ARGS), tiny)
    monkeypatch.setenv("LIFT3D_MAST3R_CHECKPOINT", str(path))
    assert _same_weights(Mast3rNet.from_pretrained(**TINY_ARGS), tiny)
    monkeypatch.delenv("LIFT3D_MAST3R_CHECKPOINT")
    offline_cache.mkdir()
    os.replace(path, offline_cache / MAST3R_FILENAME)
    net = Mast3rNet.from_pretrained(**TINY_ARGS)
    assert _same_weights(net, tiny) and not net.training


def test_hub_safetensors_loads_with_shared_tensors_stored_once(tiny, offline_cache, tmp_path):
    offline_cache.mkdir()
    path = offline_cache / MAST3R_SAFETENSORS_FILENAME
    save_model(tiny, str(path))  # what the hub's PyTorchModelHubMixin writes
    assert len(read_state_dict(path)) < len(tiny.state_dict())  # aliases dropped
    assert _same_weights(Mast3rNet.from_pretrained(**TINY_ARGS), tiny)
    # every key present (each tensor its own copy) loads too, under any file name
    full = tmp_path / "model.bin"
    save_file({k: v.clone() for k, v in tiny.state_dict().items()}, str(full))
    assert _same_weights(Mast3rNet.from_checkpoint(full, **TINY_ARGS), tiny)


class TrainingState:
    """Stands for any class a training script pickles beside the weights."""

    def __init__(self, step):
        self.step = step


def test_other_pickled_objects_are_read_inertly(tiny, tmp_path):
    path = tmp_path / "extra.pth"
    torch.save({"model": tiny.state_dict(), "state": TrainingState(3)}, path)
    assert _same_weights(Mast3rNet.from_checkpoint(path, **TINY_ARGS), tiny)


@pytest.mark.parametrize("fn", [os.system, subprocess.call, eval])
def test_pickled_code_is_never_run(tiny, tmp_path, fn):
    marker = tmp_path / "ran"
    cmd = f"open({str(marker)!r}, 'w')" if fn is eval else f"touch {marker}"

    class Evil:
        def __reduce__(self):
            return (fn, (cmd,) if fn is not subprocess.call else (cmd.split(),))

    path = tmp_path / "evil.pth"
    torch.save({"model": tiny.state_dict(), "args": Evil()}, path)
    try:
        net = Mast3rNet.from_checkpoint(path, **TINY_ARGS)
    except CheckpointError:
        net = None
    assert not marker.exists()
    assert net is None or _same_weights(net, tiny)


def test_corrupt_files_raise_checkpoint_error(tiny, tmp_path):
    good = tmp_path / "good.pth"
    _official_pth(tiny, good)
    save_model(tiny, str(tmp_path / "good.safetensors"))
    cases = {
        "truncated.pth": good.read_bytes()[:4000],
        "truncated.safetensors": (tmp_path / "good.safetensors").read_bytes()[:3000],
        "noise.pth": os.urandom(2048),
        "empty.pth": b"",
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(CheckpointError) as err:
            Mast3rNet.from_checkpoint(p, **TINY_ARGS)
        assert name in str(err.value)
    notsd = tmp_path / "notsd.pth"
    torch.save({"weights": [1, 2, 3]}, notsd)
    with pytest.raises(CheckpointError, match="no state dict"):
        Mast3rNet.from_checkpoint(notsd, **TINY_ARGS)


def test_mismatched_checkpoints_raise_checkpoint_error(tiny, tmp_path):
    path = tmp_path / "tiny.pth"
    _official_pth(tiny, path)
    with pytest.raises(CheckpointError, match="wrong shape") as err:
        Mast3rNet.from_checkpoint(path)  # the released ViT-L configuration
    assert MAST3R_FILENAME in str(err.value)
    sd = dict(tiny.state_dict())
    del sd["dec_norm.weight"]
    sd["extra.weight"] = torch.zeros(3)
    torch.save({"model": sd}, path)
    with pytest.raises(CheckpointError, match=r"1 missing \(e.g. dec_norm.weight\).*"
                                              r"1 unexpected \(e.g. extra.weight\)"):
        Mast3rNet.from_checkpoint(path, **TINY_ARGS)


def test_missing_offline_names_the_file_and_the_place(offline_cache):
    with pytest.raises(CheckpointError) as err:
        Mast3rNet.from_pretrained(**TINY_ARGS)
    msg = str(err.value)
    assert MAST3R_FILENAME in msg and str(offline_cache / MAST3R_FILENAME) in msg
    assert MAST3R_URLS[0] in msg
    with pytest.raises(CheckpointError, match="not found"):
        Mast3rNet.from_pretrained(offline_cache / "nowhere.pth", **TINY_ARGS)
