"""Reader of the TUM RGB-D benchmark layout (Sturm et al., IROS 2012).

::

    rgbd_dataset_freiburgN_xxx/
      rgb.txt            "timestamp filename" lines: "1305031102.175304 rgb/1305031102.175304.png"
      depth.txt          the same for depth/…png: uint16, value / 5000 = metres, 0 = no data
      groundtruth.txt    optional, "timestamp tx ty tz qx qy qz qw": camera-to-world pose of the
                         colour camera's optical frame (OpenCV axes), motion capture at ~100 Hz
      intrinsics.txt     optional override, see :func:`read_intrinsics_override`
      (or camera.txt)

Lines starting with ``#`` are comments; commas and tabs count as spaces (as in TUM's tools).

Association follows TUM's ``associate.py``: every (rgb, depth) stamp pair closer than
:data:`MAX_DIFFERENCE` (0.02 s) is a candidate; candidates are taken greedily by increasing
time difference, each stamp used at most once. RGB frames without a depth partner are dropped.

Poses are **interpolated**, not snapped: the translation linearly and the rotation by slerp
between the two ground-truth stamps that bracket the rgb stamp, provided they are at most
:data:`MAX_POSE_GAP` apart (so the nearer one is within 0.02 s). RGB frames outside the
trajectory or inside a motion-capture gap are dropped with a warning. Without
``groundtruth.txt`` frames have no pose.

Intrinsics default to the values TUM publishes for the sensor named in the folder name
(``freiburg1`` / ``freiburg2`` / ``freiburg3``), else ROS's default Kinect calibration. The
lens distortion TUM also publishes for fr1/fr2 is not applied (fr3 images are already
undistorted).
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np

from lift3d.cameras import quat_to_rotmat, slerp
from lift3d.errors import InputError
from lift3d.io.common import (
    check_intrinsics,
    intrinsics_matrix,
    progress_bar,
    read_matrix,
    read_rgbd,
    require_dir,
    require_file,
    select_frames,
)
from lift3d.types import Frame, LazyFrames, Scene

DEPTH_SCALE = 5000.0
"""Raw depth units per metre (TUM: 5000 = 1 m)."""

MAX_DIFFERENCE = 0.02
"""Seconds: largest stamp difference of an associated pair (TUM associate.py default)."""

MAX_POSE_GAP = 2 * MAX_DIFFERENCE
"""Seconds: largest spacing of the two ground-truth stamps a pose is interpolated between."""

SENSOR_INTRINSICS = {
    "freiburg1": (517.3, 516.5, 318.6, 255.3),
    "freiburg2": (520.9, 521.0, 325.1, 249.7),
    "freiburg3": (535.4, 539.2, 320.1, 247.6),
}
"""(fx, fy, cx, cy) of the colour cameras, TUM RGB-D "File Formats" page, 640x480."""

ROS_DEFAULT_INTRINSICS = (525.0, 525.0, 319.5, 239.5)
"""(fx, fy, cx, cy) of ROS's default Kinect calibration, used when the sensor is unknown."""

INTRINSICS_FILES = ("intrinsics.txt", "camera.txt")
QUAT_NORM_TOL = 1e-2
"""A ground-truth quaternion whose norm is further than this from 1 is an error, not noise."""


def is_tum(path: Path) -> bool:
    """True when ``path`` holds ``rgb.txt`` and ``depth.txt``."""
    return (path / "rgb.txt").is_file() and (path / "depth.txt").is_file()


# ---------------------------------------------------------------------------------------------
# Text lists and association


def read_list(path: Path, n_values: int | None = None) -> tuple[np.ndarray, list[list[str]]]:
    """Read a TUM list file: (N,) float64 timestamps and the N lists of fields after them.

    Lines that are empty, start with ``#``, or hold a timestamp alone are skipped (as TUM's
    tools do). ``n_values``: if given, each line must have exactly that many fields after the
    timestamp.
    """
    try:
        text = path.read_text()
    except OSError as err:
        raise InputError(f"cannot read ({err.strerror})", path, "check the file") from err
    stamps, rows = [], []
    for lineno, line in enumerate(text.splitlines(), 1):
        if not line or line.startswith("#"):
            continue
        fields = line.replace(",", " ").replace("\t", " ").split()
        if len(fields) < 2:
            continue
        try:
            stamps.append(float(fields[0]))
        except ValueError:
            raise InputError(f"line {lineno} does not start with a timestamp: {line[:60]!r}",
                             path, "each line is 'timestamp value ...'") from None
        if n_values is not None and len(fields) - 1 != n_values:
            raise InputError(f"line {lineno} has {len(fields) - 1} values after the timestamp, "
                             f"expected {n_values}", path, "see the TUM RGB-D file formats")
        rows.append(fields[1:])
    return np.asarray(stamps, np.float64), rows


