"""Synthetic posed RGB-D scenes with ground truth, rendered on the CPU.

A square room (textured floor, four walls, a ceiling; label 0) holds ``n_objects`` objects of
different shapes on the floor (IDs ``1..n``): boxes, spheres, cylinders, tori, cones and meshes
built with trimesh (a capsule lying on its side, a lumpy icosphere, an extruded star). Some are
painted in two colours so that a colour-based segmenter over-segments them. A hand-held camera
orbits the objects with a sideways sweep of its gaze and seeded jitter, so objects leave the
view and come back. Frames are ray-cast with Open3D's ``RaycastingScene`` and shaded
(Lambertian, one directional light with cast shadows, ambient, mild sensor noise).

:func:`render_scene` returns everything in memory (:class:`SyntheticScene`);
:func:`make_scene` writes it in the ScanNet export layout (what SensReader writes)::

    out/color/<i>.jpg            RGB, JPEG quality 95
    out/depth/<i>.png            uint16 z-depth in millimetres, 0 = no hit / beyond range
    out/pose/<i>.txt             4x4 camera-to-world (OpenCV axes), metres
    out/instance/<i>.png         uint16 ground-truth instance IDs, 0 = background
    out/intrinsic/intrinsic_color.txt, intrinsic_depth.txt     4x4 (same K: registered)
    out/intrinsic/extrinsic_color.txt, extrinsic_depth.txt     4x4 identity
    out/gt_cloud.ply             labelled surface samples (label = instance ID, 0 = room)
    out/scene.json               seed, sizes, objects, camera path; written last

Frame ``i`` is named ``str(i)`` without padding. Conventions: world z up, metres; cameras
OpenCV (x right, y down, z forward); pixel ``(x, y)`` is the integer index of a pixel and the
ray of pixel ``(x, y)`` passes through ``K^-1 (x, y, 1)``, so a camera point projects to
``u = fx X / Z + cx`` and lands in pixel ``round(u)``. Same seed, same bytes.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lift3d.errors import InputError, Lift3DError
from lift3d.io.atomic import write_json, write_text, write_with
from lift3d.io.outputs import write_label_png, write_ply
from lift3d.types import Frame, LabelledCloud, Scene

GENERATOR = "lift3d.synth"
FORMAT_VERSION = 1
SHAPES = ("box", "sphere", "cylinder", "torus", "cone", "capsule", "blob", "star_prism")
_PARTIAL = ".lift3d-synth-incomplete"  # present while a scene is being written
_STREAM_LAYOUT, _STREAM_CAMERA, _STREAM_CLOUD, _STREAM_NOISE = range(4)


@dataclass(frozen=True)
class SceneConfig:
    """Every knob of a synthetic scene. Lengths in metres, angles in degrees."""

    n_objects: int = 10  # objects on the floor, IDs 1..n; >= 8 uses every shape at least once
    room_size_m: float = 6.0  # side of the square room, centred on the origin
    room_height_m: float = 2.6  # floor at z = 0, ceiling here
    placement_radius_m: float = 1.3  # object centres lie in this disc around the origin
    object_size_m: tuple[float, float] = (0.25, 0.5)  # range of an object's footprint width
    min_gap_m: float = 0.08  # clearance between objects' bounding circles (so none intersect)
    two_colour_fraction: float = 0.4  # share of objects painted in two colours
    floor_tile_m: float = 0.5  # checkerboard tile side on the floor
    fov_x_deg: float = 62.0  # horizontal field of view; fy = fx (square pixels)
    orbit_radius_m: float = 2.3  # camera distance from the room's vertical axis
    orbit_height_m: float = 1.35  # mean camera height above the floor
    height_swing_m: float = 0.15  # amplitude of a slow up-down motion of the camera
    orbit_degrees: float = 300.0  # azimuth covered from the first frame to the last
    target_height_m: float = 0.15  # height of the point the camera looks at
    sway_m: float = 0.8  # amplitude of the gaze's sideways sweep (what makes objects leave)
    sway_cycles: float = 1.5  # sideways sweeps over the whole path
    jitter_pos_m: float = 0.02  # hand-held jitter of the camera position (std)
    jitter_look_m: float = 0.03  # jitter of the look-at point (std)
    jitter_roll_deg: float = 1.5  # roll about the optical axis (std)
    light_dir: tuple[float, float, float] = (0.45, 0.3, 1.0)  # towards the light, world
    ambient: float = 0.35  # share of light that reaches shadowed and back-facing surfaces
    shadows: bool = True  # cast shadows from the directional light
    noise_std: float = 1.5  # per-pixel Gaussian colour noise, 8-bit levels
    max_depth_m: float = 10.0  # depth beyond this is written as 0 (invalid)
    jpeg_quality: int = 95
    object_points_per_m2: float = 8000.0  # ground-truth cloud density on objects
    room_points_per_m2: float = 150.0  # ground-truth cloud density on floor, walls, ceiling

    def __post_init__(self) -> None:
        lo, hi = self.object_size_m
        if self.n_objects < 1 or not 0 < lo <= hi:
            raise Lift3DError(
                f"SceneConfig: need n_objects >= 1 and 0 < object_size_m[0] <= [1], got "
                f"{self.n_objects} and {self.object_size_m}"
            )
        if self.orbit_radius_m >= self.room_size_m / 2:
            raise Lift3DError(
                f"SceneConfig: orbit_radius_m={self.orbit_radius_m} puts the camera outside "
                f"the {self.room_size_m} m room", fix="use a smaller orbit or a bigger room",
            )
        if not 0 <= self.ambient <= 1 or not 1 <= self.jpeg_quality <= 100:
            raise Lift3DError("SceneConfig: ambient must be in [0, 1], jpeg_quality in [1, 100]")


@dataclass
class SceneObject:
    """One object. ``colours``: 1 or 2 RGB uint8 triples; ``pattern``: ``plain``, ``halves``
    (two sides of a plane through its middle, perpendicular to ``pattern_axis``) or
    ``stripes`` (four bands along ``pattern_axis``).

    vertices (V, 3) float64 / faces (F, 3) int64 / vertex_normals (V, 3): the mesh in world
    coordinates (split at sharp edges, so interpolated normals shade edges crisply).
    rotation (3, 3), translation (3,): object frame -> world. centre, extent (3,): world AABB.
    """

    id: int
    shape: str
    colours: list[tuple[int, int, int]]
    pattern: str
    rotation: np.ndarray
    translation: np.ndarray
    vertices: np.ndarray = field(repr=False)
    faces: np.ndarray = field(repr=False)
    vertex_normals: np.ndarray = field(repr=False)
    pattern_axis: np.ndarray = field(default_factory=lambda: np.array([0.0, 0.0, 1.0]))
    pattern_range: tuple[float, float] = (0.0, 1.0)  # the mesh's span along pattern_axis

    @property
    def centre(self) -> np.ndarray:
        return (self.vertices.min(0) + self.vertices.max(0)) / 2

    @property
    def extent(self) -> np.ndarray:
        return self.vertices.max(0) - self.vertices.min(0)

    def to_json(self) -> dict:
        return {
            "id": self.id, "shape": self.shape, "colours": [list(c) for c in self.colours],
            "pattern": self.pattern, "centre": np.round(self.centre, 6).tolist(),
            "extent": np.round(self.extent, 6).tolist(),
        }


@dataclass
class SyntheticScene:
    """A rendered scene in memory.

    images: per frame (H, W, 3) uint8 RGB (before JPEG).
    depths: per frame (H, W) float32 metres (z), quantised to whole millimetres as written,
        0 where no hit or beyond range.
    instances: per frame (H, W) int32 ground-truth instance IDs, 0 = background.
    poses: per frame (4, 4) float64 camera-to-world (OpenCV axes).
    K: (3, 3) float64, shared by colour and depth.
    objects: the objects, ``objects[k].id == k + 1``.
    cloud: ground-truth labelled cloud (labels = instance IDs, 0 = room surfaces).
    camera: the camera path's parameters (JSON-ready).
    """

    seed: int
    config: SceneConfig
    images: list[np.ndarray]
    depths: list[np.ndarray]
    instances: list[np.ndarray]
    poses: list[np.ndarray]
    K: np.ndarray
    objects: list[SceneObject]
    cloud: LabelledCloud
    camera: dict

    def __len__(self) -> int:
        return len(self.images)

    @property
    def hw(self) -> tuple[int, int]:
        return int(self.images[0].shape[0]), int(self.images[0].shape[1])

    def as_scene(self) -> Scene:
        """The scene as lift3d's :class:`~lift3d.types.Scene`, with its ground truth."""
        frames = [
            Frame(image=im, name=str(i), depth=d, K=self.K.copy(), cam_to_world=p)
            for i, (im, d, p) in enumerate(zip(self.images, self.depths, self.poses, strict=True))
        ]
        return Scene(
            frames=frames, source=Path(f"<synthetic seed={self.seed}>"), layout="synthetic",
            gt_labels=list(self.instances), gt_points=self.cloud.points,
            gt_point_labels=self.cloud.labels,
        )

    def describe(self) -> dict:
        """``scene.json``'s content."""
        h, w = self.hw
        return {
            "generator": GENERATOR, "format_version": FORMAT_VERSION, "seed": self.seed,
            "n_frames": len(self), "size": {"width": w, "height": h},
            "K": self.K.tolist(),
            "conventions": {
                "world": "z up, metres",
                "camera": "OpenCV axes (x right, y down, z forward); pose = camera-to-world",
                "pixels": "ray of integer pixel (x, y) passes through K^-1 (x, y, 1)",
                "depth": "uint16 millimetres of z, 0 = invalid",
                "instance": "uint16, 0 = background (floor, walls, ceiling)",
            },
            "objects": [o.to_json() for o in self.objects],
            "camera_path": self.camera, "config": asdict(self.config),
        }


