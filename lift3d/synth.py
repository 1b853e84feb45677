"""Synthetic posed RGB-D scenes with ground truth, rendered on the CPU.

Two presets (``SceneConfig.preset``, :func:`preset_config`, ``make-scene --preset``):

* ``objects`` (the default): a square room (textured floor, four walls, a ceiling; label 0)
  holds ``n_objects`` objects of different shapes on the floor (IDs ``1..n``): boxes, spheres,
  cylinders, tori, cones and meshes built with trimesh (a capsule lying on its side, a lumpy
  icosphere, an extruded star). Some are painted in two colours so that a colour-based
  segmenter over-segments them.
* ``room``: furniture (:class:`RoomConfig`). A table (top + four legs) with chairs round it
  (seat + back + four legs) and small objects standing on it; along the walls, shelves (sides,
  boards, a back panel; boxes standing on the boards), cabinets with drawer fronts, two boxes
  side by side in contact, a floor lamp (base, pole, shade) and a few primitives. One object
  is one instance ID however many closed parts it is made of; parts may be painted in two
  colours, single-part objects in halves, stripes, a 3D checker or a noise texture, and wood
  has a grain. Floor, walls and ceiling stay background (0), as in ScanNet's instance
  benchmark, which scores neither wall nor floor (and ignores ground truth 0).

A hand-held camera orbits the room's middle with a sideways sweep of its gaze and seeded
jitter, so objects leave the view and come back. Frames are ray-cast with Open3D's
``RaycastingScene`` and shaded (Lambertian, one directional light with cast shadows, ambient,
mild sensor noise). Depth, normals, per-pixel labels and the ground-truth cloud all come from
the same triangles, so they agree exactly; cloud samples no camera can see (faces resting on
the floor, pressed against another part or a wall) are left out.

:func:`render_scene` returns everything in memory (:class:`SyntheticScene`);
:func:`make_scene` writes it in the ScanNet export layout (what SensReader writes)::

    out/color/<i>.jpg            RGB, JPEG quality 95
    out/depth/<i>.png            uint16 z-depth in millimetres, 0 = no hit / beyond range
    out/pose/<i>.txt             4x4 camera-to-world (OpenCV axes), metres
    out/instance/<i>.png         uint16 ground-truth instance IDs, 0 = background
    out/intrinsic/intrinsic_color.txt, intrinsic_depth.txt     4x4 (same K: registered)
    out/intrinsic/extrinsic_color.txt, extrinsic_depth.txt     4x4 identity
    out/gt_cloud.ply             labelled surface samples (label = instance ID, 0 = room)
    out/scene.json               seed, preset, sizes, objects, camera path, config; last

Frame ``i`` is named ``str(i)`` without padding. Conventions: world z up, metres; cameras
OpenCV (x right, y down, z forward); pixel ``(x, y)`` is the integer index of a pixel and the
ray of pixel ``(x, y)`` passes through ``K^-1 (x, y, 1)``, so a camera point projects to
``u = fx X / Z + cx`` and lands in pixel ``round(u)``. Same seed, same bytes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from lift3d.cameras import centred_intrinsics, look_at
from lift3d.errors import InputError, Lift3DError
from lift3d.io.atomic import write_json, write_text, write_with
from lift3d.io.outputs import write_label_png, write_ply
from lift3d.types import Frame, LabelledCloud, Lazy, Scene

GENERATOR = "lift3d.synth"
FORMAT_VERSION = 1
SHAPES = ("box", "sphere", "cylinder", "torus", "cone", "capsule", "blob", "star_prism")
PRESETS = ("objects", "room")
FURNITURE = ("table", "chair", "shelf", "cabinet", "lamp")
PATTERNS = ("plain", "halves", "stripes", "checker", "noise", "parts")
_PARTIAL = ".lift3d-synth-incomplete"  # present while a scene is being written
_STREAM_LAYOUT, _STREAM_CAMERA, _STREAM_CLOUD, _STREAM_NOISE = range(4)


@dataclass(frozen=True)
class RoomConfig:
    """The ``room`` preset's furniture. A ``(lo, hi)`` pair is a range drawn uniformly per
    scene (integers inclusive). Lengths in metres. Only read when ``SceneConfig.preset`` is
    ``room``."""

    table_length_m: tuple[float, float] = (1.1, 1.5)  # table top, long side
    table_width_m: tuple[float, float] = (0.7, 0.9)  # table top, short side
    table_height_m: tuple[float, float] = (0.72, 0.78)  # floor to the top's upper face
    table_offset_m: float = 0.15  # the table's centre lies this close to the room's axis
    board_m: float = 0.035  # thickness of table tops, seats, shelf boards and sides
    leg_m: float = 0.05  # side of the square section of table and chair legs
    n_chairs: tuple[int, int] = (2, 4)  # chairs round the table, at most one per side
    chair_seat_m: tuple[float, float] = (0.40, 0.46)  # side of the square seat
    chair_seat_height_m: float = 0.45  # floor to the seat's upper face
    chair_back_m: tuple[float, float] = (0.35, 0.50)  # height of the back above the seat
    chair_gap_m: tuple[float, float] = (0.06, 0.18)  # seat edge to the table's edge
    chair_turn_deg: float = 8.0  # chairs turn up to this much away from facing the table
    table_items: tuple[int, int] = (1, 3)  # small objects resting on the table top
    item_size_m: tuple[float, float] = (0.12, 0.22)  # footprint of a small object
    n_shelves: tuple[int, int] = (1, 2)  # shelves against the walls
    shelf_width_m: tuple[float, float] = (0.7, 1.1)
    shelf_depth_m: float = 0.32
    shelf_height_m: tuple[float, float] = (1.3, 1.8)
    shelf_boards: tuple[int, int] = (3, 5)  # horizontal boards, bottom and top included
    shelf_items: tuple[int, int] = (1, 3)  # boxes standing on the shelves' boards
    n_cabinets: tuple[int, int] = (1, 1)  # low cabinets with drawer fronts, against a wall
    cabinet_width_m: tuple[float, float] = (0.6, 1.0)
    cabinet_height_m: tuple[float, float] = (0.6, 0.9)
    cabinet_depth_m: float = 0.45
    drawers: tuple[int, int] = (2, 3)  # drawer fronts (a second part colour) on a cabinet
    n_box_pairs: tuple[int, int] = (1, 1)  # two boxes side by side, in contact, by a wall
    box_size_m: tuple[float, float] = (0.3, 0.5)
    n_lamps: tuple[int, int] = (1, 1)  # floor lamps (base, pole, shade) near a wall
    lamp_height_m: tuple[float, float] = (1.3, 1.6)
    n_floor_shapes: tuple[int, int] = (1, 2)  # primitives (SHAPES) on the floor by a wall
    wall_gap_m: tuple[float, float] = (0.0, 0.06)  # back of a wall piece to its wall
    corner_margin_m: float = 0.6  # wall pieces keep this far from the room's corners
    two_colour_fraction: float = 0.6  # share of objects painted in two colours (or parts)
    texture_cell_m: tuple[float, float] = (0.04, 0.08)  # checker cell, stripe, noise scale
    grain: float = 0.12  # amplitude of the wood grain on tables and shelves
    camera_clearance_m: float = 0.35  # least distance from the camera path to any object


@dataclass(frozen=True)
class SceneConfig:
    """Every knob of a synthetic scene. Lengths in metres, angles in degrees. The default is
    the ``objects`` preset; :func:`preset_config` gives the others."""

    preset: str = "objects"  # objects: primitives on the floor; room: furniture (PRESETS)
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
    room: RoomConfig = field(default_factory=RoomConfig)  # the room preset's furniture

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise Lift3DError(f"SceneConfig: unknown preset {self.preset!r}",
                              fix=f"use one of {', '.join(PRESETS)}")
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
    """One object (one instance ID), possibly made of several closed parts (a table's top and
    legs). ``colours``: 1 or 2 RGB uint8 triples; ``pattern`` (one of PATTERNS): ``plain``,
    ``halves`` (two sides of a plane through its middle, perpendicular to ``pattern_axis``),
    ``stripes`` (four bands along ``pattern_axis``), ``checker`` (3D checker of cells
    ``texture_m`` wide in the object's frame), ``noise`` (the two colours blended by a smooth
    noise of wavelength about ``texture_m``) or ``parts`` (each face painted
    ``colours[face_colour[face]]``). ``grain`` > 0 multiplies any pattern by 1 + grain x noise
    (wood grain).

    vertices (V, 3) float64 / faces (F, 3) int64 / vertex_normals (V, 3): the mesh in world
    coordinates (split at sharp edges, so interpolated normals shade edges crisply).
    rotation (3, 3), translation (3,): object frame -> world. centre, extent (3,): world AABB.
    face_part (F,) int64 or None (one part): the closed part each face belongs to.
    noise (k, 4) or None: noise waves in the object frame (3 wave-vector components in 1/m,
    a phase). support: ID of the object it rests on (0: the floor); wall: the wall it stands
    against (``wall_xn`` ...), or None.
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
    face_colour: np.ndarray | None = field(default=None, repr=False)
    face_part: np.ndarray | None = field(default=None, repr=False)
    texture_m: float = 0.05
    grain: float = 0.0
    noise: np.ndarray | None = field(default=None, repr=False)
    support: int = 0
    wall: str | None = None

    @property
    def centre(self) -> np.ndarray:
        return (self.vertices.min(0) + self.vertices.max(0)) / 2

    @property
    def extent(self) -> np.ndarray:
        return self.vertices.max(0) - self.vertices.min(0)

    @property
    def n_parts(self) -> int:
        return 1 if self.face_part is None else int(self.face_part.max()) + 1

    def part_meshes(self) -> list[tuple[np.ndarray, np.ndarray]]:
        """(vertices, faces) of each closed part (faces index the object's vertices)."""
        if self.face_part is None:
            return [(self.vertices, self.faces)]
        return [(self.vertices, self.faces[self.face_part == k]) for k in range(self.n_parts)]

    def to_json(self) -> dict:
        return {
            "id": self.id, "shape": self.shape, "colours": [list(c) for c in self.colours],
            "pattern": self.pattern, "centre": np.round(self.centre, 6).tolist(),
            "extent": np.round(self.extent, 6).tolist(), "parts": self.n_parts,
            "support": self.support, "wall": self.wall,
        }


