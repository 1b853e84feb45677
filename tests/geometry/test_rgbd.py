"""The rgbd geometry backend on a ray-cast scene with ground truth and on real 7-Scenes frames."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import open3d as o3d
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from lift3d.cameras import look_at
from lift3d.errors import InputError
from lift3d.geometry import build_geometry
from lift3d.geometry.rgbd import (
    RGBDConfig,
    RGBDGeometry,
    backproject,
    depth_validity,
    project,
    reproject_matches,
)
from lift3d.io import load_scene
from lift3d.types import Frame, Scene

W, H = 80, 60
K_SYN = np.array([[70.0, 0, (W - 1) / 2], [0, 70.0, (H - 1) / 2], [0, 0, 1]])
FLOOR, BOX, SPHERE = 0, 1, 2




def make_world() -> o3d.t.geometry.RaycastingScene:
    """A floor (z = 0), a 0.5 m box standing on it and a sphere, ids FLOOR, BOX, SPHERE."""
    world = o3d.t.geometry.RaycastingScene()
    floor = o3d.geometry.TriangleMesh.create_box(8, 8, 0.01).translate([-4, -4, -0.01])
    box = o3d.geometry.TriangleMesh.create_box(0.5, 0.5, 0.5).translate([-0.25, -0.25, 0])
    sphere = o3d.geometry.TriangleMesh.create_sphere(0.25, 40).translate([0.7, 0.5, 0.25])
    for mesh in (floor, box, sphere):
        world.add_triangles(o3d.t.geometry.TriangleMesh.from_legacy(mesh))
    return world


def render(world, pose) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray-cast an 80x60 view: depth (H, W) z in metres, hit points (H, W, 3), geometry ids."""
    xs, ys = np.meshgrid(np.arange(W, dtype=float), np.arange(H, dtype=float))
    d_cam = np.stack([(xs - K_SYN[0, 2]) / K_SYN[0, 0], (ys - K_SYN[1, 2]) / K_SYN[1, 1],
                      np.ones_like(xs)], -1)
    d_cam /= np.linalg.norm(d_cam, axis=-1, keepdims=True)  # unit rays: t_hit is ray length
    d_world = d_cam @ pose[:3, :3].T
    rays = np.concatenate([np.broadcast_to(pose[:3, 3], d_world.shape), d_world], -1)
    ans = world.cast_rays(o3d.core.Tensor(rays.astype(np.float32)))
    t = ans["t_hit"].numpy().astype(float)
    hit = np.isfinite(t)
    t = np.where(hit, t, 0.0)
    depth = (t * d_cam[..., 2]).astype(np.float32)
    points = pose[:3, 3] + t[..., None] * d_world
    ids = np.where(hit, ans["geometry_ids"].numpy().astype(int), -1)
    return depth, points, ids


@pytest.fixture(scope="module")
def synthetic():
    world = make_world()
    eyes = [(2.0, -1.2, 1.3), (2.2, -0.4, 1.1), (1.2, -2.2, 1.4)]
    poses = [look_at(np.array(e), [0.2, 0.1, 0.2]) for e in eyes]
    views = [render(world, p) for p in poses]
    return world, poses, views


def test_backproject_matches_raycast_hits(synthetic):
    _, poses, views = synthetic
    for pose, (depth, hits, ids) in zip(poses, views, strict=True):
        pts = backproject(depth, K_SYN, pose)
        assert pts.dtype == np.float32 and pts.shape == (H, W, 3)
        err = np.linalg.norm(pts - hits, axis=-1)[ids >= 0]
        assert err.max() < 1e-4