# ----------------------------------------------------------------------------- layout


def _shape_mesh(shape: str, size: float, rng: np.random.Generator):
    """A trimesh of ``shape`` about ``size`` wide, in its own frame (z = its axis)."""
    import trimesh

    c = trimesh.creation
    r = size / 2
    if shape == "box":
        return c.box(extents=(size, size * rng.uniform(0.5, 0.9), size * rng.uniform(0.5, 1.1)))
    if shape == "sphere":
        return c.uv_sphere(radius=r * 0.9, count=(32, 32))
    if shape == "cylinder":
        return c.cylinder(radius=r * 0.8, height=size * rng.uniform(0.8, 1.5), sections=48)
    if shape == "torus":
        return c.torus(major_radius=r * 0.72, minor_radius=r * 0.28,
                       major_sections=48, minor_sections=24)
    if shape == "cone":
        return c.cone(radius=r, height=size * rng.uniform(1.0, 1.6), sections=48)
    if shape == "capsule":
        return c.capsule(height=size * 0.9, radius=r * 0.45, count=(32, 32))
    if shape == "blob":
        ico = c.icosphere(subdivisions=3, radius=r * 0.85)
        v = ico.vertices
        dirs = rng.normal(size=(3, 3))
        bumps = sum(np.sin(4.0 * (v / r) @ d + rng.uniform(0, 2 * np.pi)) for d in dirs)
        return trimesh.Trimesh(v * (1 + 0.07 * bumps)[:, None], ico.faces, process=False)
    if shape == "star_prism":
        k = 5
        ang = np.pi / 2 + np.arange(2 * k) * np.pi / k
        rad = np.where(np.arange(2 * k) % 2 == 0, r, r * 0.45)
        rim = np.stack([rad * np.cos(ang), rad * np.sin(ang)], 1)
        verts2d = np.vstack([[0.0, 0.0], rim])
        fan = np.stack([np.zeros(2 * k, int), 1 + np.arange(2 * k),
                        1 + (np.arange(2 * k) + 1) % (2 * k)], 1)
        return c.extrude_triangulation(verts2d, fan, height=size * rng.uniform(0.3, 0.6))
    raise ValueError(f"unknown shape {shape!r}")