@dataclass
class SyntheticScene:
    """A rendered scene in memory (its frames lists, or lazy sequences that render a frame
    when asked: ``render_scene(..., lazy=True)``).

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
    images: Sequence[np.ndarray]
    depths: Sequence[np.ndarray]
    instances: Sequence[np.ndarray]
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
            "preset": self.config.preset, "n_frames": len(self), "size": {"width": w, "height": h},
            "K": self.K.tolist(),
            "conventions": {
                "world": "z up, metres",
                "camera": "OpenCV axes (x right, y down, z forward); pose = camera-to-world",
                "pixels": "ray of integer pixel (x, y) passes through K^-1 (x, y, 1)",
                "depth": "uint16 millimetres of z, 0 = invalid",
                "instance": "uint16, 0 = background (floor, walls, ceiling); an object made "
                            "of several parts (a table's top and legs) is one ID",
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


# ----------------------------------------------------------------------------- room preset

_WALLS = {  # wall name -> inward unit normal (x, y); the wall plane is at -half_size * normal
    "wall_xn": (1.0, 0.0), "wall_xp": (-1.0, 0.0), "wall_yn": (0.0, 1.0), "wall_yp": (0.0, -1.0),
}
_ITEM_SHAPES = ("box", "cylinder", "sphere", "cone", "blob")  # small objects on a table
_N_NOISE_WAVES = 4  # sine waves summed into an object's noise texture


class _Parts:
    """Closed meshes of one object in its own frame (z up, resting on z = 0), each painted
    one colour index; :meth:`build` concatenates them."""

    def __init__(self) -> None:
        self.meshes: list = []
        self.colours: list[int] = []

    def add(self, mesh, colour: int = 0) -> None:
        self.meshes.append(mesh.smooth_shaded)
        self.colours.append(colour)

    def cuboid(self, lo, hi, colour: int = 0) -> None:
        """An axis-aligned box from corner ``lo`` to corner ``hi`` (object frame)."""
        import trimesh

        lo, hi = np.asarray(lo, np.float64), np.asarray(hi, np.float64)
        box = trimesh.creation.box(extents=hi - lo)
        box.apply_translation((lo + hi) / 2)
        self.add(box, colour)

    def cylinder(self, radius: float, z0: float, z1: float, colour: int = 0) -> None:
        import trimesh

        cyl = trimesh.creation.cylinder(radius=radius, height=z1 - z0, sections=40)
        cyl.apply_translation((0.0, 0.0, (z0 + z1) / 2))
        self.add(cyl, colour)

    def build(self) -> tuple[np.ndarray, ...]:
        """vertices (V, 3), faces (F, 3), vertex normals (V, 3), face colour (F,), face part
        (F,), in the object frame."""
        vs, fs, ns, fc, fp, n_v = [], [], [], [], [], 0
        for k, (mesh, colour) in enumerate(zip(self.meshes, self.colours, strict=True)):
            vs.append(np.asarray(mesh.vertices, np.float64))
            ns.append(np.asarray(mesh.vertex_normals, np.float64))
            fs.append(np.asarray(mesh.faces, np.int64) + n_v)
            fc.append(np.full(len(mesh.faces), colour, np.int64))
            fp.append(np.full(len(mesh.faces), k, np.int64))
            n_v += len(mesh.vertices)
        return tuple(np.concatenate(x) for x in (vs, fs, ns, fc, fp))


class _RoomBuilder:
    """Draws the room preset's objects one by one (IDs in order of creation)."""

    def __init__(self, cfg: SceneConfig, rng: np.random.Generator):
        self.cfg, self.rc, self.rng = cfg, cfg.room, rng
        self.objects: list[SceneObject] = []
        self._colours = _palette(128, rng)

    def uniform(self, lo_hi: tuple[float, float]) -> float:
        return float(self.rng.uniform(*lo_hi))

    def count(self, lo_hi: tuple[int, int]) -> int:
        return int(self.rng.integers(lo_hi[0], lo_hi[1] + 1))

    def colour(self, wood: bool = False) -> tuple[int, int, int]:
        """The next palette colour, or a wood tone."""
        if wood:
            base = np.array([0.55, 0.38, 0.22]) * self.rng.uniform(0.7, 1.25)
            c = np.clip(base + self.rng.normal(0, 0.03, 3), 0, 1)
        else:
            c = self._colours[len(self.objects) * 2 + int(self.rng.integers(2))]
        return tuple(int(x) for x in np.round(np.asarray(c) * 255))

    def two_colours(self) -> bool:
        return bool(self.rng.uniform() < self.rc.two_colour_fraction)

    def add(self, shape: str, parts: _Parts, yaw: float, t, colours: list, pattern: str,
            grain: float = 0.0, support: int = 0, wall: str | None = None) -> SceneObject:
        """Place ``parts`` (object frame) rotated by ``yaw`` about z and moved to ``t``."""
        v, f, n, fc, fp = parts.build()
        rot = _rot_z(yaw)
        t = np.asarray(t, np.float64)
        obj = SceneObject(
            id=len(self.objects) + 1, shape=shape, colours=colours, pattern=pattern,
            rotation=rot, translation=t, vertices=v @ rot.T + t, faces=f,
            vertex_normals=n @ rot.T, face_colour=fc, face_part=fp if fp.max() > 0 else None,
            texture_m=self.uniform(self.rc.texture_cell_m), grain=grain,
            noise=self._noise_waves(), support=support, wall=wall,
        )
        if pattern in ("halves", "stripes"):
            axis = 0 if pattern == "halves" else 2
            obj.pattern_axis = rot[:, axis].copy()
            obj.pattern_range = (float(v[:, axis].min()), float(v[:, axis].max()))
        self.objects.append(obj)
        return obj

    def _noise_waves(self) -> np.ndarray:
        """(k, 4): wave vectors (1/m, wavelength ~ 2-4 texture cells) and phases."""
        d = self.rng.normal(size=(_N_NOISE_WAVES, 3))
        d /= np.linalg.norm(d, axis=1, keepdims=True)
        freq = 2 * np.pi / (self.uniform(self.rc.texture_cell_m) * self.rng.uniform(
            2.0, 4.0, (_N_NOISE_WAVES, 1)))
        return np.hstack([d * freq, self.rng.uniform(0, 2 * np.pi, (_N_NOISE_WAVES, 1))])

    def single(self, shape: str, mesh, yaw: float, t, support: int = 0,
               wall: str | None = None) -> SceneObject:
        """A one-part object: plain, or two-coloured (halves, stripes, checker, noise)."""
        parts = _Parts()
        parts.add(mesh)
        pattern = "plain"
        if self.two_colours():
            pattern = str(self.rng.choice(("halves", "stripes", "checker", "noise")))
        cols = [self.colour()] + ([self.colour()] if pattern != "plain" else [])
        return self.add(shape, parts, yaw, t, cols, pattern, support=support, wall=wall)

    def compound(self, shape: str, parts: _Parts, yaw: float, t, wood: bool = False,
                 wall: str | None = None) -> SceneObject:
        """A several-part object: its parts in one colour, or in two (``parts``)."""
        two = self.two_colours()
        cols = [self.colour(wood)] + ([self.colour()] if two else [])
        if not two:
            parts.colours = [0] * len(parts.colours)
        return self.add(shape, parts, yaw, t, cols, "parts" if two else "plain",
                        grain=self.rc.grain if wood else 0.0, wall=wall)

    # -- furniture, in the object frame ------------------------------------------------

    def table(self) -> SceneObject:
        rc = self.rc
        L, W, H = (self.uniform(rc.table_length_m), self.uniform(rc.table_width_m),
                   self.uniform(rc.table_height_m))
        parts = _Parts()
        parts.cuboid((-L / 2, -W / 2, H - rc.board_m), (L / 2, W / 2, H), 0)
        inset = 0.04 + rc.leg_m / 2
        for sx in (-1, 1):
            for sy in (-1, 1):
                x, y = sx * (L / 2 - inset), sy * (W / 2 - inset)
                parts.cuboid((x - rc.leg_m / 2, y - rc.leg_m / 2, 0.0),
                             (x + rc.leg_m / 2, y + rc.leg_m / 2, H - rc.board_m), 1)
        r = rc.table_offset_m * np.sqrt(self.rng.uniform())
        a = self.rng.uniform(0, 2 * np.pi)
        table = self.compound("table", parts, float(self.rng.uniform(0, np.pi)),
                              (r * np.cos(a), r * np.sin(a), 0.0), wood=True)
        table_dims = (L, W, H)
        self._chairs(table, table_dims)
        self._table_items(table, table_dims)
        return table

    def _chairs(self, table: SceneObject, dims: tuple[float, float, float]) -> None:
        rc = self.rc
        L, W, _ = dims
        sides = self.rng.permutation(4)[: min(self.count(rc.n_chairs), 4)]
        yaw_t = float(np.arctan2(table.rotation[1, 0], table.rotation[0, 0]))
        for side in sides:
            S = self.uniform(rc.chair_seat_m)
            hs, b = rc.chair_seat_height_m, rc.board_m
            parts = _Parts()
            parts.cuboid((-S / 2, -S / 2, hs - b), (S / 2, S / 2, hs), 0)
            parts.cuboid((-S / 2, S / 2 - 0.03, hs), (S / 2, S / 2, hs + self.uniform(
                rc.chair_back_m)), 0)
            leg = rc.leg_m * 0.7
            for sx in (-1, 1):
                for sy in (-1, 1):
                    x, y = sx * (S / 2 - 0.02 - leg / 2), sy * (S / 2 - 0.02 - leg / 2)
                    parts.cuboid((x - leg / 2, y - leg / 2, 0.0), (x + leg / 2, y + leg / 2,
                                                                  hs - b), 1)
            out = float(side) * np.pi / 2  # direction from the table's centre, table frame
            half = L / 2 if side % 2 == 0 else W / 2
            dist = half + self.uniform(rc.chair_gap_m) + S / 2
            d = table.rotation @ np.array([np.cos(out), np.sin(out), 0.0])
            t = table.translation + dist * d
            turn = np.radians(self.rng.uniform(-rc.chair_turn_deg, rc.chair_turn_deg))
            # local +y (the back) points away from the table
            self.compound("chair", parts, yaw_t + out - np.pi / 2 + turn, t)

    def _table_items(self, table: SceneObject, dims: tuple[float, float, float]) -> None:
        L, W, H = dims
        placed: list[tuple[np.ndarray, float]] = []
        for _ in range(self.count(self.rc.table_items)):
            shape = str(self.rng.choice(_ITEM_SHAPES))
            mesh = _shape_mesh(shape, self.uniform(self.rc.item_size_m), self.rng)
            v = np.asarray(mesh.vertices)
            r = float(np.linalg.norm(v[:, :2], axis=1).max())
            xy = self._free_rect_spot(L / 2 - r - 0.02, W / 2 - r - 0.02, r, placed)
            if xy is None:
                continue
            placed.append((xy, r))
            t = table.translation + table.rotation @ np.array([xy[0], xy[1], 0.0])
            t[2] = H - v[:, 2].min()
            self.single(shape, mesh, float(self.rng.uniform(0, 2 * np.pi)), t,
                        support=table.id)

    def _free_rect_spot(self, hx: float, hy: float, r: float, placed) -> np.ndarray | None:
        """A point in [-hx, hx] x [-hy, hy] whose disc of radius r clears ``placed``."""
        if hx <= 0 or hy <= 0:
            return None
        for _ in range(200):
            xy = self.rng.uniform((-hx, -hy), (hx, hy))
            if all(np.linalg.norm(xy - p) > r + q + 0.03 for p, q in placed):
                return xy
        return None

    def shelf(self) -> tuple[_Parts, float, float, dict]:
        rc = self.rc
        w, d, h, b = (self.uniform(rc.shelf_width_m), rc.shelf_depth_m,
                      self.uniform(rc.shelf_height_m), rc.board_m)
        parts = _Parts()
        for sx in (-1, 1):
            parts.cuboid((sx * w / 2 - (b if sx > 0 else 0), 0.0, 0.0),
                         (sx * w / 2 + (b if sx < 0 else 0), d, h), 0)
        back = 0.012
        parts.cuboid((-w / 2 + b, 0.0, 0.0), (w / 2 - b, back, h), 1)
        n = self.count(rc.shelf_boards)
        tops = np.linspace(b, h, n)  # upper faces of the boards
        for z in tops:
            parts.cuboid((-w / 2 + b, back, z - b), (w / 2 - b, d, z), 0)
        return parts, w, d, {"tops": tops, "inner": (w / 2 - b, d, back)}

    def cabinet(self) -> tuple[_Parts, float, float, dict]:
        rc = self.rc
        w, h, d = self.uniform(rc.cabinet_width_m), self.uniform(rc.cabinet_height_m), \
            rc.cabinet_depth_m
        parts = _Parts()
        parts.cuboid((-w / 2, 0.0, 0.0), (w / 2, d, h), 0)
        n = self.count(rc.drawers)
        edges = np.linspace(0.06, h - 0.03, n + 1)
        for z0, z1 in zip(edges[:-1], edges[1:], strict=True):
            parts.cuboid((-w / 2 + 0.03, d, z0 + 0.015), (w / 2 - 0.03, d + 0.015, z1 - 0.015), 1)
        return parts, w, d + 0.015, {}

    def lamp(self) -> tuple[_Parts, float, float, dict]:
        h = self.uniform(self.rc.lamp_height_m)
        shade_r, shade_h, base_r = 0.17, 0.25, 0.14
        parts = _Parts()
        parts.cylinder(base_r, 0.0, 0.03, 0)
        parts.cylinder(0.012, 0.03, h - shade_h, 0)
        parts.cylinder(shade_r, h - shade_h, h, 1)
        # the pole's centre stands off the wall by the shade's radius and a margin
        for m in parts.meshes:
            m.apply_translation((0.0, shade_r + 0.05, 0.0))
        return parts, 2 * shade_r, 2 * shade_r + 0.05, {}