def associate(first: np.ndarray, second: np.ndarray, max_difference: float = MAX_DIFFERENCE,
              offset: float = 0.0) -> list[tuple[int, int]]:
    """Match two timestamp lists the way TUM's ``associate.py`` does.

    first: (N,) seconds; second: (M,) seconds (any order). Candidates are the pairs with
    |first[i] - (second[j] + offset)| < max_difference; they are accepted greedily by
    increasing difference (ties by first stamp, then second stamp), each index at most once.
    Returns (i, j) index pairs sorted by i.
    """
    first = np.asarray(first, np.float64)
    second = np.asarray(second, np.float64) + offset
    if first.size == 0 or second.size == 0:
        return []
    order = np.argsort(second, kind="stable")
    s_sorted = second[order]
    lo = np.searchsorted(s_sorted, first - max_difference, side="left")
    hi = np.searchsorted(s_sorted, first + max_difference, side="right")
    counts = hi - lo
    ii = np.repeat(np.arange(first.size), counts)
    starts = np.repeat(lo, counts)
    within = np.arange(ii.size) - np.repeat(np.cumsum(counts) - counts, counts)
    jj = order[starts + within]
    diff = np.abs(first[ii] - second[jj])
    keep = diff < max_difference
    ii, jj, diff = ii[keep], jj[keep], diff[keep]
    # associate.py sorts (diff, a, b) tuples: the same order, by value.
    cand = np.lexsort((second[jj], first[ii], diff))
    used_i = np.zeros(first.size, bool)
    used_j = np.zeros(second.size, bool)
    pairs = []
    for k in cand:  # a loop over candidate frame pairs (~N), not pixels
        i, j = ii[k], jj[k]
        if not used_i[i] and not used_j[j]:
            used_i[i] = used_j[j] = True
            pairs.append((int(i), int(j)))
    return sorted(pairs)


# ---------------------------------------------------------------------------------------------
# Poses