def _palette(n: int, rng: np.random.Generator) -> np.ndarray:
    """(n, 3) float colours in [0, 1] with hues spread round the wheel."""
    import colorsys

    h0 = rng.uniform()
    hues = (h0 + np.arange(n) * 0.618034) % 1.0
    sat = rng.uniform(0.55, 0.9, n)
    val = rng.uniform(0.6, 0.95, n)
    return np.array([colorsys.hsv_to_rgb(h, s, v) for h, s, v in zip(hues, sat, val, strict=True)])


def _rot_z(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


def _rot_x(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1.0, 0.0, 0.0], [0.0, c, -s], [0.0, s, c]])


def _place_objects(cfg: SceneConfig, rng: np.random.Generator) -> list[SceneObject]:
    """Objects resting on the floor, bounding circles apart by ``min_gap_m``."""
    n = cfg.n_objects
    shapes = list(rng.permutation(SHAPES))
    shapes += [str(s) for s in rng.choice(SHAPES, max(0, n - len(SHAPES)))]
    shapes = [str(s) for s in shapes[:n]]
    colours = _palette(2 * n, rng)
    n_two = int(round(cfg.two_colour_fraction * n))
    two = set(rng.permutation(n)[:n_two].tolist())
    placed: list[tuple[np.ndarray, float]] = []
    objects = []
    for k, shape in enumerate(shapes):
        mesh = _shape_mesh(shape, rng.uniform(*cfg.object_size_m), rng).smooth_shaded
        v_obj = np.asarray(mesh.vertices, np.float64)
        tilt = _rot_x(np.pi / 2) if shape == "capsule" else np.eye(3)  # capsules lie down
        rot = _rot_z(rng.uniform(0, 2 * np.pi)) @ tilt
        v = v_obj @ rot.T
        footprint = float(np.linalg.norm(v[:, :2], axis=1).max())
        xy = _free_spot(footprint, placed, cfg, rng)
        placed.append((xy, footprint))
        t = np.array([xy[0], xy[1], -v[:, 2].min()])
        pattern = "plain"
        if k in two:
            pattern = "halves" if rng.uniform() < 0.5 else "stripes"
        # halves split upright objects into sides (a top/bottom split hides one half from a
        # camera above); the capsule lies along its own z, so both split along that
        axis = 2 if shape == "capsule" or pattern == "stripes" else 0
        along = v_obj[:, axis]
        cols = [colours[k]] + ([colours[(k + n) % (2 * n)]] if pattern != "plain" else [])
        objects.append(SceneObject(
            id=k + 1, shape=shape, pattern=pattern,
            colours=[tuple(int(x) for x in np.round(np.asarray(c) * 255)) for c in cols],
            rotation=rot, translation=t, vertices=v + t, faces=np.asarray(mesh.faces, np.int64),
            vertex_normals=np.asarray(mesh.vertex_normals, np.float64) @ rot.T,
            pattern_axis=rot[:, axis].copy(),
            pattern_range=(float(along.min()), float(along.max())),
        ))
    return objects