def _place_room(cfg: SceneConfig, rng: np.random.Generator) -> list[SceneObject]:
    """The room preset's objects: a table with chairs and small objects on it in the middle;
    shelves (with boxes on their boards), cabinets, box pairs in contact, floor lamps and a
    few primitives along the walls."""
    rc = cfg.room
    bld = _RoomBuilder(cfg, rng)
    bld.table()
    pieces: list[str] = (["shelf"] * bld.count(rc.n_shelves) + ["cabinet"] * bld.count(
        rc.n_cabinets) + ["box_pair"] * bld.count(rc.n_box_pairs) + ["lamp"] * bld.count(
        rc.n_lamps) + ["shape"] * bld.count(rc.n_floor_shapes))
    slots: dict[str, list[tuple[float, float]]] = {w: [] for w in _WALLS}
    for kind in rng.permutation(pieces):
        _place_wall_piece(bld, str(kind), slots)
    return bld.objects


def _wall_frame(cfg: SceneConfig, wall: str, x: float, gap: float) -> tuple[float, np.ndarray]:
    """yaw and translation of a wall piece whose back (object frame y = 0) stands ``gap``
    from ``wall``, centred at ``x`` along it (object frame +y points into the room)."""
    n = np.asarray(_WALLS[wall])
    yaw = float(np.arctan2(n[1], n[0]) - np.pi / 2)
    along = _rot_z(yaw)[:2, 0]
    xy = -(cfg.room_size_m / 2) * n + x * along + gap * n
    return yaw, np.array([xy[0], xy[1], 0.0])


