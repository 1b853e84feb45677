"""Camera maths, one function per operation, every stage calls these (none keeps a copy).

Conventions (lift3d/types.py): OpenCV camera axes (x right, y down, z forward); poses are
camera-to-world (4, 4); pixel (x, y) is the integer index of a pixel and back-projects along
``K^-1 [x, y, 1]`` (so integer coordinates are pixel centres); depth is metric z.
OpenGL / nerfstudio / Blender cameras have y up and z backward: :data:`OPENCV_TO_OPENGL`.
Quaternions: COLMAP's order (qw, qx, qy, qz) here; TUM's (qx, qy, qz, qw) with ``xyzw=True``.
"""

from __future__ import annotations

import numpy as np

from lift3d.checks import check_shape

OPENCV_TO_OPENGL = np.diag([1.0, -1.0, -1.0, 1.0])
"""Right-multiplying a camera-to-world pose by this flips its y and z axes (either way)."""


def invert_pose(pose: np.ndarray) -> np.ndarray:
    """Inverse of a rigid (4, 4) transform, exactly (R^T, -R^T t), float64.

    camera-to-world <-> world-to-camera. For a similarity or a projective matrix use
    ``np.linalg.inv``; this one assumes R is a rotation.
    """
    T = np.asarray(pose, np.float64)
    check_shape("pose", T, (4, 4))
    R, t = T[:3, :3], T[:3, 3]
    out = np.eye(4)
    out[:3, :3] = R.T
    out[:3, 3] = -R.T @ t
    return out


def pixel_grid(h: int, w: int) -> np.ndarray:
    """(H, W, 3) float32 homogeneous pixel coordinates ``[x, y, 1]`` of every pixel."""
    pix = np.empty((h, w, 3), np.float32)
    pix[..., 0] = np.arange(w, dtype=np.float32)[None, :]
    pix[..., 1] = np.arange(h, dtype=np.float32)[:, None]
    pix[..., 2] = 1.0
    return pix


def scale_intrinsics(K: np.ndarray, sx: float, sy: float) -> np.ndarray:
    """(3, 3) float64 intrinsics of an image resized by ``sx`` (width) and ``sy`` (height).

    Pixel centres stay pixel centres: a pixel edge at ``x - 0.5`` maps to ``(x - 0.5) * sx``,
    so ``cx' = (cx + 0.5) * sx - 0.5`` (and likewise for y).
    """
    check_shape("K", K, (3, 3))
    out = np.asarray(K, np.float64).copy()
    out[0] *= sx
    out[1] *= sy
    out[0, 2] += 0.5 * sx - 0.5
    out[1, 2] += 0.5 * sy - 0.5
    out[2] = (0.0, 0.0, 1.0)
    return out