def _free_spot(radius: float, placed, cfg: SceneConfig, rng: np.random.Generator) -> np.ndarray:
    for _ in range(2000):
        r = cfg.placement_radius_m * np.sqrt(rng.uniform())
        a = rng.uniform(0, 2 * np.pi)
        xy = np.array([r * np.cos(a), r * np.sin(a)])
        if all(np.linalg.norm(xy - p) > radius + q + cfg.min_gap_m for p, q in placed):
            return xy
    raise Lift3DError(
        f"cannot place {cfg.n_objects} objects without overlap in a disc of radius "
        f"{cfg.placement_radius_m} m", fix="lower n_objects or raise placement_radius_m",
    )


def _room_meshes(cfg: SceneConfig) -> list[tuple[str, np.ndarray, np.ndarray]]:
    """(kind, vertices (4, 3), faces (2, 3)) for floor, four walls and ceiling."""
    s, h = cfg.room_size_m / 2, cfg.room_height_m
    quads = {
        "floor": [(-s, -s, 0), (s, -s, 0), (s, s, 0), (-s, s, 0)],
        "ceiling": [(-s, -s, h), (-s, s, h), (s, s, h), (s, -s, h)],
        "wall_xn": [(-s, -s, 0), (-s, s, 0), (-s, s, h), (-s, -s, h)],
        "wall_xp": [(s, -s, 0), (s, -s, h), (s, s, h), (s, s, 0)],
        "wall_yn": [(-s, -s, 0), (-s, -s, h), (s, -s, h), (s, -s, 0)],
        "wall_yp": [(-s, s, 0), (s, s, 0), (s, s, h), (-s, s, h)],
    }
    faces = np.array([[0, 1, 2], [0, 2, 3]])
    return [(k, np.array(q, np.float64), faces) for k, q in quads.items()]


# ----------------------------------------------------------------------------- appearance


_WALL_COLOURS = {
    "wall_xn": (0.80, 0.76, 0.68), "wall_xp": (0.70, 0.78, 0.80),
    "wall_yn": (0.82, 0.72, 0.70), "wall_yp": (0.74, 0.80, 0.70),
}


def _room_albedo(kind: str, p: np.ndarray, cfg: SceneConfig) -> np.ndarray:
    """(N, 3) albedo in [0, 1] of room surface ``kind`` at world points ``p`` (N, 3)."""
    if kind == "floor":
        tile = np.floor(p[:, 0] / cfg.floor_tile_m) + np.floor(p[:, 1] / cfg.floor_tile_m)
        checker = (tile % 2)[:, None]
        base = np.where(checker > 0, [[0.62, 0.52, 0.40]], [[0.50, 0.42, 0.33]])
        grain = 0.04 * np.sin(p[:, 0:1] * 37.0 + 3.0 * np.sin(p[:, 1:2] * 5.0))
        ramp = 0.08 * (p[:, 0:1] + p[:, 1:2]) / cfg.room_size_m
        return base * (1 + grain + ramp)
    if kind == "ceiling":
        return np.full((len(p), 3), 0.9)
    rel = p[:, 2:3] / cfg.room_height_m
    col = np.asarray(_WALL_COLOURS[kind])[None] * (0.8 + 0.25 * rel)
    return np.where(p[:, 2:3] < 0.1, 0.35, col)  # dark skirting board