def _wall_slot(bld: _RoomBuilder, width: float, slots) -> tuple[str, float]:
    """A wall and a position along it where a piece ``width`` wide clears the others."""
    cfg = bld.cfg
    half = cfg.room_size_m / 2 - bld.rc.corner_margin_m - width / 2
    for _ in range(500):
        wall = str(bld.rng.choice(list(_WALLS)))
        if half <= 0:
            break
        x = float(bld.rng.uniform(-half, half))
        if all(abs(x - c) > (width + w2) / 2 + cfg.min_gap_m for c, w2 in slots[wall]):
            slots[wall].append((x, width))
            return wall, x
    raise Lift3DError(
        f"cannot place the room's furniture along the walls of a {cfg.room_size_m} m room",
        fix="use a bigger room_size_m or fewer wall pieces (RoomConfig)",
    )


def _place_wall_piece(bld: _RoomBuilder, kind: str, slots) -> None:
    rc = bld.rc
    gap = bld.uniform(rc.wall_gap_m)
    if kind in ("shelf", "cabinet", "lamp"):
        parts, width, _, info = getattr(bld, kind)()
        wall, x = _wall_slot(bld, width, slots)
        yaw, t = _wall_frame(bld.cfg, wall, x, 0.0 if kind != "lamp" else gap)
        obj = bld.compound(kind, parts, yaw, t, wood=kind == "shelf", wall=wall)
        if kind == "shelf":
            _shelf_items(bld, obj, info)
        return
    if kind == "box_pair":
        sizes = [bld.rng.uniform(*rc.box_size_m, 3) * (1.0, 0.8, 0.9) for _ in range(2)]
        width = sizes[0][0] + sizes[1][0]
        wall, x = _wall_slot(bld, width, slots)
        yaw, t = _wall_frame(bld.cfg, wall, x, gap)
        left = -width / 2
        for w, d, h in sizes:  # side by side, faces in contact
            parts = _Parts()
            parts.cuboid((left, 0.0, 0.0), (left + w, d, h))
            left += w
            bld.single("box", parts.meshes[0], yaw, t, wall=wall)
        return
    shape = str(bld.rng.choice(SHAPES))
    mesh = _shape_mesh(shape, bld.uniform(bld.cfg.object_size_m), bld.rng)
    tilt = _rot_x(np.pi / 2) if shape == "capsule" else np.eye(3)
    v = np.asarray(mesh.vertices) @ tilt.T
    r = float(np.linalg.norm(v[:, :2], axis=1).max())
    wall, x = _wall_slot(bld, 2 * r, slots)
    yaw, t = _wall_frame(bld.cfg, wall, x, gap + r)
    mesh.vertices = v  # lying down: the capsule's axis is horizontal
    t[2] = -v[:, 2].min()
    bld.single(shape, mesh, yaw, t, wall=wall)


