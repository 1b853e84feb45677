"""``lift3d export OUT --to colmap``: a COLMAP model (text and binary) beside ``images/``.

Layout (what 3D Gaussian splatting's, gsplat's and nerfstudio's COLMAP loaders read; they
read the binary files when present, COLMAP's own tools either)::

    DEST/images/<stem>.<ext>         copies of the source images
    DEST/sparse/0/cameras.txt|bin    CAMERA_ID PINHOLE WIDTH HEIGHT fx fy cx cy   (one per frame)
    DEST/sparse/0/images.txt|bin     IMAGE_ID QW QX QY QZ TX TY TZ CAMERA_ID NAME, then the
                                     image's POINTS2D (X, Y, POINT3D_ID)
    DEST/sparse/0/points3D.txt|bin   POINT3D_ID X Y Z R G B ERROR TRACK[] (IMAGE_ID, POINT2D_IDX)
    DEST/sparse/0/points3D.ply       the labelled cloud; 3DGS reads this file first when present

Observations (POINTS2D and tracks) are real: each image observes, in every cell of
``TrackConfig.cell_px`` pixels, one cloud point on the visible surface (within
``surface_slack`` of the cell's nearest point; the one of lowest index, so that the same point
is picked in every view and tracks span views), unless a neighbouring cell holds a clearly
nearer point (the cloud has a hole there: what shows through it is occluded). X, Y are the
point's exact projection, so the reprojection error is 0. gsplat's
depth supervision (``load_depths=True``) reads the depths of these points per image.

Conventions converted here (see :mod:`lift3d.export.base`): the pose is world-to-camera in
OpenCV axes, the quaternion is (w, x, y, z) with w >= 0, and the principal point moves by +0.5
px because COLMAP puts the centre of the top-left pixel at (0.5, 0.5).

3D Gaussian splatting's own loader ignores cx, cy (it builds a centred projection from the
field of view), so a principal point far from the image centre shifts its renders; gsplat and
nerfstudio use cx, cy. :func:`export_colmap` returns that offset so callers can warn.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lift3d.export.base import (
    PIXEL_CENTRE_SHIFT,
    ExportFrame,
    OutputFolder,
    copy_images,
    load_output,
    pinhole_params,
    project,
    rotmat_to_qvec,
    world_to_camera,
)
from lift3d.io.atomic import write_bytes, write_text
from lift3d.io.outputs import write_ply

PINHOLE_MODEL_ID = 1  # COLMAP's camera model ID of PINHOLE (fx, fy, cx, cy)
INVALID_POINT3D_ID = np.iinfo(np.uint64).max  # COLMAP's "no 3D point" in binary files
Tracks = tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]
"""(point, image_id, point2D_idx) of every observation sorted by point, each point's track
length: :func:`group_tracks`."""


@dataclass(frozen=True)
class TrackConfig:
    """Which cloud points each exported image observes (its POINTS2D, the points' tracks)."""

    cell_px: int = 4
    """One observation per cell of cell_px x cell_px pixels: the nearest cloud point in it
    (a 320x240 image gets at most 4800, about what SfM keeps as keypoints)."""
    occlusion_slack: float = 0.1
    """A cell's nearest point is occluded when it lies more than this share deeper than the
    nearest point of a neighbouring cell (a hole in the cloud shows what is behind)."""
    surface_slack: float = 0.02
    """Points at most this share deeper than a cell's nearest lie on the visible surface;
    the cell observes the one of lowest index among them."""


@dataclass
class Observations:
    """What one image observes: point (M,) int64 indices into the cloud, xy (M, 2) float64
    their projections in COLMAP pixel coordinates (top-left pixel centre at (0.5, 0.5))."""

    point: np.ndarray
    xy: np.ndarray


def export_colmap(out_dir: str | Path, dest: str | Path, points_txt: bool = True) -> Path:
    """Write the COLMAP layout of an output folder into ``dest``; returns ``dest/sparse/0``.

    points_txt: also write ``points3D.txt`` (text, slow for millions of points); the binary
    model and the PLY beside it are always written.
    """
    out = load_output(out_dir)
    return write_colmap_model(out, Path(dest), points_txt=points_txt)


def write_colmap_model(out: OutputFolder, dest: Path, points_txt: bool = True,
                       tracks: TrackConfig | None = None,
                       image_names: list[str] | None = None) -> Path:
    """Write images/ (unless ``image_names`` says they are written already) and sparse/0/,
    text and binary, for an already loaded output folder."""
    names = image_names if image_names is not None else copy_images(out.frames, dest / "images")
    obs = [observe(out.cloud.points, f, tracks or TrackConfig()) for f in out.frames]
    grouped = group_tracks(obs, len(out.cloud))  # once for the text and the binary model
    sparse = dest / "sparse" / "0"
    write_text(sparse / "cameras.txt", cameras_txt(out))
    write_text(sparse / "images.txt", images_txt(out, names, obs))
    if points_txt:
        write_text(sparse / "points3D.txt", points3d_txt(out, obs, grouped))
    write_bytes(sparse / "cameras.bin", cameras_bin(out))
    write_bytes(sparse / "images.bin", images_bin(out, names, obs))
    write_bytes(sparse / "points3D.bin", points3d_bin(out, obs, grouped))
    write_ply(sparse / "points3D.ply", out.cloud)
    return sparse


def observe(points: np.ndarray, frame: ExportFrame, cfg: TrackConfig) -> Observations:
    """The cloud points (N, 3) that ``frame`` observes (module docstring), cell by cell in
    row-major order."""
    from scipy.ndimage import minimum_filter

    uv, z = project(points, frame.K, world_to_camera(frame.cam_to_world))
    with np.errstate(invalid="ignore"):
        ok = (z > 0) & np.all(np.isfinite(uv), 1) & (uv[:, 0] >= -0.5) & (uv[:, 1] >= -0.5) \
            & (uv[:, 0] < frame.width - 0.5) & (uv[:, 1] < frame.height - 0.5)
    idx = np.flatnonzero(ok)
    px = np.floor(uv[idx] + 0.5).astype(np.int64)  # pixel index (K's integer = pixel centre)
    cells_x = -(-frame.width // cfg.cell_px)
    cells_y = -(-frame.height // cfg.cell_px)
    cell = (px[:, 1] // cfg.cell_px) * cells_x + px[:, 0] // cfg.cell_px
    nearest = np.full(cells_x * cells_y, np.inf)
    np.minimum.at(nearest, cell, z[idx])
    around = minimum_filter(nearest.reshape(cells_y, cells_x), size=3, mode="constant",
                            cval=np.inf).ravel()
    # the visible surface of each cell, not clearly behind a neighbouring cell's
    near = (z[idx] <= nearest[cell] * (1 + cfg.surface_slack)) \
        & (nearest[cell] <= around[cell] * (1 + cfg.occlusion_slack))
    idx, cell = idx[near], cell[near]
    # of those, the lowest point index: a point wins its cell in every view that sees it
    # unopposed, so tracks span views
    order = np.lexsort((idx, cell))
    first = np.r_[True, cell[order][1:] != cell[order][:-1]] if len(order) else order > 0
    win = idx[order[first]]
    return Observations(point=win.astype(np.int64), xy=uv[win] + PIXEL_CENTRE_SHIFT)


def group_tracks(obs: list[Observations], n_points: int) -> Tracks:
    """Observations grouped by point: (point, image_id, point2D_idx) sorted by point, and
    each point's track length (n_points,)."""
    point = np.concatenate([o.point for o in obs]) if obs else np.zeros(0, np.int64)
    image = np.concatenate([np.full(len(o.point), i + 1) for i, o in enumerate(obs)]) \
        if obs else np.zeros(0, np.int64)
    p2d = np.concatenate([np.arange(len(o.point)) for o in obs]) if obs else image
    order = np.argsort(point, kind="stable")
    return point[order], image[order], p2d[order], np.bincount(point, minlength=n_points)


def cameras_txt(out: OutputFolder) -> str:
    """cameras.txt: one PINHOLE camera per frame, CAMERA_ID = frame index + 1."""
    lines = [
        "# Camera list with one line of data per camera:",
        "#   CAMERA_ID, MODEL, WIDTH, HEIGHT, PARAMS[]",
        f"# Number of cameras: {len(out.frames)}",
    ]
    for i, f in enumerate(out.frames):
        fx, fy, cx, cy = pinhole_params(f.K)
        lines.append(f"{i + 1} PINHOLE {f.width} {f.height} {fx!r} {fy!r} {cx!r} {cy!r}")
    return "\n".join(lines) + "\n"


def images_txt(out: OutputFolder, names: list[str], obs: list[Observations]) -> str:
    """images.txt: world-to-camera pose per frame, then its POINTS2D (X, Y, POINT3D_ID)."""
    mean = np.mean([len(o.point) for o in obs]) if obs else 0.0
    lines = [
        "# Image list with two lines of data per image:",
        "#   IMAGE_ID, QW, QX, QY, QZ, TX, TY, TZ, CAMERA_ID, NAME",
        "#   POINTS2D[] as (X, Y, POINT3D_ID)",
        f"# Number of images: {len(out.frames)}, mean observations per image: {mean:.1f}",
    ]
    for i, (f, name, o) in enumerate(zip(out.frames, names, obs, strict=True)):
        q, t = _qt(f)
        vals = " ".join(repr(float(v)) for v in (*q, *t))
        buf = io.StringIO()
        np.savetxt(buf, np.column_stack([o.xy, o.point + 1]), fmt="%.9g %.9g %d")
        lines += [f"{i + 1} {vals} {i + 1} {name}", buf.getvalue().replace("\n", " ").strip()]
    return "\n".join(lines) + "\n"


def _qt(f: ExportFrame) -> tuple[np.ndarray, np.ndarray]:
    """COLMAP's world-to-camera quaternion (w, x, y, z) and translation of a frame."""
    w2c = world_to_camera(f.cam_to_world)
    return rotmat_to_qvec(w2c[:3, :3]), w2c[:3, 3]


def points3d_txt(out: OutputFolder, obs: list[Observations], tracks: Tracks | None = None) -> str:
    """points3D.txt: POINT3D_ID X Y Z R G B ERROR TRACK[] (ERROR = 0: exact projections).
    ``tracks``: :func:`group_tracks` of ``obs``, if already grouped."""
    c = out.cloud
    n = len(c)
    point, image, p2d, length = group_tracks(obs, n) if tracks is None else tracks
    header = (
        "# 3D point list with one line of data per point:\n"
        "#   POINT3D_ID, X, Y, Z, R, G, B, ERROR, TRACK[] as (IMAGE_ID, POINT2D_IDX)\n"
        f"# Number of points: {n}, mean track length: {length.mean() if n else 0:.4f}\n"
    )
    if n == 0:
        return header
    # np.savetxt formats row by row in Python, yet measured faster than np.char column ops
    # (1M points: 5.6 s vs 8.8 s); 3DGS reads the PLY beside this file anyway.
    table = np.column_stack([np.arange(1, n + 1), c.points.astype(np.float64), c.colors])
    buf = io.StringIO()
    np.savetxt(buf, table, fmt="%d %.9g %.9g %.9g %d %d %d 0")
    rows = buf.getvalue().splitlines()
    pairs = io.StringIO()
    np.savetxt(pairs, np.column_stack([image, p2d]), fmt="%d %d")
    pair_rows = pairs.getvalue().splitlines()
    ends = np.cumsum(length)
    for i in np.flatnonzero(length):
        rows[i] += " " + " ".join(pair_rows[ends[i] - length[i]:ends[i]])
    return header + "\n".join(rows) + "\n"


# ----------------------------------------------------------------------------- binary model
# COLMAP's binary model (src/colmap/scene/reconstruction_io.cc), little-endian, packed.


def cameras_bin(out: OutputFolder) -> bytes:
    """cameras.bin: uint64 count; per camera uint32 id, int32 model, uint64 width, height,
    float64 params[4]."""
    rec = np.zeros(len(out.frames), np.dtype([
        ("id", "<u4"), ("model", "<i4"), ("w", "<u8"), ("h", "<u8"), ("params", "<f8", 4)]))
    for i, f in enumerate(out.frames):
        rec[i] = (i + 1, PINHOLE_MODEL_ID, f.width, f.height, pinhole_params(f.K))
    return np.uint64(len(rec)).tobytes() + rec.tobytes()


def images_bin(out: OutputFolder, names: list[str], obs: list[Observations]) -> bytes:
    """images.bin: uint64 count; per image uint32 id, float64 q[4], t[3], uint32 camera id,
    name + NUL, uint64 number of points, then per point float64 x, y, uint64 point3D id."""
    head = np.dtype([("id", "<u4"), ("q", "<f8", 4), ("t", "<f8", 3), ("cam", "<u4")])
    pt = np.dtype([("xy", "<f8", 2), ("pid", "<u8")])
    parts = [np.uint64(len(out.frames)).tobytes()]
    for i, (f, name, o) in enumerate(zip(out.frames, names, obs, strict=True)):
        q, t = _qt(f)
        parts.append(np.array([(i + 1, q, t, i + 1)], head).tobytes())
        parts.append(name.encode() + b"\0")
        pts = np.zeros(len(o.point), pt)
        pts["xy"], pts["pid"] = o.xy, o.point + 1
        parts += [np.uint64(len(pts)).tobytes(), pts.tobytes()]
    return b"".join(parts)


def points3d_bin(out: OutputFolder, obs: list[Observations], tracks: Tracks | None = None) -> bytes:
    """points3D.bin: uint64 count; per point uint64 id, float64 xyz[3], uint8 rgb[3], float64
    error, uint64 track length, then per track element uint32 image id, uint32 point2D idx.
    ``tracks``: :func:`group_tracks` of ``obs``, if already grouped."""
    c = out.cloud
    n = len(c)
    _, image, p2d, length = group_tracks(obs, n) if tracks is None else tracks
    head = np.zeros(n, np.dtype([("id", "<u8"), ("xyz", "<f8", 3), ("rgb", "u1", 3),
                                 ("err", "<f8"), ("len", "<u8")]))
    head["id"], head["xyz"], head["rgb"] = np.arange(1, n + 1), c.points, c.colors
    head["len"] = length
    track = np.zeros(len(image), np.dtype([("image", "<u4"), ("p2d", "<u4")]))
    track["image"], track["p2d"] = image, p2d
    # interleave each point's header with its track elements, all at once
    hsize, tsize = head.dtype.itemsize, track.dtype.itemsize
    start = np.arange(n) * hsize + np.r_[0, np.cumsum(length)[:-1]] * tsize if n else \
        np.zeros(0, np.int64)
    buf = np.zeros(n * hsize + len(track) * tsize, np.uint8)
    buf[(start[:, None] + np.arange(hsize)).ravel()] = head.view(np.uint8)
    owner = np.repeat(np.arange(n), length)
    k = np.arange(len(track)) - np.repeat(np.r_[0, np.cumsum(length)[:-1]], length) \
        if n else np.zeros(0, np.int64)
    tstart = start[owner] + hsize + k * tsize
    buf[(tstart[:, None] + np.arange(tsize)).ravel()] = track.view(np.uint8)
    return np.uint64(n).tobytes() + buf.tobytes()
