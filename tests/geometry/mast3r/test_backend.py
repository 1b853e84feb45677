"""The mast3r GeometrySource: construction through build_geometry, Geometry at the original
resolution, intrinsics in original pixels, lazily cached matches in original pixels."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image

from lift3d.errors import InputError, Lift3DError
from lift3d.geometry import build_geometry
from lift3d.geometry.base import GeometrySource
from lift3d.geometry.mast3r import Mast3rConfig, Mast3rGeometry
from lift3d.geometry.mast3r.backend import original_K
from lift3d.geometry.mast3r.preprocess import plan, to_original
from lift3d.types import Frame, Scene

from .conftest import TINY_ARGS


@pytest.fixture(scope="module")
def kitchen():
    """Three real unposed photos (779x520), or generated textures where ../shared is absent."""
    shared = os.environ.get("LIFT3D_SHARED", Path(__file__).resolve().parents[4] / "shared")
    root = Path(shared) / "data" / "multiview_unposed"
    files = sorted((root / "mipnerf360_kitchen_vggt" / "images").glob("*.png"))[:3]
    if files:
        images = [np.asarray(Image.open(f).convert("RGB")) for f in files]
    else:
        rng = np.random.default_rng(0)
        images = [rng.integers(0, 256, (520, 779, 3), dtype=np.uint8) for _ in range(3)]
    frames = [Frame(image=im, name=f"f{k}") for k, im in enumerate(images)]
    return Scene(frames, Path("kitchen"), "images")


@pytest.fixture(scope="module")
def backend(tiny, tmp_path_factory):
    """Built the way the CLI builds it: build_geometry('mast3r', checkpoint=...)."""
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pth"
    torch.save({"model": tiny.state_dict(), "args": argparse.Namespace(model="tiny")}, path)
    geo = build_geometry("mast3r", checkpoint=str(path), device="cpu", model_args=TINY_ARGS,
                         long_side=64, match_subsample=4)
    assert isinstance(geo, GeometrySource) and geo.name == "mast3r"
    return geo


def test_config_pairs_and_unknown_settings():
    assert len(Mast3rConfig().pairs(8)) == 8 * 7  # complete, both ways
    assert len(Mast3rConfig().pairs(9)) == 2 * (3 * 6 + 2 + 1)  # swin, window 3
    with pytest.raises(Lift3DError, match="unknown MASt3R settings"):
        Mast3rGeometry.from_config(checkpoint="x.pth", windw=2)


def test_one_frame_is_refused(backend, kitchen):
    with pytest.raises(InputError, match="at least 2 frames"):
        backend(Scene(kitchen.frames[:1], kitchen.source, "images"))


def test_original_K_maps_network_projection_to_original_pixels():
    prep = plan((520, 779), 64)
    f, pp = 50.0, np.array([32.0, 20.0])
    K_n = np.array([[f, 0, pp[0]], [0, f, pp[1]], [0, 0, 1]])
    K_o = original_K(f, pp, prep)
    X = np.array([[0.3, -0.2, 2.0], [-1.0, 0.5, 3.0]])
    uv_n = (X @ K_n.T)[:, :2] / X[:, 2:]
    uv_o = (X @ K_o.T)[:, :2] / X[:, 2:]
    # integer-centred pixels: continuous coordinate = index + 0.5
    np.testing.assert_allclose(uv_o + 0.5, to_original(uv_n + 0.5, prep), atol=1e-9)


def test_geometry_at_original_resolution(backend, kitchen):
    runner, preps = backend.prepare(kitchen)
    preds = runner.predict([(0, 1), (1, 0), (1, 2), (2, 1)])
    # a stand-in alignment result: frame k's own-view points, identity poses
    own = {r.i: r for r in preds}
    res = SimpleNamespace(
        points=[own[k].pts_i for k in range(3)], conf=[own[k].conf_i for k in range(3)],
        cam_to_world=np.tile(np.eye(4), (3, 1, 1)), focals=np.full(3, 40.0),
        pp=np.array([[p.net_hw[1] / 2, p.net_hw[0] / 2] for p in preps]),
    )
    geo = backend.to_geometry(res, preps, runner)
    assert len(geo) == 3 and geo.kind == "3d"
    prep = preps[0]
    for k in range(3):
        assert geo.points[k].shape == (520, 779, 3) and geo.points[k].dtype == np.float32
        assert geo.conf[k].shape == geo.valid[k].shape == (520, 779)
        assert geo.K[k].shape == (3, 3) and geo.cam_to_world[k].shape == (4, 4)
    # the 64-pixel network image is a 64x32 crop of a 64x43 resize: top/bottom rows outside
    assert prep.net_hw == (32, 64) and prep.crop_xy == (0, 5)
    rows_in = np.flatnonzero(geo.conf[0].any(1))
    assert rows_in[0] > 0 and rows_in[-1] < 519
    assert not geo.valid[0][: rows_in[0]].any()
    inside = geo.conf[0] > 0
    np.testing.assert_array_equal(geo.valid[0], inside & (geo.conf[0] >= 1.5))
    # the point at an original pixel is the network point of the pixel holding its centre
    sx, sy = prep.scale_xy
    u, v = 400, 260
    un, vn = int((u + 0.5) * sx - prep.crop_xy[0]), int((v + 0.5) * sy - prep.crop_xy[1])
    np.testing.assert_array_equal(geo.points[0][v, u], own[0].pts_i[vn, un])
    # matches: original pixels, computed once per pair
    m = geo.matches(0, 1)
    assert len(m) > 0 and m.xy_i.dtype == np.int32 and m.conf.dtype == np.float32
    assert (m.xy_i >= 0).all() and (m.xy_i < [779, 520]).all() and (m.xy_j < [779, 520]).all()
    assert geo.matches(0, 1) is m
    assert len(geo.matches(2, 0)) > 0


def test_call_runs_alignment(backend, kitchen):
    geo = backend(kitchen)
    assert len(geo) == 3
    assert all(p.shape == (520, 779, 3) for p in geo.points)
    assert all(np.isfinite(K).all() for K in geo.K)
    assert len(geo.matches(0, 1)) > 0


def test_cli_style_construction_fails_clearly_when_offline(offline_cache):
    with pytest.raises(Lift3DError, match="not available offline"):
        build_geometry("mast3r", device="cpu")
    assert torch.get_default_device().type == "cpu"  # meta building leaves no global state


def _tiny_run(tiny, tmp_path, shared):
    """A folder of three small real photos and the run config of the tiny golden model."""
    from lift3d.config import SegmentConfig
    from lift3d.geometry.config import GeometryConfig

    images = shared("data", "multiview_unposed", "mipnerf360_kitchen_vggt", "images")
    folder = tmp_path / "images"
    folder.mkdir()
    for f in sorted(images.glob("*.png"))[:3]:  # small copies keep the exact H quick
        Image.open(f).convert("RGB").resize((195, 130)).save(folder / f.name)
    ckpt = tmp_path / "tiny.pth"
    torch.save({"model": tiny.state_dict()}, ckpt)
    cfg = SegmentConfig(
        geometry=GeometryConfig(
            backend="mast3r", mast3r_checkpoint=str(ckpt), device="cpu",
            mast3r_model_args=TINY_ARGS,
            mast3r=Mast3rConfig(long_side=64, match_subsample=4, progress=False)),
        segmenter="classical",
    )
    return folder, cfg


def test_segment_an_image_folder_with_mast3r(tiny, tmp_path, shared):
    """`lift3d segment images/ --geometry mast3r` end to end (tiny golden model): labels per
    image, a fused cloud, cameras and H from the aligned pointmaps."""
    import json

    from lift3d.pipeline import run_segment

    folder, cfg = _tiny_run(tiny, tmp_path, shared)
    report = run_segment(folder, tmp_path / "out", cfg, progress=False)
    assert report["n_frames"] == 3 and report["cloud_points"] > 0
    assert len(list((tmp_path / "out" / "labels").glob("*.png"))) == 3
    cams = json.loads((tmp_path / "out" / "cameras.json").read_text())["frames"]
    assert all(c["K"] is not None and c["cam_to_world"] is not None for c in cams)
    assert report["consistency"]["eps"] > 0


def test_resumed_mast3r_run_does_no_pair_inference(tiny, tmp_path, shared, monkeypatch):
    """A run killed after its inference (here: its labels and tracker state removed, as if it
    died while tracking) reruns without one decoder pass: the pair outputs, descriptors and
    alignment come from OUT/cache/mast3r/, and the outputs are the same."""
    import shutil

    from lift3d.geometry.mast3r.model import Mast3rNet
    from lift3d.io.outputs import read_label_png
    from lift3d.pipeline import run_segment

    calls = {"decoder": 0, "encoder": 0}
    forward_encoded, encode = Mast3rNet.forward_encoded, Mast3rNet.encode

    def counted_forward(self, *a, **k):
        calls["decoder"] += 1
        return forward_encoded(self, *a, **k)

    def counted_encode(self, *a, **k):
        calls["encoder"] += 1
        return encode(self, *a, **k)

    monkeypatch.setattr(Mast3rNet, "forward_encoded", counted_forward)
    monkeypatch.setattr(Mast3rNet, "encode", counted_encode)
    folder, cfg = _tiny_run(tiny, tmp_path, shared)
    out = tmp_path / "out"
    first = run_segment(folder, out, cfg, progress=False)
    assert calls["decoder"] > 0 and calls["encoder"] > 0
    cache = out / "cache" / "mast3r"
    assert (cache / "align.npz").is_file() and len(list((cache / "pairs").glob("*.npz"))) == 6
    labels = {p.name: read_label_png(p) for p in (out / "labels").glob("*.png")}
    shutil.rmtree(out / "labels")
    (out / "cache" / "track_state.npz").unlink()
    calls.update(decoder=0, encoder=0)
    again = run_segment(folder, out, cfg, progress=False)
    assert calls == {"decoder": 0, "encoder": 0}
    assert again["consistency"] == first["consistency"]
    for name, lab in labels.items():
        np.testing.assert_array_equal(read_label_png(out / "labels" / name), lab)
    # other settings: the cache is stale, cleared and refilled
    from dataclasses import replace

    # random weights: the chain's alignment collapses frame 0 onto its camera (scene scale
    # ~0), so H gets a fixed radius of the cloud's size instead of one relative to that scale
    cfg2 = replace(cfg, geometry=replace(cfg.geometry, mast3r=replace(cfg.geometry.mast3r,
                                                                      graph="chain")),
                   metric=replace(cfg.metric, eps=0.01))
    run_segment(folder, tmp_path / "out", cfg2, progress=False)
    assert calls["decoder"] > 0
    assert len(list((cache / "pairs").glob("*.npz"))) == 4