def _shelf_items(bld: _RoomBuilder, shelf: SceneObject, info: dict) -> None:
    """Boxes standing on the shelf's boards (books, storage boxes), apart from each other."""
    tops = info["tops"]
    hx, depth, back = info["inner"]
    spacing = tops[1] - tops[0] - bld.rc.board_m
    used: dict[int, list[tuple[float, float]]] = {}
    for _ in range(bld.count(bld.rc.shelf_items)):
        level = int(bld.rng.integers(len(tops)))
        max_h = spacing - 0.04 if level < len(tops) - 1 else 0.3
        w = float(bld.rng.uniform(0.08, min(0.3, hx)))
        d = float(bld.rng.uniform(0.15, depth - back - 0.02))
        h = float(bld.rng.uniform(0.5, 1.0) * max_h)
        if h < 0.05:
            continue
        for _ in range(50):
            x = float(bld.rng.uniform(-hx + w / 2 + 0.01, hx - w / 2 - 0.01))
            if all(abs(x - c) > (w + w2) / 2 + 0.02 for c, w2 in used.get(level, [])):
                break
        else:
            continue
        used.setdefault(level, []).append((x, w))
        parts = _Parts()
        y0 = back + 0.01
        parts.cuboid((x - w / 2, y0, 0.0), (x + w / 2, y0 + d, h))
        yaw = float(np.arctan2(shelf.rotation[1, 0], shelf.rotation[0, 0]))
        t = shelf.translation + np.array([0.0, 0.0, tops[level]])
        bld.single("box", parts.meshes[0], yaw, t, support=shelf.id, wall=None)


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


