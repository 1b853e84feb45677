"""Synthetic scenes: layout on disk, camera conventions, ground truth, determinism."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from lift3d.errors import InputError
from lift3d.io.outputs import read_ply
from lift3d.synth import (
    FURNITURE,
    SHAPES,
    SceneConfig,
    ensure_example,
    make_scene,
    preset_config,
    render_scene,
    write_scene,
)


@pytest.fixture(scope="module")
def scene():
    """The default scene (seed 0, 30 frames, 320x240), in memory."""
    return render_scene(seed=0)


@pytest.fixture(scope="module")
def scene_dir(scene, tmp_path_factory) -> Path:
    return write_scene(scene, tmp_path_factory.mktemp("synth") / "scene0")


def _load(folder: Path, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """depth (H, W) metres, instance IDs (H, W), pose (4, 4) of frame ``i``, read from disk."""
    depth = cv2.imread(str(folder / "depth" / f"{i}.png"), cv2.IMREAD_UNCHANGED)
    inst = cv2.imread(str(folder / "instance" / f"{i}.png"), cv2.IMREAD_UNCHANGED)
    assert depth.dtype == np.uint16 and inst.dtype == np.uint16
    return depth.astype(np.float64) / 1000.0, inst.astype(np.int32), np.loadtxt(
        folder / "pose" / f"{i}.txt")


def _backproject(depth: np.ndarray, K: np.ndarray, pose: np.ndarray):
    """World points (N, 3) of the valid pixels and their (row, col) indices."""
    ys, xs = np.nonzero(depth > 0)
    z = depth[ys, xs]
    cam = np.stack([(xs - K[0, 2]) / K[0, 0] * z, (ys - K[1, 2]) / K[1, 1] * z, z], 1)
    return cam @ pose[:3, :3].T + pose[:3, 3], ys, xs


def _hashes(folder: Path) -> dict[str, str]:
    return {
        str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(folder.rglob("*")) if p.is_file()
    }


def test_layout_is_scannet_export_with_ground_truth(scene, scene_dir):
    n = len(scene)
    assert n == 30 and scene.hw == (240, 320)
    for sub, ext in (("color", "jpg"), ("depth", "png"), ("pose", "txt"), ("instance", "png")):
        assert sorted(int(p.stem) for p in (scene_dir / sub).glob(f"*.{ext}")) == list(range(n))
    color = cv2.imread(str(scene_dir / "color" / "0.jpg"))
    assert color.shape == (240, 320, 3)
    K_c = np.loadtxt(scene_dir / "intrinsic" / "intrinsic_color.txt")
    K_d = np.loadtxt(scene_dir / "intrinsic" / "intrinsic_depth.txt")
    assert K_c.shape == (4, 4) and np.array_equal(K_c, K_d)
    np.testing.assert_allclose(K_c[:3, :3], scene.K, atol=1e-8)
    for name in ("extrinsic_color", "extrinsic_depth"):
        assert np.array_equal(np.loadtxt(scene_dir / "intrinsic" / f"{name}.txt"), np.eye(4))
    depth, inst, pose = _load(scene_dir, 7)
    np.testing.assert_array_equal(depth.astype(np.float32), scene.depths[7])
    np.testing.assert_array_equal(inst, scene.instances[7])
    np.testing.assert_allclose(pose, scene.poses[7], atol=1e-8)
    np.testing.assert_allclose(pose[:3, :3] @ pose[:3, :3].T, np.eye(3), atol=1e-7)
    meta = json.loads((scene_dir / "scene.json").read_text())
    assert meta["seed"] == 0 and meta["n_frames"] == n
    assert meta["size"] == {"width": 320, "height": 240}
    assert [o["id"] for o in meta["objects"]] == list(range(1, len(scene.objects) + 1))


def test_objects_are_many_and_of_every_shape(scene):
    assert len(scene.objects) >= 8
    assert {o.shape for o in scene.objects} == set(SHAPES)
    assert sum(o.pattern != "plain" for o in scene.objects) >= 2
    seen = np.unique(np.concatenate([np.unique(m) for m in scene.instances]))
    assert set(seen.tolist()) == set(range(len(scene.objects) + 1))  # every object shows up


def test_objects_rest_on_the_floor_without_intersecting(scene):
    import open3d as o3d

    cloud = scene.cloud
    for obj in scene.objects:
        assert abs(obj.vertices[:, 2].min()) < 1e-9  # resting on the floor
        rc = o3d.t.geometry.RaycastingScene()
        rc.add_triangles(o3d.core.Tensor(obj.vertices.astype(np.float32)),
                         o3d.core.Tensor(obj.faces.astype(np.uint32)))
        others = cloud.points[(cloud.labels > 0) & (cloud.labels != obj.id)]
        inside = rc.compute_occupancy(o3d.core.Tensor(others)).numpy()
        assert inside.sum() == 0, f"object {obj.id} ({obj.shape}) intersects another"
        if obj.shape != "torus":  # the occupancy query does see the object's own inside
            centre = o3d.core.Tensor(obj.centre[None].astype(np.float32))
            assert rc.compute_occupancy(centre).numpy()[0] == 1


def test_depth_reprojects_between_frames(scene_dir):
    """Back-project frame i, project into frame j, compare with j's depth (bilinear on smooth
    patches): exact up to the 1 mm quantisation; a half-pixel error in K would show."""
    K = np.loadtxt(scene_dir / "intrinsic" / "intrinsic_depth.txt")[:3, :3]
    for i, j in ((0, 1), (5, 7), (20, 23)):
        d_i, _, pose_i = _load(scene_dir, i)
        d_j, _, pose_j = _load(scene_dir, j)
        pw, _, _ = _backproject(d_i, K, pose_i)
        cam = (pw - pose_j[:3, 3]) @ pose_j[:3, :3]
        u = K[0, 0] * cam[:, 0] / cam[:, 2] + K[0, 2]
        v = K[1, 1] * cam[:, 1] / cam[:, 2] + K[1, 2]
        h, w = d_j.shape
        inb = (cam[:, 2] > 0) & (u >= 0) & (u < w - 1) & (v >= 0) & (v < h - 1)
        u, v, z = u[inb], v[inb], cam[inb, 2]
        x0, y0 = np.floor(u).astype(int), np.floor(v).astype(int)
        fx, fy = u - x0, v - y0
        q = np.stack([d_j[y0, x0], d_j[y0, x0 + 1], d_j[y0 + 1, x0], d_j[y0 + 1, x0 + 1]], 1)
        smooth = (q.min(1) > 0) & (q.max(1) - q.min(1) < 0.02)
        zi = (q[:, 0] * (1 - fx) + q[:, 1] * fx) * (1 - fy) + (q[:, 2] * (1 - fx)
                                                                + q[:, 3] * fx) * fy
        err = (zi - z)[smooth]
        visible = np.abs(err) < 0.02  # the rest is occluded in frame j
        assert visible.mean() > 0.85
        err = err[visible]
        assert abs(np.median(err)) < 1e-4, (i, j)
        assert np.median(np.abs(err)) < 5e-4 and np.percentile(np.abs(err), 90) < 1e-3, (i, j)


def test_instance_ids_agree_at_reprojected_pixels(scene_dir):
    K = np.loadtxt(scene_dir / "intrinsic" / "intrinsic_depth.txt")[:3, :3]
    for i, j in ((0, 2), (12, 13)):
        d_i, ins_i, pose_i = _load(scene_dir, i)
        d_j, ins_j, pose_j = _load(scene_dir, j)
        pw, ys, xs = _backproject(d_i, K, pose_i)
        cam = (pw - pose_j[:3, 3]) @ pose_j[:3, :3]
        u = np.round(K[0, 0] * cam[:, 0] / cam[:, 2] + K[0, 2]).astype(int)
        v = np.round(K[1, 1] * cam[:, 1] / cam[:, 2] + K[1, 2]).astype(int)
        h, w = d_j.shape
        inb = (cam[:, 2] > 0) & (u >= 0) & (u < w) & (v >= 0) & (v < h)
        visible = np.zeros_like(inb)
        visible[inb] = np.abs(d_j[v[inb], u[inb]] - cam[inb, 2]) < 0.02
        ids_i, ids_j = ins_i[ys, xs][visible], ins_j[v[visible], u[visible]]
        assert (ids_i > 0).sum() > 1000  # objects are part of the comparison
        assert (ids_i == ids_j).mean() > 0.99


def test_floor_backprojects_onto_the_floor_plane(scene):
    """Pixel (x, y) is the ray through K^-1 (x, y, 1): floor pixels land on z = 0 within the
    depth quantisation (a half-pixel offset would put them ~5 mm off)."""
    half = scene.config.room_size_m / 2 - 0.05
    for i in (0, 15, 29):
        pw, ys, xs = _backproject(scene.depths[i].astype(np.float64), scene.K, scene.poses[i])
        floor = ((scene.instances[i][ys, xs] == 0) & (np.abs(pw[:, 2]) < 0.05)
                 & (np.abs(pw[:, :2]).max(1) < half))
        assert floor.sum() > 10_000
        assert np.abs(pw[floor, 2]).max() < 1e-3


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_objects_leave_the_view_and_come_back(seed):
    scene = render_scene(seed=seed, width=160, height=120)
    present = np.array([[np.any(m == o.id) for o in scene.objects] for m in scene.instances])
    # some object is seen in a frame, gone in a later one, and seen again after that
    seen_before = np.maximum.accumulate(present, axis=0)
    seen_after = np.maximum.accumulate(present[::-1], axis=0)[::-1]
    gap = ~present[1:-1] & seen_before[:-2] & seen_after[2:]
    assert gap.any(), f"seed {seed}: no object leaves the view and returns"


def test_two_coloured_objects_show_both_colours(scene):
    two = [o for o in scene.objects if o.pattern != "plain"]
    assert two
    for o in two:
        chroma = np.asarray(o.colours, float)
        chroma /= chroma.sum(1, keepdims=True)
        assert np.abs(chroma[0] - chroma[1]).max() > 0.05  # distinguishable in hue
        balance = []  # per frame: share of the object's pixels in its less common colour
        for image, inst in zip(scene.images, scene.instances, strict=True):
            if (inst == o.id).sum() < 100:
                continue
            px = image[inst == o.id].astype(float) + 1.0
            px /= px.sum(1, keepdims=True)
            share = np.argmin(((px[:, None] - chroma[None]) ** 2).sum(-1), 1).mean()
            balance.append(min(share, 1 - share))
        assert max(balance) > 0.2, f"object {o.id} ({o.pattern}) shows one colour only"
    # the ground-truth cloud carries the albedo: two colours on two-coloured objects
    for o in scene.objects:
        cols = np.unique(scene.cloud.colors[scene.cloud.labels == o.id], axis=0)
        assert len(cols) == (1 if o.pattern == "plain" else 2)


def test_gt_cloud_labels_match_objects(scene, scene_dir):
    cloud = read_ply(scene_dir / "gt_cloud.ply")
    np.testing.assert_array_equal(cloud.points, scene.cloud.points)
    np.testing.assert_array_equal(cloud.labels, scene.cloud.labels)
    assert set(np.unique(cloud.labels).tolist()) == set(range(len(scene.objects) + 1))
    meta = json.loads((scene_dir / "scene.json").read_text())
    for o in meta["objects"]:
        p = cloud.points[cloud.labels == o["id"]]
        lo = np.asarray(o["centre"]) - np.asarray(o["extent"]) / 2 - 1e-4
        hi = np.asarray(o["centre"]) + np.asarray(o["extent"]) / 2 + 1e-4
        assert len(p) > 200 and np.all((p >= lo) & (p <= hi))
    np.testing.assert_allclose(np.linalg.norm(cloud.normals, axis=1), 1.0, atol=1e-4)


def test_same_seed_same_bytes_other_seed_other_scene(tmp_path):
    a = make_scene(tmp_path / "a", seed=3, n_frames=4, width=96, height=72)
    b = make_scene(tmp_path / "b", seed=3, n_frames=4, width=96, height=72)
    c = make_scene(tmp_path / "c", seed=4, n_frames=4, width=96, height=72)
    ha, hb, hc = _hashes(a), _hashes(b), _hashes(c)
    assert len(ha) == 4 * 4 + 4 + 2 and ha == hb
    assert ha.keys() == hc.keys()
    assert ha["scene.json"] != hc["scene.json"] and ha["color/0.jpg"] != hc["color/0.jpg"]
    centres = [[o["centre"] for o in json.loads((d / "scene.json").read_text())["objects"]]
               for d in (a, c)]
    assert centres[0] != centres[1]


def test_rewrites_own_scene_but_not_a_foreign_folder(tmp_path):
    out = make_scene(tmp_path / "s", seed=1, n_frames=5, width=64, height=48)
    make_scene(out, seed=1, n_frames=3, width=64, height=48)
    assert sorted(p.name for p in (out / "color").iterdir()) == ["0.jpg", "1.jpg", "2.jpg"]
    assert json.loads((out / "scene.json").read_text())["n_frames"] == 3
    assert sorted(p.name for p in out.iterdir()) == [
        "color", "depth", "gt_cloud.ply", "instance", "intrinsic", "pose", "scene.json"]
    for files in ({"notes.txt": "keep me"}, {"color/0.jpg": "a real ScanNet frame"}):
        foreign = tmp_path / f"foreign{len(list(tmp_path.iterdir()))}"
        for name, text in files.items():
            (foreign / name).parent.mkdir(parents=True, exist_ok=True)
            (foreign / name).write_text(text)
        with pytest.raises(InputError, match="not empty"):
            make_scene(foreign, seed=1, n_frames=2, width=64, height=48)
        assert all((foreign / n).read_text() == t for n, t in files.items())


def test_interrupted_write_is_redone(tmp_path):
    out = make_scene(tmp_path / "s", seed=2, n_frames=2, width=64, height=48)
    before = _hashes(out)
    _interrupt(out)
    make_scene(out, seed=2, n_frames=2, width=64, height=48)
    assert _hashes(out) == before


def _interrupt(out: Path) -> None:
    """Leave ``out`` as a run killed while writing frames would."""
    (out / "scene.json").unlink()
    (out / ".lift3d-synth-incomplete").write_text("")
    (out / "color" / "1.jpg").write_bytes(b"truncated")


def test_config_is_honoured_and_checked():
    cfg = SceneConfig(n_objects=12, shadows=False, noise_std=0.0)
    scene = render_scene(seed=5, n_frames=2, width=64, height=48, config=cfg)
    assert len(scene.objects) == 12 and {o.shape for o in scene.objects} == set(SHAPES)
    with pytest.raises(Exception, match="outside"):
        SceneConfig(orbit_radius_m=5.0)
    with pytest.raises(Exception, match="cannot place"):
        render_scene(seed=0, n_frames=1, width=16, height=16,
                     config=SceneConfig(n_objects=40, placement_radius_m=0.5))


def test_ensure_example_generates_once(tmp_path):
    path = ensure_example(tmp_path / "scene0", seed=0)
    assert (path / "scene.json").is_file() and len(list((path / "color").iterdir())) == 30
    stamp = (path / "scene.json").stat().st_mtime_ns
    before = _hashes(path)
    assert ensure_example(path, seed=0) == path
    assert (path / "scene.json").stat().st_mtime_ns == stamp  # complete: left alone
    _interrupt(path)
    ensure_example(path, seed=0)
    assert _hashes(path) == before  # incomplete: generated again


# ----------------------------------------------------------------------------- room preset


@pytest.fixture(scope="module")
def room():
    """The room preset (seed 0), small: 12 frames at 160x120."""
    return render_scene(seed=0, n_frames=12, width=160, height=120, config=preset_config("room"))


def test_default_preset_is_objects():
    assert SceneConfig().preset == "objects" and preset_config() == SceneConfig()
    with pytest.raises(Exception, match="unknown .*preset"):
        preset_config("kitchen")


def test_room_has_compound_furniture_against_walls_and_touching_objects(room):
    shapes = {o.shape for o in room.objects}
    assert {"table", "chair", "shelf", "cabinet", "lamp"} <= shapes <= set(FURNITURE) | set(SHAPES)
    for o in room.objects:
        if o.shape in ("table", "chair", "shelf"):
            assert o.n_parts >= 5, o.shape  # one instance made of several closed parts
    assert any(o.wall for o in room.objects if o.shape == "shelf")
    assert any(o.support for o in room.objects)  # resting on the table or a shelf
    # two boxes side by side, touching: the gap between their boxes' AABBs is zero
    boxes = [o for o in room.objects if o.shape == "box" and o.support == 0]
    lo = np.array([o.vertices.min(0) for o in boxes])
    hi = np.array([o.vertices.max(0) for o in boxes])
    gaps = [np.max(np.maximum(lo[i] - hi[j], lo[j] - hi[i])) for i in range(len(boxes))
            for j in range(i)]
    assert gaps and min(abs(g) for g in gaps) < 1e-6
    patterns = {o.pattern for o in room.objects}
    assert "parts" in patterns and patterns & {"checker", "noise", "stripes"}
    meta = room.describe()
    assert meta["preset"] == "room" and meta["config"]["preset"] == "room"


def test_room_table_top_and_legs_are_one_instance(room):
    """In the per-pixel ground truth and in the ground-truth cloud, the table's ID covers its
    top (at its height) and its legs (near the floor)."""
    table = next(o for o in room.objects if o.shape == "table")
    top_z = table.vertices[:, 2].max()
    pts = room.cloud.points[room.cloud.labels == table.id]
    assert (np.abs(pts[:, 2] - top_z) < 1e-3).sum() > 1000  # top
    assert (pts[:, 2] < 0.3).sum() > 200  # legs
    z_pix = []
    for depth, inst, pose in zip(room.depths, room.instances, room.poses, strict=True):
        pw, ys, xs = _backproject(depth.astype(np.float64), room.K, pose)
        z_pix.append(pw[inst[ys, xs] == table.id, 2])
    z_pix = np.concatenate(z_pix)
    assert (np.abs(z_pix - top_z) < 5e-3).sum() > 500 and (z_pix < 0.3).sum() > 50


def test_room_depth_and_labels_match_the_gt_cloud(room):
    """Project the ground-truth cloud into frames: no cloud point lies in front of the
    rendered depth (beyond pixel-footprint slack), the points the depth sees carry the
    pixel's label, and every object's cloud is seen."""
    cloud = room.cloud
    seen = np.zeros(len(cloud.points), bool)
    in_view: set[int] = set()
    for i in range(0, len(room), 3):
        pose, depth, inst = room.poses[i], room.depths[i], room.instances[i]
        cam = (cloud.points.astype(np.float64) - pose[:3, 3]) @ pose[:3, :3]
        u = np.round(room.K[0, 0] * cam[:, 0] / cam[:, 2] + room.K[0, 2]).astype(int)
        v = np.round(room.K[1, 1] * cam[:, 1] / cam[:, 2] + room.K[1, 2]).astype(int)
        h, w = depth.shape
        inb = np.flatnonzero((cam[:, 2] > 0.1) & (u >= 0) & (u < w) & (v >= 0) & (v < h))
        z, d = cam[inb, 2], depth[v[inb], u[inb]].astype(np.float64)
        # away from depth edges (where a thin leg's point may project onto the wall behind),
        # a point's pixel ray hits the surface within a pixel's footprint of the point
        kernel = np.ones((3, 3), np.uint8)
        step = cv2.dilate(depth, kernel) - cv2.erode(depth, kernel)
        step = step[v[inb], u[inb]]
        smooth = step < 0.1 * d
        assert smooth.mean() > 0.5
        # within half a pixel of the point, the surface's depth varies by at most the local
        # depth range
        assert np.mean((d > z + step + 0.005)[smooth]) < 0.001, i
        vis = np.abs(d - z) < 2e-3
        assert vis.sum() > 500
        agree = inst[v[inb], u[inb]][vis] == cloud.labels[inb][vis]
        assert agree.mean() > 0.98, i
        seen[inb[vis]] = True
        ids, counts = np.unique(inst, return_counts=True)
        in_view |= set(ids[(ids > 0) & (counts > 20)].tolist())
    assert len(in_view) >= 8
    for o in room.objects:
        if o.id in in_view:
            assert seen[cloud.labels == o.id].any(), f"object {o.id} ({o.shape}) never seen"


def test_room_hides_contact_faces_from_the_gt_cloud(room):
    """A box standing on a shelf board or the table leaves no cloud points on its bottom, nor
    on the board under it; its other faces are sampled."""
    box = next(o for o in room.objects if o.support and o.shape == "box")
    local = (room.cloud.points - box.translation) @ box.rotation  # the box's frame
    lo, hi = ((box.vertices - box.translation) @ box.rotation).min(0), \
        ((box.vertices - box.translation) @ box.rotation).max(0)
    inner = np.all((local[:, :2] > lo[:2] + 0.01) & (local[:, :2] < hi[:2] - 0.01), axis=1)
    assert not (inner & (np.abs(local[:, 2] - lo[2]) < 2e-3)).any()
    top = inner & (np.abs(local[:, 2] - hi[2]) < 2e-3)
    assert top.sum() > 20 and np.all(room.cloud.labels[top] == box.id)


def test_room_is_deterministic_per_seed():
    cfg = preset_config("room")
    a = render_scene(seed=4, n_frames=2, width=48, height=36, config=cfg)
    b = render_scene(seed=4, n_frames=2, width=48, height=36, config=cfg)
    c = render_scene(seed=5, n_frames=2, width=48, height=36, config=cfg)
    for x, y in ((a.images, b.images), (a.depths, b.depths), (a.instances, b.instances)):
        assert all(np.array_equal(p, q) for p, q in zip(x, y, strict=True))
    np.testing.assert_array_equal(a.cloud.points, b.cloud.points)
    assert a.describe() == b.describe() and a.describe()["objects"] != c.describe()["objects"]


def test_room_objects_leave_the_view_and_come_back(room):
    present = np.array([[np.any(m == o.id) for o in room.objects] for m in room.instances])
    seen_before = np.maximum.accumulate(present, axis=0)
    seen_after = np.maximum.accumulate(present[::-1], axis=0)[::-1]
    assert (~present[1:-1] & seen_before[:-2] & seen_after[2:]).any()


def test_cli_make_scene_room_preset(tmp_path):
    from typer.testing import CliRunner

    from lift3d.cli import app

    result = CliRunner().invoke(app, ["make-scene", str(tmp_path / "r"), "--preset", "room",
                                      "--frames", "2", "--width", "32", "--height", "24"])
    assert result.exit_code == 0, result.output
    meta = json.loads((tmp_path / "r" / "scene.json").read_text())
    assert meta["preset"] == "room" and any(o["shape"] == "table" for o in meta["objects"])
    result = CliRunner().invoke(app, ["make-scene", str(tmp_path / "k"), "--preset", "kitchen"])
    assert result.exit_code != 0 and "unknown scene preset" in result.output


def test_make_scene_streams_frames_to_the_same_bytes(scene_dir, tmp_path):
    """make_scene renders each frame when it writes it (memory of one frame); the files are
    byte for byte those of the scene rendered whole in memory and then written."""
    streamed = make_scene(tmp_path / "scene0", seed=0)
    assert _hashes(streamed) == _hashes(scene_dir)
    lazy = render_scene(seed=0, n_frames=3, width=48, height=36, lazy=True)
    whole = render_scene(seed=0, n_frames=3, width=48, height=36)
    for a, b in ((lazy.images, whole.images), (lazy.depths, whole.depths),
                 (lazy.instances, whole.instances)):
        assert len(a) == 3 and all(np.array_equal(a[i], b[i]) for i in (2, 0, 1))