def _object_albedo(obj: SceneObject, p: np.ndarray) -> np.ndarray:
    """(N, 3) albedo in [0, 1] of ``obj`` at world points ``p`` (N, 3) on its surface."""
    cols = np.asarray(obj.colours, np.float64) / 255.0
    if obj.pattern == "plain":
        return np.broadcast_to(cols[0], (len(p), 3)).copy()
    s = (p - obj.translation) @ obj.pattern_axis  # object-frame coordinate, world units
    lo, hi = obj.pattern_range
    u = np.clip((s - lo) / max(hi - lo, 1e-9), 0.0, 0.999)  # end caps stay in one band
    second = u > 0.5 if obj.pattern == "halves" else np.floor(u * 4).astype(int) % 2 == 1
    return np.where(second[:, None], cols[1], cols[0])


# ----------------------------------------------------------------------------- raycasting


class _World:
    """The ray-casting scene plus per-triangle lookups (label, interpolated normals)."""

    def __init__(self, cfg: SceneConfig, objects: list[SceneObject]):
        import open3d as o3d

        self.cfg = cfg
        self.objects = objects
        self.scene = o3d.t.geometry.RaycastingScene()
        self.kinds: list[str] = []  # per geometry ID: room kind or "object"
        self.labels: list[int] = []
        faces_all, normals_all, face_offset, n_v = [], [], [], 0
        parts = [(k, v, f, None) for k, v, f in _room_meshes(cfg)]
        parts += [("object", o.vertices, o.faces, o) for o in objects]
        for kind, v, f, obj in parts:
            mesh = o3d.t.geometry.TriangleMesh()
            mesh.vertex.positions = o3d.core.Tensor(v.astype(np.float32))
            mesh.triangle.indices = o3d.core.Tensor(f.astype(np.int32))
            gid = self.scene.add_triangles(mesh)
            assert gid == len(self.kinds)  # IDs are handed out in order
            self.kinds.append(kind)
            self.labels.append(0 if obj is None else obj.id)
            if obj is None:
                nrm = np.cross(v[1] - v[0], v[2] - v[0])
                vn = np.broadcast_to(nrm / np.linalg.norm(nrm), v.shape)
            else:
                vn = obj.vertex_normals
            face_offset.append(sum(len(x) for x in faces_all))
            faces_all.append(f + n_v)
            normals_all.append(vn)
            n_v += len(v)
        self.label_of = np.array(self.labels + [0], np.int32)  # last entry: no hit
        self.faces = np.concatenate(faces_all)
        self.vnormals = np.concatenate(normals_all)
        self.face_offset = np.array(face_offset, np.int64)

    def cast(self, origins: np.ndarray, dirs: np.ndarray) -> dict[str, np.ndarray]:
        """Cast rays (N, 3) + (N, 3) float; returns t (N,), gid (N,) int64 (-1 no hit),
        prim (N,), uv (N, 2)."""
        import open3d as o3d

        rays = np.concatenate([origins, dirs], 1).astype(np.float32)
        ans = self.scene.cast_rays(o3d.core.Tensor(rays))
        gid = ans["geometry_ids"].numpy().astype(np.int64)
        gid[gid == o3d.t.geometry.RaycastingScene.INVALID_ID] = -1
        return {
            "t": ans["t_hit"].numpy(), "gid": gid,
            "prim": ans["primitive_ids"].numpy().astype(np.int64),
            "uv": ans["primitive_uvs"].numpy().astype(np.float64),
        }

    def normals(self, hit: dict[str, np.ndarray]) -> np.ndarray:
        """(N, 3) unit normals at hits (interpolated from vertex normals); rows of misses
        are arbitrary."""
        gid = np.maximum(hit["gid"], 0)
        tri = self.faces[self.face_offset[gid] + hit["prim"]]
        u, v = hit["uv"][:, 0:1], hit["uv"][:, 1:2]
        n = (1 - u - v) * self.vnormals[tri[:, 0]] + u * self.vnormals[tri[:, 1]]
        n = n + v * self.vnormals[tri[:, 2]]
        return n / np.maximum(np.linalg.norm(n, axis=1, keepdims=True), 1e-12)

    def albedo(self, p: np.ndarray, gid: np.ndarray) -> np.ndarray:
        """(N, 3) albedo in [0, 1] at world points ``p`` on geometries ``gid`` (-1: black)."""
        out = np.zeros((len(p), 3))
        for g, kind in enumerate(self.kinds):  # one pass per surface, vectorised within
            m = gid == g
            if not m.any():
                continue
            if kind == "object":
                out[m] = _object_albedo(self.objects[self.labels[g] - 1], p[m])
            else:
                out[m] = _room_albedo(kind, p[m], self.cfg)
        return out