def _object_albedo(obj: SceneObject, p: np.ndarray, face: np.ndarray | None = None) -> np.ndarray:
    """(N, 3) albedo in [0, 1] of ``obj`` at world points ``p`` (N, 3) on its surface;
    ``face`` (N,): the object's face under each point (needed by the ``parts`` pattern)."""
    cols = np.asarray(obj.colours, np.float64) / 255.0
    local = (p - obj.translation) @ obj.rotation  # object-frame coordinates
    if obj.pattern == "plain":
        out = np.broadcast_to(cols[0], (len(p), 3)).copy()
    elif obj.pattern == "parts":
        if face is None:
            raise ValueError("the parts pattern needs the face of every point")
        out = cols[obj.face_colour[face]]
    elif obj.pattern in ("halves", "stripes"):
        s = (p - obj.translation) @ obj.pattern_axis  # object-frame coordinate, world units
        lo, hi = obj.pattern_range
        u = np.clip((s - lo) / max(hi - lo, 1e-9), 0.0, 0.999)  # end caps stay in one band
        second = u > 0.5 if obj.pattern == "halves" else np.floor(u * 4).astype(int) % 2 == 1
        out = np.where(second[:, None], cols[1], cols[0])
    elif obj.pattern == "checker":
        # a quarter-cell offset keeps faces at whole multiples of the cell off cell borders
        cell = np.floor(local / obj.texture_m + 0.25).astype(np.int64).sum(1)
        out = np.where((cell % 2 == 1)[:, None], cols[1], cols[0])
    elif obj.pattern == "noise":
        w = np.clip(0.5 + 1.5 * _noise(obj, local), 0.0, 1.0)[:, None]
        out = (1 - w) * cols[0] + w * cols[1]
    else:
        raise ValueError(f"unknown pattern {obj.pattern!r}")
    if obj.grain > 0:
        out = out * (1 + obj.grain * _noise(obj, local * (1.0, 1.0, 6.0)))[:, None]
    return out


