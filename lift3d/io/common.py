"""Helpers shared by the scene readers: image / depth / matrix reading and validation.

Every failure here is a one-line :class:`~lift3d.errors.InputError` that names the file and
says what to do, so the CLI can print it without a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TypeVar

import numpy as np

from lift3d.errors import InputError, Lift3DError

T = TypeVar("T")

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
"""Colour image file types the readers accept (compared case-insensitively)."""

WIDE_GREY_MODES = ("I;16", "I;16B", "I;16L", "I;16N", "I")
"""Pillow modes of 16-bit greyscale images (``I`` too: older Pillow opens 16-bit PNGs so)."""

UINT16_MAX = 65535

DEPTH_DTYPE = np.uint16
"""Raw dtype of integer depth images: 16-bit (millimetres for ScanNet/7-Scenes, 1/5000 m for
TUM). An 8-bit depth PNG would hold at most 255 units (0.255 m in millimetres)."""

EXIF_ORIENTATION = 0x0112
"""EXIF tag of the camera orientation (1 = upright)."""

POSE_ATOL = 1e-3
"""Tolerance of the rigidity test: max |R^T R - I|, |det R - 1| and |last row - [0,0,0,1]|.

Real trackers write poses with ~1e-4 rounding (7-Scenes: max |R^T R - I| = 3.8e-4), so 1e-3
accepts them and still rejects scaled, sheared or projective matrices.
"""

PRINCIPAL_POINT_TOL = 0.2
"""Largest offset of a principal point from the image centre, as a fraction of the image's
width / height, before K is taken as written for another resolution. Real cameras are within a
few percent; K of a 1296x968 camera applied to 640x480 images is 51% off, K of a 640x480
camera on 1296x968 images 25%."""

# ---------------------------------------------------------------------------------------------
# Listing and ordering


def natural_key(text: str) -> tuple:
    """Sort key that orders digit runs by value: ``frame2`` before ``frame10``."""
    parts = re.split(r"(\d+)", text.lower())
    return tuple((0, int(p), p) if p.isdigit() else (1, 0, p) for p in parts)


def list_images(folder: Path) -> list[Path]:
    """Image files (``*.jpg``, ``*.jpeg``, ``*.png``, any case) directly in ``folder``,
    sorted naturally by name. Hidden files (``.name``) are ignored."""
    files = [
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    ]
    return sorted(files, key=lambda p: natural_key(p.name))


def select_frames(items: Sequence[T], stride: int = 1, max_frames: int | None = None) -> list[T]:
    """Every ``stride``-th item, at most ``max_frames`` of them (None = all)."""
    check_stride(stride, max_frames)
    picked = list(items[::stride])
    return picked if max_frames is None else picked[:max_frames]


def check_stride(stride: int, max_frames: int | None) -> None:
    """Raise :class:`Lift3DError` unless stride >= 1 and max_frames is None or >= 1."""
    if not isinstance(stride, (int, np.integer)) or stride < 1:
        raise Lift3DError(f"stride must be a positive integer, got {stride!r}")
    if max_frames is not None and (not isinstance(max_frames, (int, np.integer)) or max_frames < 1):
        raise Lift3DError(f"max_frames must be a positive integer or None, got {max_frames!r}")


def progress_bar(items: Iterable[T], enabled: bool, desc: str, total: int | None = None
                 ) -> Iterator[T]:
    """Iterate ``items``, with a tqdm bar on stderr when ``enabled``."""
    if not enabled:
        yield from items
        return
    from tqdm import tqdm

    yield from tqdm(items, desc=desc, total=total, unit="frame")


def require_dir(path: str | Path) -> Path:
    """``path`` as a Path; :class:`InputError` if it is missing or not a folder."""
    p = Path(path).expanduser()
    if not p.exists():
        raise InputError("no such folder", p, "check the path")
    if not p.is_dir():
        raise InputError("not a folder", p, "point at the scene folder, not a file in it")
    return p


def require_file(path: Path, what: str, fix: str) -> Path:
    """``path`` if it is a file, else :class:`InputError` saying ``what`` is missing."""
    if not path.is_file():
        raise InputError(f"missing {what}", path, fix)
    return path


# ---------------------------------------------------------------------------------------------
# Images and depth


def read_rgb(path: Path) -> np.ndarray:
    """Read a colour image as (H, W, 3) uint8 RGB.

    Grey and palette images are expanded to RGB, alpha is dropped, and the EXIF orientation
    is applied (as phone photos need; MASt3R's loader does the same). Decoding goes through
    Pillow rather than OpenCV because OpenCV silently returns a half-grey picture for a
    truncated JPEG; Pillow raises, and so do we.
    """
    from PIL import Image, ImageOps, UnidentifiedImageError

    try:
        with Image.open(path) as im:
            im.load()
            if im.getexif().get(EXIF_ORIENTATION, 1) != 1:
                im = ImageOps.exif_transpose(im)
            rgb = _to_rgb8(im, path)
    except (OSError, UnidentifiedImageError, SyntaxError, ValueError) as err:
        why = "missing" if not Path(path).exists() else "truncated or not a JPEG/PNG"
        detail = " ".join(str(err).split())  # one line, whatever the decoder said
        raise InputError(
            f"cannot read image ({why}: {detail})", path,
            "re-export the file or remove it from the folder",
        ) from err
    return rgb


def _to_rgb8(im, path: Path) -> np.ndarray:
    """(H, W, 3) uint8 of an open Pillow image. 16-bit greyscale (``I;16``, and ``I`` holding
    16-bit values) is scaled to 8 bits: Pillow's own ``convert("RGB")`` clips it to 255, a
    solid white picture. Float and 32-bit images are refused."""
    if im.mode in WIDE_GREY_MODES:
        grey = np.asarray(im).astype(np.int64)
        if grey.size and (grey.min() < 0 or grey.max() > UINT16_MAX):
            raise InputError(
                f"colour image is {im.mode} with values outside 0..{UINT16_MAX}", path,
                "save colour as 8-bit (or 16-bit) RGB or greyscale PNG/JPEG")
        grey8 = ((grey * 255 + UINT16_MAX // 2) // UINT16_MAX).astype(np.uint8)
        return np.repeat(grey8[:, :, None], 3, axis=2)
    if im.mode in ("F", "I;32", "I;32B", "I;32L"):
        raise InputError(f"colour image is a {im.mode} (float/32-bit) picture", path,
                         "save colour as 8-bit (or 16-bit) RGB or greyscale PNG/JPEG")
    return np.array(im if im.mode == "RGB" else im.convert("RGB"))


def read_depth(path: Path, scale: float, invalid: Sequence[int] = ()) -> np.ndarray:
    """Read a depth image as (H, W) float32 metres, 0 = invalid.

    Integer images must be 16-bit (the usual uint16 PNG; 8-bit ones are refused) and are
    divided by ``scale`` (1000 for millimetres, 5000 for TUM) after the raw values in
    ``invalid`` (e.g. 65535) are set to 0. Float images (32-bit TIFF/EXR) are taken as
    metres and must be finite. A depth map with no valid pixel is an error: it is a broken
    frame, not an empty view.
    """
    import cv2

    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if raw is None:
        raise InputError(
            "cannot read depth image (missing, truncated or not a 16-bit PNG)", path,
            "re-export the depth map or remove the frame",
        )
    if raw.ndim != 2:
        raise InputError(
            f"depth image has {raw.shape[2]} channels, expected one", path,
            "write depth as a single-channel 16-bit PNG",
        )
    if not np.issubdtype(raw.dtype, np.floating) and raw.dtype != DEPTH_DTYPE:
        raise InputError(
            f"depth image is {raw.dtype.itemsize * 8}-bit ({raw.dtype}), expected a 16-bit PNG "
            f"(uint16, 1/{scale:g} m units)", path,
            "write depth as a single-channel 16-bit PNG (e.g. cv2.imwrite of a uint16 array); "
            "an 8-bit image cannot hold metric depth",
        )
    if np.issubdtype(raw.dtype, np.floating):
        if not np.isfinite(raw).all():
            raise InputError(
                f"depth has {int((~np.isfinite(raw)).sum())} NaN/inf pixels", path,
                "write invalid depth as 0",
            )
        depth = raw.astype(np.float32)
        depth[depth < 0] = 0
    else:
        depth = raw.astype(np.float32) / np.float32(scale)
        for value in invalid:  # a few marker values, each one vectorised pass
            if value != 0:
                depth[raw == value] = 0
    if not (depth > 0).any():
        raise InputError(
            "depth has no valid pixel (all zero or invalid)", path,
            "the sensor frame is broken: remove the frame or re-export it",
        )
    return depth


def check_size(arr: np.ndarray, hw: tuple[int, int], path: Path, expected: str,
               fix: str) -> None:
    """:class:`InputError` naming ``path`` unless ``arr`` is (H, W[, C]) with (H, W) = ``hw``.

    expected: what ``hw`` is, for the message (e.g. "the size of colour image 0.jpg").
    """
    if tuple(arr.shape[:2]) != tuple(hw):
        raise InputError(
            f"image is {arr.shape[1]}x{arr.shape[0]}, expected {hw[1]}x{hw[0]} ({expected})",
            path, fix,
        )


def read_rgbd(color_path: Path, depth_path: Path, depth_scale: float,
              invalid: Sequence[int] = ()) -> tuple[np.ndarray, np.ndarray]:
    """Read a registered colour + depth pair: (H, W, 3) uint8 RGB and (H, W) float32 metres.

    The depth map must have the colour image's size (see :func:`read_depth` for units).
    """
    image = read_rgb(color_path)
    depth = read_depth(depth_path, depth_scale, invalid)
    check_size(depth, image.shape[:2], depth_path, f"the size of colour image {color_path.name}",
               "depth must be registered to the colour image at the same resolution")
    return image, depth


def resize_area(image: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Resize an (H, W, C) image to ``hw`` = (H', W') with area averaging (for shrinking)."""
    import cv2

    if tuple(image.shape[:2]) == tuple(hw):
        return image
    return cv2.resize(image, (hw[1], hw[0]), interpolation=cv2.INTER_AREA)


def resize_nearest(labels: np.ndarray, hw: tuple[int, int]) -> np.ndarray:
    """Resize an (H, W) label map to ``hw`` without mixing IDs (nearest neighbour)."""
    import cv2

    if tuple(labels.shape[:2]) == tuple(hw):
        return labels
    return cv2.resize(labels, (hw[1], hw[0]), interpolation=cv2.INTER_NEAREST)


def read_label_image(path: Path) -> np.ndarray:
    """Read a single-channel 8/16-bit ID map (0 = background) as (H, W) int32."""
    import cv2

    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        raise InputError("cannot read label image", path, "re-export it as a 16-bit PNG")
    if arr.ndim != 2:
        raise InputError(
            f"label image has {arr.shape[2]} channels, expected one", path,
            "write instance IDs as a single-channel 8/16-bit PNG",
        )
    return arr.astype(np.int32)


# ---------------------------------------------------------------------------------------------
# Matrices: poses and intrinsics


def read_matrix(path: Path, what: str) -> np.ndarray:
    """Read whitespace-separated numbers (``#`` comments allowed) as a 2-D float64 array."""
    try:
        text = path.read_text()
    except OSError as err:
        raise InputError(f"cannot read {what} ({err.strerror})", path, "check the file") from err
    rows = []
    for line in text.splitlines():
        line = line.split("#", 1)[0].replace(",", " ").strip()
        if line:
            rows.append(line.split())
    if not rows or len({len(r) for r in rows}) != 1:
        raise InputError(f"{what} is empty or its rows have different lengths", path,
                         "write one matrix row per line")
    try:
        return np.array([[float(v) for v in r] for r in rows], dtype=np.float64)
    except ValueError as err:
        raise InputError(f"{what} holds something that is not a number", path,
                         "write whitespace-separated numbers only") from err


def read_pose(path: Path) -> np.ndarray:
    """Read a 4x4 camera-to-world matrix. Non-finite entries are returned as they are (the
    caller decides whether that marks an invalid frame); a finite one must be rigid."""
    mat = read_matrix(path, "pose")
    if mat.shape != (4, 4):
        raise InputError(
            f"pose is {mat.shape[0]}x{mat.shape[1]} numbers, expected 4x4", path,
            "write the camera-to-world matrix as 4 rows of 4 numbers",
        )
    if np.isfinite(mat).all():
        check_rigid(mat, path)
    return mat


def rigid_error(T: np.ndarray) -> str | None:
    """Why the (4, 4) matrix ``T`` is not a rigid transform, or None if it is one
    (within :data:`POSE_ATOL`)."""
    if T.shape != (4, 4):
        return f"shape {T.shape}, expected (4, 4)"
    if not np.isfinite(T).all():
        return "it holds NaN or inf"
    R = T[:3, :3]
    ortho = float(np.abs(R.T @ R - np.eye(3)).max())
    if ortho > POSE_ATOL:
        return f"rotation part is not orthonormal (max |R^T R - I| = {ortho:.3g})"
    det = float(np.linalg.det(R))
    if abs(det - 1.0) > POSE_ATOL:
        return f"rotation part has det {det:.4g}, expected 1 (a reflection?)"
    last = np.abs(T[3] - np.array([0.0, 0.0, 0.0, 1.0])).max()
    if last > POSE_ATOL:
        return f"last row is {np.array2string(T[3], precision=4)}, expected [0 0 0 1]"
    return None


def check_rigid(T: np.ndarray, path: Path) -> None:
    """:class:`InputError` naming ``path`` unless ``T`` is a rigid 4x4 transform."""
    why = rigid_error(T)
    if why is not None:
        raise InputError(f"pose is not a rigid transform: {why}", path,
                         "write a camera-to-world rotation + translation")


def check_intrinsics(K: np.ndarray, path: Path) -> np.ndarray:
    """Validate a (3, 3) pinhole K (finite, fx, fy > 0, cx, cy >= 0, last row [0 0 1]) and
    return it as float64."""
    K = np.asarray(K, np.float64)
    why = None
    if K.shape != (3, 3):
        why = f"shape {K.shape}, expected 3x3"
    elif not np.isfinite(K).all():
        why = "it holds NaN or inf"
    elif K[0, 0] <= 0 or K[1, 1] <= 0:
        why = f"focal lengths must be positive, got fx={K[0, 0]:g}, fy={K[1, 1]:g}"
    elif K[0, 2] < 0 or K[1, 2] < 0:
        why = f"principal point must be non-negative, got cx={K[0, 2]:g}, cy={K[1, 2]:g}"
    elif np.abs(K[2] - np.array([0.0, 0.0, 1.0])).max() > 1e-9:
        why = f"last row is {K[2].tolist()}, expected [0, 0, 1]"
    if why is not None:
        raise InputError(f"bad intrinsics: {why}", path,
                         "write K = [[fx 0 cx] [0 fy cy] [0 0 1]] in pixels")
    return K


def principal_point_error(K: np.ndarray, hw: tuple[int, int]) -> str | None:
    """Why ``K`` cannot be the intrinsics of (H, W) = ``hw`` images, or None: its principal
    point lies further than :data:`PRINCIPAL_POINT_TOL` of the image size from the centre."""
    h, w = hw
    off_x = abs(K[0, 2] - w / 2) / w
    off_y = abs(K[1, 2] - h / 2) / h
    if max(off_x, off_y) <= PRINCIPAL_POINT_TOL:
        return None
    return (f"principal point ({K[0, 2]:g}, {K[1, 2]:g}) is far from the centre "
            f"({w / 2:g}, {h / 2:g}) of {w}x{h} images (K fits about "
            f"{round(2 * K[0, 2])}x{round(2 * K[1, 2])})")


def read_intrinsics(path: Path) -> np.ndarray:
    """Read a 3x3 K or a 4x4 matrix whose top-left 3x3 is K (ScanNet); validated."""
    mat = read_matrix(path, "intrinsics")
    if mat.shape not in ((3, 3), (4, 4)):
        raise InputError(f"intrinsics are {mat.shape[0]}x{mat.shape[1]}, expected 3x3 or 4x4",
                         path, "write K as 3 rows of 3 numbers")
    return check_intrinsics(mat[:3, :3], path)


def intrinsics_matrix(fx: float, fy: float, cx: float, cy: float) -> np.ndarray:
    """(3, 3) float64 pinhole matrix."""
    return np.array([[fx, 0.0, cx], [0.0, fy, cy], [0.0, 0.0, 1.0]], dtype=np.float64)


def read_ply_vertices(path: str | Path) -> np.ndarray:
    """The vertex element of a PLY file (ASCII or binary) as a structured array, one field per
    vertex property (x, y, z, label, ...): what every PLY reader of lift3d starts from."""
    from plyfile import PlyData

    try:
        return PlyData.read(str(path))["vertex"].data
    except Exception as err:  # plyfile raises several types on bad files
        raise InputError(f"cannot read PLY ({err})", path) from err