def test_validity_and_confidence(synthetic):
    _, poses, views = synthetic
    depth, _, ids = views[0]
    valid, conf, z = depth_validity(depth, K_SYN)
    assert valid.dtype == bool and conf.dtype == np.float32 and conf.shape == (H, W)
    assert not valid[ids < 0].any()
    assert ((conf > 0) == valid).all() and conf.max() <= 1.0
    # Floor pixels beside the box's silhouette whose depth jumps by more than the threshold
    # (relative jump > 2 * edge_max_tan / fx) are a discontinuity: they go.
    box = ids == BOX
    rim = (cv2.dilate(box.astype(np.uint8), np.ones((3, 3), np.uint8)) > 0) & ~box
    box_z = cv2.dilate(np.where(box, depth, 0).astype(np.float32), np.ones((3, 3)))
    jump = 2 * RGBDConfig().edge_max_tan / K_SYN[0, 0]
    far_rim = rim & (depth > 0) & ((depth - box_z) > 1.1 * jump * depth)
    assert far_rim.sum() > 5 and not valid[far_rim].any()
    assert valid[ids >= 0].mean() > 0.85  # only a thin band dropped
    kept = RGBDConfig(drop_edges=False)
    assert depth_validity(depth, K_SYN, kept)[0][far_rim].all()
    # Farther (and more grazing) floor gets lower confidence than the near floor.
    floor = valid & (ids == FLOOR)
    near = floor & (depth < np.percentile(depth[floor], 20))
    far = floor & (depth > np.percentile(depth[floor], 80))
    assert conf[near].mean() > conf[far].mean()
    # Out-of-range, non-finite and zero depths are invalid.
    bad = depth.copy()
    bad[0, :4] = [np.nan, np.inf, -1.0, 0.0]
    bad[1, 0] = 50.0
    v = depth_validity(bad, K_SYN)[0]
    assert not v[0, :4].any() and not v[1, 0]


def test_matches_land_on_the_same_surface_point(synthetic):
    world, poses, views = synthetic
    frames = [Frame(np.zeros((H, W, 3), np.uint8), f"f{k}", d, K_SYN, p)
              for k, (p, (d, _, _)) in enumerate(zip(poses, views, strict=True))]
    geo = RGBDGeometry()(Scene(frames, Path("synthetic"), "synthetic"))
    for i, j in [(0, 1), (1, 0), (0, 2)]:
        m = geo.matches(i, j)
        assert m.xy_i.dtype == np.int32 and m.xy_j.dtype == np.int32 and m.conf.dtype == np.float32
        assert len(m) > 0.4 * geo.valid[i].sum()
        assert (m.conf > 0).all() and (m.conf <= 1).all()
        xi, yi = m.xy_i.T
        xj, yj = m.xy_j.T
        assert geo.valid[i][yi, xi].all() and geo.valid[j][yj, xj].all()
        # Same object on both ends, and the world points agree to about a pixel footprint.
        ids_i, ids_j = views[i][2], views[j][2]
        assert (ids_i[yi, xi] == ids_j[yj, xj]).mean() > 0.99
        dist = np.linalg.norm(views[i][1][yi, xi] - views[j][1][yj, xj], axis=-1)
        footprint = views[j][0][yj, xj] / K_SYN[0, 0]  # metres per pixel in frame j
        assert np.median(dist / footprint) < 0.6
        assert np.percentile(dist / footprint, 99) < 3.0


def test_occluded_pixels_are_not_matched(synthetic):
    world, poses, views = synthetic
    i, j = 0, 2
    depth_i, hits_i, ids_i = views[i]
    # Ground truth: floor pixels of i whose point projects inside frame j but is hidden there:
    # the ray from camera j to the point hits something nearer, and so does the ray through
    # the nearest pixel centre (next to a silhouette that pixel may see the floor itself).
    floor = ids_i == FLOOR
    X = hits_i[floor]
    eye = poses[j][:3, 3]
    to_x = X - eye
    dist = np.linalg.norm(to_x, axis=1)
    rays = np.concatenate([np.broadcast_to(eye, X.shape), to_x / dist[:, None]], 1)
    t = world.cast_rays(o3d.core.Tensor(rays.astype(np.float32)))["t_hit"].numpy()
    uv, z = project(X, K_SYN, poses[j])
    px = np.rint(uv)
    inside = (z > 0) & (px[:, 0] >= 0) & (px[:, 0] < W) & (px[:, 1] >= 0) & (px[:, 1] < H)
    hidden_mask = np.zeros((H, W), bool)
    px = np.clip(px, 0, [W - 1, H - 1]).astype(int)
    depth_j_gt = views[j][0][px[:, 1], px[:, 0]]
    hidden_mask[floor] = inside & (t < dist - 0.1) & (depth_j_gt < z - 0.1)
    assert hidden_mask.sum() > 20, "the scene must put floor behind the box in frame j"

    valid_i, conf_i, z_i = depth_validity(depth_i, K_SYN)
    valid_j, conf_j, z_j = depth_validity(views[j][0], K_SYN)
    m = reproject_matches(backproject(z_i, K_SYN, poses[i]), valid_i, z_j, K_SYN, poses[j],
                          valid_j, RGBDConfig(), conf_i, conf_j)
    matched = np.zeros((H, W), bool)
    matched[m.xy_i[:, 1], m.xy_i[:, 0]] = True
    assert not (matched & hidden_mask).any()
    # Without the depth test those pixels would have matched (the test is what removes them).
    loose = RGBDConfig(depth_tol_rel=0.0, depth_tol_abs=1e3)
    m2 = reproject_matches(backproject(z_i, K_SYN, poses[i]), valid_i, z_j, K_SYN, poses[j],
                           valid_j, loose)
    matched2 = np.zeros((H, W), bool)
    matched2[m2.xy_i[:, 1], m2.xy_i[:, 0]] = True
    assert (matched2 & hidden_mask & valid_i).sum() > 10