def _noise(obj: SceneObject, local: np.ndarray) -> np.ndarray:
    """(N,) smooth noise in about [-1, 1] at object-frame points ``local`` (N, 3)."""
    if obj.noise is None:
        return np.zeros(len(local))
    return np.sin(local @ obj.noise[:, :3].T + obj.noise[:, 3]).mean(1)


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

    def albedo(self, p: np.ndarray, gid: np.ndarray, prim: np.ndarray) -> np.ndarray:
        """(N, 3) albedo in [0, 1] at world points ``p`` on geometries ``gid`` (-1: black),
        triangles ``prim`` of those geometries."""
        out = np.zeros((len(p), 3))
        for g, kind in enumerate(self.kinds):  # one pass per surface, vectorised within
            m = gid == g
            if not m.any():
                continue
            if kind == "object":
                out[m] = _object_albedo(self.objects[self.labels[g] - 1], p[m], prim[m])
            else:
                out[m] = _room_albedo(kind, p[m], self.cfg)
        return out


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
    poses = [look_at(eye[i], target[i], roll=roll[i]) for i in range(n)]
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
    rgb = world.albedo(p, np.where(ok, hit["gid"], -1), hit["prim"]) * shade[:, None] * 255.0
    rgb = rgb + noise_rng.normal(0, cfg.noise_std, rgb.shape)
    image = np.clip(np.round(rgb), 0, 255).astype(np.uint8).reshape(h, w, 3)
    depth = (np.round(z * 1000.0) / 1000.0).astype(np.float32).reshape(h, w)
    labels = world.label_of[np.where(ok, hit["gid"], -1)].reshape(h, w)
    return image, depth, labels


# ----------------------------------------------------------------------------- ground truth