def _intrinsics(cfg: SceneConfig, width: int, height: int) -> np.ndarray:
    fx = (width / 2) / np.tan(np.radians(cfg.fov_x_deg) / 2)
    return np.array([[fx, 0, (width - 1) / 2], [0, fx, (height - 1) / 2], [0, 0, 1]])


def _look_at(eye: np.ndarray, target: np.ndarray, roll: float) -> np.ndarray:
    """(4, 4) camera-to-world, OpenCV axes, world z up, rolled by ``roll`` radians."""
    fwd = target - eye
    fwd /= np.linalg.norm(fwd)
    right = np.cross(fwd, [0.0, 0.0, 1.0])
    right /= np.linalg.norm(right)
    down = np.cross(fwd, right)
    c, s = np.cos(roll), np.sin(roll)
    right, down = c * right + s * down, -s * right + c * down
    pose = np.eye(4)
    pose[:3, :3] = np.stack([right, down, fwd], 1)
    pose[:3, 3] = eye
    return pose


def _camera_path(cfg: SceneConfig, n: int, seed: int) -> tuple[list[np.ndarray], dict]:
    """Poses of a hand-held orbit whose gaze sweeps sideways; and the path's parameters."""
    rng = np.random.default_rng([seed, _STREAM_CAMERA])
    theta0 = rng.uniform(0, 2 * np.pi)
    phase_sway, phase_h = rng.uniform(0, 2 * np.pi, 2)
    t = np.arange(n) / max(n - 1, 1)
    theta = theta0 + np.radians(cfg.orbit_degrees) * t
    radius = cfg.orbit_radius_m + rng.normal(0, cfg.jitter_pos_m, n)
    height = cfg.orbit_height_m + cfg.height_swing_m * np.sin(2 * np.pi * t + phase_h)
    height = height + rng.normal(0, cfg.jitter_pos_m, n)
    eye = np.stack([radius * np.cos(theta), radius * np.sin(theta), height], 1)
    tangent = np.stack([-np.sin(theta), np.cos(theta), np.zeros(n)], 1)
    sway = cfg.sway_m * np.sin(2 * np.pi * cfg.sway_cycles * t + phase_sway)
    target = np.array([0.0, 0.0, cfg.target_height_m]) + sway[:, None] * tangent
    target = target + rng.normal(0, cfg.jitter_look_m, (n, 3))
    roll = np.radians(rng.normal(0, cfg.jitter_roll_deg, n))
    poses = [_look_at(eye[i], target[i], roll[i]) for i in range(n)]
    params = {
        "kind": "hand-held orbit with sideways gaze sweep",
        "start_azimuth_deg": float(np.degrees(theta0)), "orbit_degrees": cfg.orbit_degrees,
        "radius_m": cfg.orbit_radius_m, "height_m": cfg.orbit_height_m,
        "sway_m": cfg.sway_m, "sway_cycles": cfg.sway_cycles,
        "sway_phase_rad": float(phase_sway), "height_phase_rad": float(phase_h),
        "jitter_pos_m": cfg.jitter_pos_m, "jitter_look_m": cfg.jitter_look_m,
        "jitter_roll_deg": cfg.jitter_roll_deg,
    }
    return poses, params