def backproject(depth: np.ndarray, K: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """World points of every pixel of a depth map.

    depth: (H, W) metres (z); K: (3, 3) intrinsics; cam_to_world: (4, 4) pose.
    Returns (H, W, 3) float32 world points; pixel (x, y) lies along ``K^-1 [x, y, 1]``.
    Where depth is 0 the point is the camera centre: use a validity mask.
    """
    check_shape("depth", depth, (None, None))
    check_shape("K", K, (3, 3))
    check_shape("cam_to_world", cam_to_world, (4, 4))
    h, w = depth.shape
    pose = np.asarray(cam_to_world, np.float64)
    # Fold K^-1 and the rotation into one 3x3 so each pixel costs one small matmul.
    rays_to_world = (pose[:3, :3] @ np.linalg.inv(np.asarray(K, np.float64))).astype(np.float32)
    pts = pixel_grid(h, w).reshape(-1, 3) @ rays_to_world.T
    pts *= np.asarray(depth, np.float32).reshape(-1, 1)
    pts += pose[:3, 3].astype(np.float32)
    return pts.reshape(h, w, 3)


def camera_depth(points: np.ndarray, valid: np.ndarray, cam_to_world: np.ndarray) -> np.ndarray:
    """(H, W) float32 camera z (metres) of a world point map, 0 where not ``valid`` or behind
    the camera: the depth map of geometry that has points but no sensor depth (MASt3R).

    points: (H, W, 3) world coordinates; valid: (H, W) bool; cam_to_world: (4, 4).
    """
    check_shape("points", points, (None, None, 3))
    check_shape("valid", valid, points.shape[:2])
    world_to_cam = invert_pose(cam_to_world)
    z = points.reshape(-1, 3) @ world_to_cam[2, :3].astype(np.float32) + np.float32(
        world_to_cam[2, 3])
    z = z.reshape(valid.shape)
    return np.where(valid & np.isfinite(z) & (z > 0), z, 0.0).astype(np.float32)


def project(
    points: np.ndarray, K: np.ndarray, cam_to_world: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Project world points into a camera given by its camera-to-world pose.

    points: (N, 3) world coordinates; K: (3, 3); cam_to_world: (4, 4).
    Returns uv (N, 2) float64 continuous pixel coordinates (x, y) in the convention where
    integer values are pixel centres (``round(uv)`` is the pixel index), and z (N,) float64 the
    depth in that camera. uv is inf/nan where z == 0 and junk where z < 0: check ``z > 0``.
    """
    check_shape("points", points, (None, 3))
    check_shape("K", K, (3, 3))
    check_shape("cam_to_world", cam_to_world, (4, 4))
    world_to_cam = np.linalg.inv(np.asarray(cam_to_world, np.float64))
    M = np.asarray(K, np.float64) @ world_to_cam[:3]  # (3, 4)
    p = np.asarray(points, np.float64) @ M[:, :3].T + M[:, 3]
    z = p[:, 2]  # K's last row is (0, 0, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = p[:, :2] / p[:, 2:3]
    return uv, z


def project_world_to_cam(points: np.ndarray, K: np.ndarray, world_to_cam: np.ndarray
                         ) -> tuple[np.ndarray, np.ndarray]:
    """:func:`project` for a camera given by its world-to-camera pose (what COLMAP stores):
    ((N, 2) float64 pixel coordinates in K's convention, (N,) float64 camera z). Points behind
    the camera get z <= 0 (their coordinates are junk)."""
    w2c = np.asarray(world_to_cam, np.float64)
    P = np.asarray(points, np.float64) @ w2c[:3, :3].T + w2c[:3, 3]
    q = P @ np.asarray(K, np.float64).T
    with np.errstate(divide="ignore", invalid="ignore"):
        uv = q[:, :2] / q[:, 2:3]
    return uv, P[:, 2]


def centred_intrinsics(h: int, w: int, fov_x_deg: float) -> np.ndarray:
    """(3, 3) float64 pinhole intrinsics of an (h, w) image with a ``fov_x_deg`` horizontal field
    of view, square pixels, principal point at the image centre ((w - 1) / 2, (h - 1) / 2)."""
    f = (w / 2) / np.tan(np.radians(fov_x_deg) / 2)
    return np.array([[f, 0, (w - 1) / 2], [0, f, (h - 1) / 2], [0, 0, 1]], np.float64)


def look_at(eye, target, up=(0.0, 0.0, 1.0), roll: float = 0.0) -> np.ndarray:
    """(4, 4) float64 camera-to-world pose, OpenCV axes (x right, y down, z forward), at
    ``eye`` looking at ``target``; ``up`` is the world's up direction (default +z); the camera
    is then rolled by ``roll`` radians about its viewing axis."""
    eye, target, up = (np.asarray(v, np.float64) for v in (eye, target, up))
    z = target - eye
    z /= np.linalg.norm(z)
    x = np.cross(z, up)
    x /= np.linalg.norm(x)
    y = np.cross(z, x)
    if roll:
        c, s = np.cos(roll), np.sin(roll)
        x, y = c * x + s * y, -s * x + c * y
    pose = np.eye(4)
    pose[:3, 0], pose[:3, 1], pose[:3, 2], pose[:3, 3] = x, y, z, eye
    return pose


def opencv_to_opengl_pose(cam_to_world: np.ndarray) -> np.ndarray:
    """(4, 4) OpenCV camera-to-world -> OpenGL/nerfstudio camera-to-world (y, z negated)."""
    return np.asarray(cam_to_world, np.float64) @ OPENCV_TO_OPENGL


def opengl_to_opencv_pose(cam_to_world: np.ndarray) -> np.ndarray:
    """Inverse of :func:`opencv_to_opengl_pose` (the flip is its own inverse)."""
    return np.asarray(cam_to_world, np.float64) @ OPENCV_TO_OPENGL


def rotmat_to_quat(R: np.ndarray) -> np.ndarray:
    """(3, 3) rotation -> unit quaternion (qw, qx, qy, qz), qw >= 0 (COLMAP's order).

    Shepperd's method: pick the largest of the four squared components to divide by, so the
    result is accurate for every rotation (no division by a near-zero qw at 180 degrees).
    """
    R = np.asarray(R, np.float64)
    tr = np.trace(R)
    k = int(np.argmax([tr, R[0, 0], R[1, 1], R[2, 2]]))
    if k == 0:
        w = np.sqrt(1.0 + tr) / 2
        q = [w, (R[2, 1] - R[1, 2]) / (4 * w), (R[0, 2] - R[2, 0]) / (4 * w),
             (R[1, 0] - R[0, 1]) / (4 * w)]
    elif k == 1:
        x = np.sqrt(1.0 + 2 * R[0, 0] - tr) / 2
        q = [(R[2, 1] - R[1, 2]) / (4 * x), x, (R[0, 1] + R[1, 0]) / (4 * x),
             (R[0, 2] + R[2, 0]) / (4 * x)]
    elif k == 2:
        y = np.sqrt(1.0 + 2 * R[1, 1] - tr) / 2
        q = [(R[0, 2] - R[2, 0]) / (4 * y), (R[0, 1] + R[1, 0]) / (4 * y), y,
             (R[1, 2] + R[2, 1]) / (4 * y)]
    else:
        z = np.sqrt(1.0 + 2 * R[2, 2] - tr) / 2
        q = [(R[1, 0] - R[0, 1]) / (4 * z), (R[0, 2] + R[2, 0]) / (4 * z),
             (R[1, 2] + R[2, 1]) / (4 * z), z]
    q = np.array(q)
    q /= np.linalg.norm(q)
    return -q if q[0] < 0 else q


def quat_to_rotmat(q: np.ndarray, xyzw: bool = False) -> np.ndarray:
    """Unit quaternion(s) -> rotation matrices.

    q: (4,) or (M, 4), order (qw, qx, qy, qz), or (qx, qy, qz, qw) with ``xyzw`` (TUM's).
    Normalised first. Returns (3, 3) or (M, 3, 3) float64.
    """
    q = np.asarray(q, np.float64)
    one = q.ndim == 1
    q = np.atleast_2d(q)
    if xyzw:
        q = q[:, [3, 0, 1, 2]]
    q = q / np.linalg.norm(q, axis=1, keepdims=True)
    w, x, y, z = q.T
    R = np.stack([
        1 - 2 * (y * y + z * z), 2 * (x * y - w * z), 2 * (x * z + w * y),
        2 * (x * y + w * z), 1 - 2 * (x * x + z * z), 2 * (y * z - w * x),
        2 * (x * z - w * y), 2 * (y * z + w * x), 1 - 2 * (x * x + y * y),
    ], axis=1).reshape(-1, 3, 3)
    return R[0] if one else R


def slerp(q0: np.ndarray, q1: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Spherical interpolation of unit quaternions (either order, the same for both): q0, q1
    (M, 4), alpha (M,) in [0, 1] -> (M, 4) unit quaternions (shortest arc)."""
    dot = np.sum(q0 * q1, axis=1)
    q1 = np.where(dot[:, None] < 0, -q1, q1)
    dot = np.clip(np.abs(dot), 0.0, 1.0)
    theta = np.arccos(dot)
    sin_t = np.sin(theta)
    near = sin_t < 1e-6  # (almost) the same rotation: linear blend is exact enough
    safe = np.where(near, 1.0, sin_t)
    w0 = np.where(near, 1.0 - alpha, np.sin((1.0 - alpha) * theta) / safe)
    w1 = np.where(near, alpha, np.sin(alpha * theta) / safe)
    q = w0[:, None] * q0 + w1[:, None] * q1
    return q / np.linalg.norm(q, axis=1, keepdims=True)