def _sample_surface(v: np.ndarray, f: np.ndarray, density: float,
                    rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Area-uniform samples on a mesh: points (N, 3), face normals (N, 3), faces (N,)."""
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    cross = np.cross(b - a, c - a)
    area = np.linalg.norm(cross, axis=1) / 2
    n = max(1, int(round(area.sum() * density)))
    face = rng.choice(len(f), n, p=area / area.sum())
    r1, r2 = rng.uniform(size=(2, n, 1))
    s = np.sqrt(r1)
    pts = (1 - s) * a[face] + s * (1 - r2) * b[face] + s * r2 * c[face]
    nrm = cross[face] / np.maximum(2 * area[face, None], 1e-12)
    return pts, nrm, face


def _gt_cloud(world: _World, cfg: SceneConfig, seed: int) -> LabelledCloud:
    """Surface samples of every object (label = ID) and of the room (label 0). Object faces
    no camera can see are left out: those resting on the floor, and those pressed against
    another part or a wall (a box's bottom on a table, a table's top under the box, the
    touching faces of two boxes side by side, a shelf's back against its wall)."""
    rng = np.random.default_rng([seed, _STREAM_CLOUD])
    pts, nrm, gids, faces = [], [], [], []
    parts = [(k, v, f) for k, v, f in _room_meshes(cfg)]
    parts += [("object", o.vertices, o.faces) for o in world.objects]
    for g, (kind, v, f) in enumerate(parts):
        dens = cfg.object_points_per_m2 if kind == "object" else cfg.room_points_per_m2
        p, n, face = _sample_surface(v, f, dens, rng)
        if kind == "object":
            keep = ~((p[:, 2] < 2e-3) & (n[:, 2] < -0.9))
            keep &= ~_in_contact(world, g, p, n, face, cfg)
            p, n, face = p[keep], n[keep], face[keep]
        pts.append(p)
        nrm.append(n)
        gids.append(np.full(len(p), g))
        faces.append(face)
    p, n, g = np.concatenate(pts), np.concatenate(nrm), np.concatenate(gids)
    colours = world.albedo(p, g, np.concatenate(faces))
    colours = np.clip(np.round(colours * 255), 0, 255).astype(np.uint8)
    return LabelledCloud(
        points=p.astype(np.float32), colors=colours, normals=n.astype(np.float32),
        labels=world.label_of[g].astype(np.int32), label_conf=np.ones(len(p), np.float32),
        n_obs=np.ones(len(p), np.int32),
    )


_CONTACT_PROBE_M = 1e-3  # how far outside its face a sample is probed for a touching solid


def _in_contact(world: _World, gid: int, p: np.ndarray, n: np.ndarray, face: np.ndarray,
                cfg: SceneConfig) -> np.ndarray:
    """(N,) bool: samples ``p`` (normals ``n``, faces ``face``) of object geometry ``gid``
    whose outside, probed ``_CONTACT_PROBE_M`` along the normal, lies inside another closed
    part (of any object, this one's included) or behind a wall."""
    import open3d as o3d

    q = p + _CONTACT_PROBE_M * n
    hidden = (np.abs(q[:, :2]) > cfg.room_size_m / 2).any(1)
    obj = world.objects[world.labels[gid] - 1]
    own_part = np.zeros(len(p), np.int64) if obj.face_part is None else obj.face_part[face]
    for other in world.objects:
        for k, (v, f) in enumerate(other.part_meshes()):
            lo, hi = v[np.unique(f)].min(0), v[np.unique(f)].max(0)
            cand = ~hidden & np.all((q >= lo) & (q <= hi), axis=1)
            if other is obj:
                cand &= own_part != k
            if not cand.any():
                continue
            rc = o3d.t.geometry.RaycastingScene()
            rc.add_triangles(o3d.core.Tensor(v.astype(np.float32)),
                             o3d.core.Tensor(f.astype(np.uint32)))
            inside = rc.compute_occupancy(o3d.core.Tensor(q[cand].astype(np.float32)))
            hidden[np.flatnonzero(cand)[inside.numpy() > 0]] = True
    return hidden


# ----------------------------------------------------------------------------- public API


_PRESET_OVERRIDES: dict[str, dict] = {
    "objects": {},  # SceneConfig's defaults
    # a bigger room whose walls carry furniture; the camera stays clear of the furniture
    # (RoomConfig.camera_clearance_m), a little higher, looking at the table's height
    "room": {"room_size_m": 7.0, "orbit_radius_m": 2.3, "orbit_height_m": 1.5,
             "target_height_m": 0.5, "sway_m": 1.0, "object_size_m": (0.25, 0.45)},
}


def preset_config(preset: str = "objects", **overrides) -> SceneConfig:
    """The SceneConfig of a preset (PRESETS), with ``overrides`` of any of its fields."""
    if preset not in PRESETS:
        raise Lift3DError(f"unknown scene preset {preset!r}", fix=f"use one of {', '.join(PRESETS)}")
    return SceneConfig(preset=preset, **{**_PRESET_OVERRIDES[preset], **overrides})


def render_scene(seed: int = 0, n_frames: int = 30, width: int = 320, height: int = 240,
                 config: SceneConfig | None = None, lazy: bool = False) -> SyntheticScene:
    """Build and render a synthetic scene in memory; deterministic for ``seed``.

    lazy: render each frame when it is asked for and keep only the last one (images, depths
    and instances are then lazy sequences), so that writing a long scene takes the memory of
    one frame; the same pixels as rendering all at once (default False)."""
    cfg = config or SceneConfig()
    if n_frames < 1 or width < 8 or height < 8:
        raise Lift3DError(
            f"render_scene: need n_frames >= 1 and an image of at least 8x8 pixels, got "
            f"n_frames={n_frames}, {width}x{height}"
        )
    place = _place_room if cfg.preset == "room" else _place_objects
    objects = place(cfg, np.random.default_rng([seed, _STREAM_LAYOUT]))
    world = _World(cfg, objects)
    K = centred_intrinsics(height, width, cfg.fov_x_deg)
    poses, camera = _camera_path(cfg, n_frames, seed)

    def render(i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        noise_rng = np.random.default_rng([seed, _STREAM_NOISE, i])  # one stream per frame
        return _render_frame(world, poses[i], K, (height, width), noise_rng)

    if lazy:
        frames = Lazy(len(poses), render, keep=1)
        # per-frame views of one item of each rendered (image, depth, instances)
        images, depths, instances = (Lazy(len(frames), lambda i, k=k: frames[i][k], keep=0)
                                     for k in range(3))
    else:
        images, depths, instances = (list(c) for c in zip(*map(render, range(len(poses))),
                                                          strict=True))
    cloud = _gt_cloud(world, cfg, seed)
    if cfg.preset == "room":
        _check_clearance(cloud, poses, cfg.room.camera_clearance_m)
    return SyntheticScene(
        seed=seed, config=cfg, images=images, depths=depths, instances=instances, poses=poses,
        K=K, objects=objects, cloud=cloud, camera=camera,
    )


def _check_clearance(cloud: LabelledCloud, poses: list[np.ndarray], clearance: float) -> None:
    """Refuse a camera path that passes closer than ``clearance`` to an object's surface."""
    from scipy.spatial import cKDTree

    eyes = np.array([p[:3, 3] for p in poses])
    dist, _ = cKDTree(cloud.points[cloud.labels > 0]).query(eyes)
    if dist.min() < clearance:
        raise Lift3DError(
            f"the camera passes {dist.min():.2f} m from an object (less than "
            f"camera_clearance_m={clearance})", fix="use a bigger room or a smaller orbit",
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
    doc = scene.describe()  # before the frames: a lazy scene renders frame 0 once, not twice
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
    write_json(marker, doc)
    (out / _PARTIAL).unlink()
    return out


def make_scene(out_dir: str | Path, seed: int = 0, n_frames: int = 30, width: int = 320,
               height: int = 240, config: SceneConfig | None = None) -> Path:
    """Render a synthetic scene and write it to ``out_dir`` (ScanNet export layout plus
    ground truth); returns ``out_dir``. Same arguments, byte-identical files. ``config``:
    default the ``objects`` preset; ``preset_config("room")`` for furniture. Each frame is
    written as it is rendered (memory of one frame, whatever ``n_frames``)."""
    out = Path(out_dir)
    _check_target(out)
    return write_scene(render_scene(seed, n_frames, width, height, config, lazy=True), out)


def ensure_example(path: str | Path = "examples/scene0", seed: int = 0) -> Path:
    """Return ``path`` (relative to the working directory), generating the bundled example
    scene there first (30 frames, 320x240) unless a complete one is already there."""
    path = Path(path)
    if not (path / "scene.json").is_file():
        make_scene(path, seed=seed)
    return path


def generated_scene(path: str | Path) -> dict | None:
    """The ``scene.json`` of a scene this generator wrote in ``path`` (its seed, preset,
    objects, ...), or None when ``path`` holds none (missing, unreadable, another's)."""
    try:
        doc = json.loads((Path(path) / "scene.json").read_text())
    except (OSError, ValueError):  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        return None
    return doc if isinstance(doc, dict) and doc.get("generator") == GENERATOR else None


def _check_target(out: Path) -> None:
    """Refuse to write into a non-empty folder that is not an earlier synthetic scene (one
    with our ``scene.json``, or one whose writing was interrupted)."""
    if not out.exists():
        return
    if not out.is_dir():
        raise InputError("exists and is not a folder", out, "give a new folder for the scene")
    ours = not any(out.iterdir()) or (out / _PARTIAL).is_file()
    if not ours and generated_scene(out) is None:
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