def _render_frame(world: _World, pose: np.ndarray, K: np.ndarray, hw: tuple[int, int],
                  noise_rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray-cast one view: RGB (H, W, 3) uint8, depth (H, W) float32 metres (mm-quantised),
    instance IDs (H, W) int32."""
    cfg = world.cfg
    h, w = hw
    ys, xs = np.mgrid[0:h, 0:w]
    d_cam = np.stack([(xs - K[0, 2]) / K[0, 0], (ys - K[1, 2]) / K[1, 1], np.ones((h, w))], -1)
    d_world = d_cam.reshape(-1, 3) @ pose[:3, :3].T  # camera z = 1, so t_hit is depth z
    origin = np.broadcast_to(pose[:3, 3], d_world.shape)
    hit = world.cast(origin, d_world)
    ok = (hit["gid"] >= 0) & np.isfinite(hit["t"]) & (hit["t"] <= cfg.max_depth_m)
    z = np.where(ok, hit["t"], 0.0)
    p = origin + z[:, None] * d_world
    n = world.normals(hit)
    n = np.where((np.sum(n * d_world, 1) > 0)[:, None], -n, n)  # face the camera
    light = np.asarray(cfg.light_dir, np.float64)
    light /= np.linalg.norm(light)
    lit = np.clip(n @ light, 0, None)
    if cfg.shadows:
        src = p[ok] + 1e-3 * n[ok]
        occluder = world.cast(src, np.broadcast_to(light, src.shape))["gid"]
        blocked = world.label_of[occluder] > 0  # only objects cast shadows (not the ceiling)
        lit[np.flatnonzero(ok)[blocked]] = 0.0
    shade = cfg.ambient + (1 - cfg.ambient) * lit
    rgb = world.albedo(p, np.where(ok, hit["gid"], -1)) * shade[:, None] * 255.0
    rgb = rgb + noise_rng.normal(0, cfg.noise_std, rgb.shape)
    image = np.clip(np.round(rgb), 0, 255).astype(np.uint8).reshape(h, w, 3)
    depth = (np.round(z * 1000.0) / 1000.0).astype(np.float32).reshape(h, w)
    labels = world.label_of[np.where(ok, hit["gid"], -1)].reshape(h, w)
    return image, depth, labels


# ----------------------------------------------------------------------------- ground truth


def _sample_surface(v: np.ndarray, f: np.ndarray, density: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Area-uniform samples on a mesh: points (N, 3), face normals (N, 3)."""
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    cross = np.cross(b - a, c - a)
    area = np.linalg.norm(cross, axis=1) / 2
    n = max(1, int(round(area.sum() * density)))
    face = rng.choice(len(f), n, p=area / area.sum())
    r1, r2 = rng.uniform(size=(2, n, 1))
    s = np.sqrt(r1)
    pts = (1 - s) * a[face] + s * (1 - r2) * b[face] + s * r2 * c[face]
    nrm = cross[face] / np.maximum(2 * area[face, None], 1e-12)
    return pts, nrm


def _gt_cloud(world: _World, cfg: SceneConfig, seed: int) -> LabelledCloud:
    """Surface samples of every object (label = ID) and of the room (label 0). Object faces
    resting on the floor are left out: no camera can see them."""
    rng = np.random.default_rng([seed, _STREAM_CLOUD])
    pts, nrm, gids = [], [], []
    parts = [(k, v, f) for k, v, f in _room_meshes(cfg)]
    parts += [("object", o.vertices, o.faces) for o in world.objects]
    for g, (kind, v, f) in enumerate(parts):
        dens = cfg.object_points_per_m2 if kind == "object" else cfg.room_points_per_m2
        p, n = _sample_surface(v, f, dens, rng)
        if kind == "object":
            keep = ~((p[:, 2] < 2e-3) & (n[:, 2] < -0.9))
            p, n = p[keep], n[keep]
        pts.append(p)
        nrm.append(n)
        gids.append(np.full(len(p), g))
    p, n, g = np.concatenate(pts), np.concatenate(nrm), np.concatenate(gids)
    colours = np.clip(np.round(world.albedo(p, g) * 255), 0, 255).astype(np.uint8)
    return LabelledCloud(
        points=p.astype(np.float32), colors=colours, normals=n.astype(np.float32),
        labels=world.label_of[g].astype(np.int32), label_conf=np.ones(len(p), np.float32),
        n_obs=np.ones(len(p), np.int32),
    )


# ----------------------------------------------------------------------------- public API


def render_scene(seed: int = 0, n_frames: int = 30, width: int = 320, height: int = 240,
                 config: SceneConfig | None = None) -> SyntheticScene:
    """Build and render a synthetic scene in memory; deterministic for ``seed``."""
    cfg = config or SceneConfig()
    if n_frames < 1 or width < 8 or height < 8:
        raise Lift3DError(
            f"render_scene: need n_frames >= 1 and an image of at least 8x8 pixels, got "
            f"n_frames={n_frames}, {width}x{height}"
        )
    objects = _place_objects(cfg, np.random.default_rng([seed, _STREAM_LAYOUT]))
    world = _World(cfg, objects)
    K = _intrinsics(cfg, width, height)
    poses, camera = _camera_path(cfg, n_frames, seed)
    images, depths, instances = [], [], []
    for i, pose in enumerate(poses):
        noise_rng = np.random.default_rng([seed, _STREAM_NOISE, i])
        im, d, lab = _render_frame(world, pose, K, (height, width), noise_rng)
        images.append(im)
        depths.append(d)
        instances.append(lab)
    return SyntheticScene(
        seed=seed, config=cfg, images=images, depths=depths, instances=instances, poses=poses,
        K=K, objects=objects, cloud=_gt_cloud(world, cfg, seed), camera=camera,
    )


def _matrix_text(m: np.ndarray) -> str:
    return "\n".join(" ".join(f"{x:.9f}" for x in row) for row in m) + "\n"


def _write_image(path: Path, array: np.ndarray, params: list[int] | None = None) -> None:
    import cv2

    def write(tmp: Path) -> None:
        if not cv2.imwrite(str(tmp), array, params or []):
            raise OSError(f"could not write {tmp}")

    write_with(path, write)


def write_scene(scene: SyntheticScene, out_dir: str | Path) -> Path:
    """Write ``scene`` in the ScanNet export layout (see the module docstring)."""
    out = Path(out_dir)
    marker = out / "scene.json"
    _check_target(out)
    # an interrupted write leaves the partial marker and no scene.json: ensure_example then
    # regenerates, and a rerun may overwrite the folder
    write_text(out / _PARTIAL, "lift3d.synth is writing this folder\n")
    marker.unlink(missing_ok=True)
    K4 = np.eye(4)
    K4[:3, :3] = scene.K
    for name in ("intrinsic_color", "intrinsic_depth"):
        write_text(out / "intrinsic" / f"{name}.txt", _matrix_text(K4))
    for name in ("extrinsic_color", "extrinsic_depth"):
        write_text(out / "intrinsic" / f"{name}.txt", _matrix_text(np.eye(4)))
    import cv2

    jpeg = [cv2.IMWRITE_JPEG_QUALITY, scene.config.jpeg_quality]
    for i in range(len(scene)):
        _write_image(out / "color" / f"{i}.jpg", scene.images[i][:, :, ::-1].copy(), jpeg)
        depth_mm = np.round(scene.depths[i] * 1000.0).astype(np.uint16)
        _write_image(out / "depth" / f"{i}.png", depth_mm)
        write_text(out / "pose" / f"{i}.txt", _matrix_text(scene.poses[i]))
        write_label_png(out / "instance" / f"{i}.png", scene.instances[i])
    _remove_stale_frames(out, len(scene))
    write_ply(out / "gt_cloud.ply", scene.cloud)
    write_json(marker, scene.describe())
    (out / _PARTIAL).unlink()
    return out


def make_scene(out_dir: str | Path, seed: int = 0, n_frames: int = 30, width: int = 320,
               height: int = 240, config: SceneConfig | None = None) -> Path:
    """Render a synthetic scene and write it to ``out_dir`` (ScanNet export layout plus
    ground truth); returns ``out_dir``. Same arguments, byte-identical files."""
    out = Path(out_dir)
    _check_target(out)
    return write_scene(render_scene(seed, n_frames, width, height, config), out)


def ensure_example(path: str | Path = "examples/scene0", seed: int = 0) -> Path:
    """Return ``path`` (relative to the working directory), generating the bundled example
    scene there first (30 frames, 320x240) unless a complete one is already there."""
    path = Path(path)
    if not (path / "scene.json").is_file():
        make_scene(path, seed=seed)
    return path


def _check_target(out: Path) -> None:
    """Refuse to write into a non-empty folder that is not an earlier synthetic scene (one
    with our ``scene.json``, or one whose writing was interrupted)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError("exists and is not a folder", out, "give a new folder for the scene")
    marker = out / "scene.json"
    ours = not any(out.iterdir()) or (out / _PARTIAL).is_file()
    if not ours and marker.is_file():
        try:
            ours = json.loads(marker.read_text()).get("generator") == GENERATOR
        except (OSError, json.JSONDecodeError, AttributeError):
            ours = False
    if not ours:
        raise InputError(
            "folder is not empty and holds no synthetic scene", out,
            "give an empty or new folder (make-scene only overwrites its own scenes)",
        )


def _remove_stale_frames(out: Path, n_frames: int) -> None:
    """Delete frames ``>= n_frames`` left by an earlier, longer scene in the same folder."""
    for sub, ext in (("color", "jpg"), ("depth", "png"), ("pose", "txt"), ("instance", "png")):
        for f in (out / sub).glob(f"*.{ext}"):
            if f.stem.isdigit() and int(f.stem) >= n_frames:
                f.unlink()