rotations = st.tuples(*[st.floats(-1, 1) for _ in range(4)]).filter(
    lambda q: np.linalg.norm(q) > 0.1
)


@settings(max_examples=60, deadline=None)
@given(
    h=st.integers(1, 6),
    w=st.integers(1, 6),
    f=st.floats(20, 1500),
    c=st.tuples(st.floats(-50, 50), st.floats(-50, 50)),
    q=rotations,
    t=st.tuples(*[st.floats(-10, 10) for _ in range(3)]),
    seed=st.integers(0, 2**31 - 1),
)
def test_project_inverts_backproject(h, w, f, c, q, t, seed):
    a, b, cc, d = np.asarray(q) / np.linalg.norm(q)
    R = np.array([
        [a * a + b * b - cc * cc - d * d, 2 * (b * cc - a * d), 2 * (b * d + a * cc)],
        [2 * (b * cc + a * d), a * a - b * b + cc * cc - d * d, 2 * (cc * d - a * b)],
        [2 * (b * d - a * cc), 2 * (cc * d + a * b), a * a - b * b - cc * cc + d * d],
    ])
    pose = np.eye(4)
    pose[:3, :3] = R
    pose[:3, 3] = t
    K = np.array([[f, 0, c[0]], [0, f * 1.1, c[1]], [0, 0, 1]])
    depth = np.random.default_rng(seed).uniform(0.2, 20, (h, w)).astype(np.float32)
    uv, z = project(backproject(depth, K, pose).reshape(-1, 3), K, pose)
    ys, xs = np.mgrid[:h, :w]
    # World points are float32: their rounding error (~ulp of the largest coordinate), seen
    # from the depth of the point, bounds the pixel error.
    world_err = 4 * 2.0**-23 * (np.linalg.norm(t) + depth.ravel())
    px_err = f * 1.1 * world_err / depth.ravel() + 1e-6
    assert (np.abs(uv - np.stack([xs.ravel(), ys.ravel()], 1)).max(1) <= px_err).all()
    assert (np.abs(z - depth.ravel()) <= world_err + 1e-6).all()
    assert (np.rint(uv) == np.stack([xs.ravel(), ys.ravel()], 1)).all()


def test_frames_without_posed_depth_are_refused():
    img = np.zeros((4, 5, 3), np.uint8)
    frames = [Frame(img, "a", np.ones((4, 5), np.float32), np.eye(3), np.eye(4)),
              Frame(img, "frame_007", None, np.eye(3), np.eye(4))]
    with pytest.raises(InputError, match="frame_007.*depth.*--geometry flow"):
        build_geometry("rgbd")(Scene(frames, Path("scene_dir"), "images"))


def test_build_geometry_passes_config():
    geo = build_geometry("rgbd", depth_tol_rel=0.05, drop_edges=False)
    assert isinstance(geo, RGBDGeometry) and geo.name == "rgbd"
    assert geo.cfg.depth_tol_rel == 0.05 and not geo.cfg.drop_edges



def test_real_7scenes_matches_agree_in_3d(shared):
    root = shared("data", "7scenes_redkitchen_rgbd")
    scene = load_scene(root, layout="7scenes", stride=2, max_frames=2)  # frames 0 and 10
    assert scene.names == ["frame-000000", "frame-000010"]
    geo = RGBDGeometry()(scene)
    assert 0.8 < geo.valid[0].mean() < 0.95  # ~11% of Kinect pixels have no depth
    m = geo.matches(0, 1)
    assert len(m) > 0.7 * geo.valid[0].sum()
    p_i = geo.points[0][m.xy_i[:, 1], m.xy_i[:, 0]]
    p_j = geo.points[1][m.xy_j[:, 1], m.xy_j[:, 0]]
    dist = np.linalg.norm(p_i - p_j, axis=1)
    assert np.median(dist) < 0.02
    back = geo.matches(1, 0)
    assert abs(len(back) - len(m)) < 0.2 * len(m)