def read_groundtruth(path: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Read ``groundtruth.txt``: (N,) stamps sorted ascending, (N, 3) positions in metres and
    (N, 4) unit quaternions (x, y, z, w)."""
    stamps, rows = read_list(path, n_values=7)
    if not rows:
        raise InputError("ground-truth file holds no pose", path,
                         "lines are 'timestamp tx ty tz qx qy qz qw'")
    try:
        vals = np.asarray(rows, dtype=np.float64)
    except ValueError:
        raise InputError("ground truth holds something that is not a number", path,
                         "lines are 'timestamp tx ty tz qx qy qz qw'") from None
    bad = ~np.isfinite(vals).all(1)
    norms = np.linalg.norm(vals[:, 3:], axis=1)
    bad |= np.abs(norms - 1.0) > QUAT_NORM_TOL
    if bad.any():
        k = int(np.argmax(bad))
        raise InputError(
            f"pose at t={stamps[k]:.6f} is not a rigid transform (NaN/inf or a quaternion of "
            f"norm {norms[k]:.4g})", path, "quaternions qx qy qz qw must have unit norm",
        )
    order = np.argsort(stamps, kind="stable")
    quats = vals[order, 3:] / norms[order, None]
    return stamps[order], vals[order, :3], quats


def interpolate_poses(gt_t: np.ndarray, gt_xyz: np.ndarray, gt_q: np.ndarray,
                      query_t: np.ndarray, max_gap: float = MAX_POSE_GAP
                      ) -> tuple[np.ndarray, np.ndarray]:
    """Camera-to-world poses at ``query_t`` from a ground-truth trajectory.

    gt_t: (N,) ascending seconds; gt_xyz: (N, 3) metres; gt_q: (N, 4) unit (x, y, z, w);
    query_t: (M,) seconds. Returns (M, 4, 4) float64 poses and (M,) bool ``ok``, False where
    ``query_t`` lies outside the trajectory or its bracketing stamps are more than ``max_gap``
    apart (those poses are identity placeholders).
    """
    query_t = np.asarray(query_t, np.float64)
    i1 = np.searchsorted(gt_t, query_t, side="left").clip(0, gt_t.size - 1)
    exact = gt_t[i1] == query_t
    i0 = np.where(exact, i1, i1 - 1)
    ok = (i0 >= 0) & (query_t <= gt_t[-1]) & (query_t >= gt_t[0])
    i0 = i0.clip(0)
    span = gt_t[i1] - gt_t[i0]
    ok &= span <= max_gap
    alpha = np.where(span > 0, (query_t - gt_t[i0]) / np.where(span > 0, span, 1.0), 0.0)
    alpha = alpha.clip(0.0, 1.0)
    xyz = gt_xyz[i0] + alpha[:, None] * (gt_xyz[i1] - gt_xyz[i0])
    q = slerp(gt_q[i0], gt_q[i1], alpha)
    poses = np.tile(np.eye(4), (query_t.size, 1, 1))
    poses[:, :3, :3] = quat_to_rotmat(q, xyzw=True)
    poses[:, :3, 3] = xyz
    poses[~ok] = np.eye(4)
    return poses, ok


# ---------------------------------------------------------------------------------------------
# Intrinsics


def read_intrinsics_override(path: Path) -> np.ndarray:
    """Read an intrinsics file (``#`` comments allowed) in one of two forms:

    * one line ``fx fy cx cy [d0 d1 d2 d3 d4]`` (TUM's table; distortion is ignored), or
    * three lines of three numbers: the 3x3 K.
    """
    mat = read_matrix(path, "intrinsics")
    if mat.shape == (3, 3):
        return check_intrinsics(mat, path)
    if mat.shape[0] == 1 and mat.shape[1] >= 4:
        return check_intrinsics(intrinsics_matrix(*mat[0, :4]), path)
    raise InputError(
        f"intrinsics are {mat.shape[0]}x{mat.shape[1]} numbers", path,
        "write one line 'fx fy cx cy' or a 3x3 K",
    )


def default_intrinsics(root: Path) -> tuple[np.ndarray, str]:
    """(3, 3) K for a TUM folder and where it came from (file, sensor name or ROS default)."""
    for name in INTRINSICS_FILES:
        if (root / name).is_file():
            return read_intrinsics_override(root / name), name
    for part in (root.resolve().name, root.resolve().parent.name):
        m = re.search(r"freiburg([123])", part.lower())
        if m:
            sensor = f"freiburg{m.group(1)}"
            return intrinsics_matrix(*SENSOR_INTRINSICS[sensor]), sensor
    return intrinsics_matrix(*ROS_DEFAULT_INTRINSICS), "ROS default"


# ---------------------------------------------------------------------------------------------
# Scene


def load_tum(path: str | Path, stride: int = 1, max_frames: int | None = None,
             progress: bool = False, lazy: bool = False) -> Scene:
    """Load a TUM RGB-D sequence (layout and rules in the module docstring) as a
    :class:`Scene` with layout ``"tum"``. Frame names are the rgb file stems (timestamps).
    ``stride`` / ``max_frames`` apply to the associated frames."""
    root = require_dir(path)
    K, _ = default_intrinsics(root)
    rgb_t, rgb_rows = read_list(require_file(root / "rgb.txt", "rgb.txt", "TUM layout"))
    depth_t, depth_rows = read_list(require_file(root / "depth.txt", "depth.txt", "TUM layout"))
    if not rgb_rows:
        raise InputError("lists no image", root / "rgb.txt", "lines are 'timestamp rgb/x.png'")
    pairs = associate(rgb_t, depth_t)
    if not pairs:
        raise InputError(
            f"no rgb stamp is within {MAX_DIFFERENCE} s of a depth stamp", root / "depth.txt",
            "check that rgb.txt and depth.txt belong to the same recording",
        )
    dropped = {"without depth": rgb_t.size - len(pairs)}
    pair_i = np.array([i for i, _ in pairs])
    pair_j = np.array([j for _, j in pairs])
    poses = None
    if (root / "groundtruth.txt").is_file():
        gt = read_groundtruth(root / "groundtruth.txt")
        poses, ok = interpolate_poses(*gt, rgb_t[pair_i])
        dropped["outside the ground-truth trajectory"] = int((~ok).sum())
        pair_i, pair_j, poses = pair_i[ok], pair_j[ok], poses[ok]
        if pair_i.size == 0:
            raise InputError("no rgb stamp falls inside the ground-truth trajectory",
                             root / "groundtruth.txt", "check it belongs to this recording")
    else:
        warnings.warn(f"{root}: no groundtruth.txt, frames have no pose", stacklevel=2)
    lost = {k: v for k, v in dropped.items() if v}
    if lost:
        warnings.warn(f"{root}: dropped rgb frames " + ", ".join(
            f"{v} {k}" for k, v in lost.items()), stacklevel=2)

    rows = select_frames(list(range(pair_i.size)), stride, max_frames)
    def read(n: int) -> Frame:
        k = rows[n]
        color_path = root / rgb_rows[pair_i[k]][0]
        depth_path = root / depth_rows[pair_j[k]][0]
        image, depth = read_rgbd(color_path, depth_path, DEPTH_SCALE)
        return Frame(image=image, name=color_path.stem, depth=depth, K=K.copy(),
                     cam_to_world=None if poses is None else poses[k].copy(), path=color_path)

    if lazy:  # streamed: each frame read when a stage asks for it
        frames = LazyFrames([Path(rgb_rows[pair_i[k]][0]).stem for k in rows], read)
    else:
        frames = [read(n) for n in progress_bar(range(len(rows)), progress,
                                                f"reading {root.name}", len(rows))]
    return Scene(frames=frames, source=root, layout="tum")
