"""Device choice: cuda, then mps, then cpu; an explicit request that cannot run is an error."""

from __future__ import annotations

import pytest
import torch

from lift3d.device import device_status, pick_device
from lift3d.errors import BackendUnavailable, Lift3DError


def test_auto_picks_the_first_usable_device_in_order():
    rows = device_status()
    assert [name for name, _, _ in rows] == ["cuda", "mps", "cpu"]
    first = next(name for name, ok, _ in rows if ok)
    assert pick_device(None).type == first == pick_device("auto").type
    assert (first == "cuda") == torch.cuda.is_available()


def test_cpu_is_always_usable():
    assert pick_device("cpu") == torch.device("cpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_requesting_an_absent_gpu_says_why():
    with pytest.raises(BackendUnavailable, match="--device cuda is not usable here"):
        pick_device("cuda")


def test_nonsense_device_is_refused():
    with pytest.raises(Lift3DError, match="unknown device 'gpu0'"):
        pick_device("gpu0")
