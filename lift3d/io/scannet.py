"""Reader of the ScanNet export layout (what ScanNet's SensReader writes), plus lift3d's
synthetic ground truth stored beside it.

::

    scene/
      color/<i>.jpg                    colour frames, i = 0, 1, 2, ... (sorted numerically)
      depth/<i>.png                    uint16 depth, millimetres, 0 = invalid
      pose/<i>.txt                     4x4 camera-to-world (OpenCV axes); -inf/NaN = lost track
      intrinsic/intrinsic_color.txt    4x4 (or 3x3), top-left 3x3 = K of the colour images
      intrinsic/intrinsic_depth.txt    4x4 (or 3x3), top-left 3x3 = K of the depth images
      instance/<i>.png                 optional uint16 instance IDs, 0 = background; a frame
                                       without one gets None in ``gt_labels`` and a warning
                                       (``instance-filt/`` of real ScanNet is read the same way)
      gt_cloud.ply                     optional ground-truth cloud with a ``label`` property

Resolution rule: frames are at the depth resolution. When colour and depth sizes differ (real
ScanNet: 1296x968 colour, 640x480 depth), colour is shrunk to it with ``cv2.INTER_AREA``. K is
``intrinsic_depth`` (depth is what gets back-projected); ``intrinsic_color`` only when the sizes
are equal and it alone fits the frames. A K whose principal point is far from the frames' centre
was written for another resolution (the common preprocessed layout: colour resized to 640x480,
``intrinsic_color`` still of the 1296x968 camera): it is ignored with a warning, or an error
when no file fits. Ground-truth instance maps are
resized to the frame resolution with nearest-neighbour sampling.

Frames whose pose holds -inf/NaN (ScanNet's mark for a lost track) are skipped with a warning;
a finite pose that is not rigid is an error.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from lift3d.errors import InputError
from lift3d.io.common import (
    check_size,
    check_stride,
    list_images,
    principal_point_error,
    progress_bar,
    read_depth,
    read_intrinsics,
    read_label_image,
    read_pose,
    read_rgb,
    require_dir,
    require_file,
    resize_area,
    resize_nearest,
)
from lift3d.types import Frame, Lazy, LazyFrames, Scene

DEPTH_SCALE = 1000.0
"""Raw depth units per metre (ScanNet depth PNGs are millimetres)."""

SUBDIRS = ("color", "depth", "pose")
"""Sub-folders whose presence marks the layout."""

INSTANCE_DIRS = ("instance", "instance-filt")
"""Ground-truth instance folders, first one present wins."""

GT_CLOUD = "gt_cloud.ply"

K_AGREE_RTOL = 0.02
"""``intrinsic_color`` and ``intrinsic_depth`` of frames of one size may differ by this fraction
(focal lengths, principal point) before the reader warns that they disagree."""

ASPECT_RTOL = 0.03
"""Colour and depth aspect ratios may differ by this fraction before the resize rule refuses
(ScanNet: 1296/968 vs 640/480 differ by 0.4%)."""


def is_scannet(path: Path) -> bool:
    """True when ``path`` has the ``color/``, ``depth/`` and ``pose/`` sub-folders."""
    return all((path / d).is_dir() for d in SUBDIRS)


def frame_indices(path: Path) -> list[tuple[int, Path]]:
    """(index, colour file) of every frame in ``path/color``, sorted by index."""
    files = list_images(path / "color")
    out: dict[int, Path] = {}
    for f in files:
        try:
            idx = int(f.stem)
        except ValueError:
            raise InputError(
                "colour frame name is not a frame number", f,
                "ScanNet exports name frames color/0.jpg, color/1.jpg, ...",
            ) from None
        if idx in out:
            raise InputError(f"two colour files for frame {idx}: {out[idx].name} and {f.name}",
                             f, "keep one of them")
        out[idx] = f
    return sorted(out.items())


def load_scannet(path: str | Path, stride: int = 1, max_frames: int | None = None,
                 progress: bool = False, lazy: bool = False) -> Scene:
    """Load a ScanNet-export scene (see the module docstring for the layout and rules).

    Frames are taken every ``stride``-th in index order, frames with an invalid (-inf/NaN)
    pose dropped, then the first ``max_frames`` kept. Returns a :class:`Scene` with layout
    ``"scannet"``; ``gt_labels`` holds (H, W) int32 instance maps for the same frames when
    ``instance/`` exists, ``gt_points`` (N, 3) float32 / ``gt_point_labels`` (N,) int32 when
    ``gt_cloud.ply`` exists.
    """
    root = require_dir(path)
    indices = frame_indices(root)
    if not indices:
        raise InputError("no colour frames (color/<i>.jpg)", root / "color",
                         "export the colour stream into color/")
    check_stride(stride, max_frames)
    kept, poses, skipped = [], {}, []
    for idx, color_path in indices[::stride]:
        if max_frames is not None and len(kept) == max_frames:
            break  # poses of frames past max_frames are not even read
        pose_path = require_file(root / "pose" / f"{idx}.txt", f"pose of frame {idx}",
                                 "export the pose of every colour frame into pose/")
        pose = read_pose(pose_path)
        if np.isfinite(pose).all():
            kept.append((idx, color_path))
            poses[idx] = pose
        else:
            skipped.append(str(idx))
    if skipped:
        warnings.warn(
            f"{root}: skipped {len(skipped)} frame(s) whose pose is -inf/NaN (lost tracking): "
            + ", ".join(skipped[:10]) + (" ..." if len(skipped) > 10 else ""), stacklevel=2,
        )
    if not kept:
        raise InputError("every selected frame has an invalid (-inf/NaN) pose", root / "pose",
                         "choose another scene or re-run tracking")

    color_hw, depth_hw, K = _resolution_and_intrinsics(root, kept[0])
    instance_dir = next((root / d for d in INSTANCE_DIRS if (root / d).is_dir()), None)
    def read(k: int) -> Frame:
        idx, color_path = kept[k]
        image, depth = _read_frame(root, idx, color_path, color_hw, depth_hw)
        return Frame(image=image, name=str(idx), depth=depth, K=K.copy(),
                     cam_to_world=poses[idx], path=color_path)

    missing_gt = _missing_instance_maps(root, instance_dir, kept)

    def read_gt(k: int) -> np.ndarray | None:
        if kept[k][0] in missing_gt:
            return None
        return _read_instance(instance_dir, kept[k][0], color_hw, depth_hw)

    if lazy:  # streamed: each frame read when a stage asks for it (lift3d.types.LazyFrames)
        frames = LazyFrames([str(idx) for idx, _ in kept], read)
        gt_labels = Lazy(len(kept), read_gt) if instance_dir is not None else None
    else:
        frames = [read(k) for k in progress_bar(range(len(kept)), progress,
                                                f"reading {root.name}", len(kept))]
        gt_labels = [read_gt(k) for k in range(len(kept))] if instance_dir is not None else None
    scene = Scene(frames=frames, source=root, layout="scannet", gt_labels=gt_labels)
    if (root / GT_CLOUD).is_file():
        from lift3d.io.outputs import read_ply

        cloud = read_ply(root / GT_CLOUD)
        scene.gt_points, scene.gt_point_labels = cloud.points, cloud.labels
    return scene


def _resolution_and_intrinsics(root: Path, first: tuple[int, Path]
                               ) -> tuple[tuple[int, int], tuple[int, int], np.ndarray]:
    """Colour (H, W), depth (H, W) and the (3, 3) K of the output frames, from frame one.

    Frames are at the depth resolution and their depth is back-projected, so K is the depth
    camera's (``intrinsic_depth.txt``) when it fits the frames; ``intrinsic_color.txt`` only
    when colour and depth have one size and it is the one that fits (depth registered to the
    colour camera). A file "fits" when its principal point lies near the frames' centre
    (:func:`~lift3d.io.common.principal_point_error`): ScanNet's common preprocessed layout
    (colour resized to 640x480, ``intrinsic_color.txt`` still of the 1296x968 camera) is
    caught this way, and the disagreement is reported as a warning.
    """
    idx, color_path = first
    color_hw = read_rgb(color_path).shape[:2]
    depth_path = require_file(root / "depth" / f"{idx}.png", f"depth of frame {idx}",
                              "export the depth of every colour frame into depth/")
    depth_hw = read_depth(depth_path, DEPTH_SCALE).shape[:2]
    intr = root / "intrinsic"
    if color_hw != depth_hw:
        aspect_c = color_hw[1] / color_hw[0]
        aspect_d = depth_hw[1] / depth_hw[0]
        if abs(aspect_c / aspect_d - 1.0) > ASPECT_RTOL:
            raise InputError(
                f"depth is {depth_hw[1]}x{depth_hw[0]} but colour {color_path.name} is "
                f"{color_hw[1]}x{color_hw[0]}: aspect ratios differ, cannot resize one onto "
                "the other", depth_path, "export depth registered to the colour camera",
            )
        require_file(intr / "intrinsic_depth.txt", "depth intrinsics (colour and depth sizes "
                     "differ, so colour is resized to the depth camera)",
                     "export intrinsic/intrinsic_depth.txt")
        names = ("intrinsic_depth.txt",)
    else:
        names = ("intrinsic_depth.txt", "intrinsic_color.txt")
    found = {n: read_intrinsics(intr / n) for n in names if (intr / n).is_file()}
    if not found:
        require_file(intr / "intrinsic_color.txt", "colour intrinsics",
                     "export intrinsic/intrinsic_color.txt (or intrinsic_depth.txt)")
    return color_hw, depth_hw, _pick_intrinsics(found, intr, depth_hw)


def _pick_intrinsics(found: dict[str, np.ndarray], intr: Path, hw: tuple[int, int]
                     ) -> np.ndarray:
    """The first of ``found`` (file name -> K, preferred first) whose principal point fits
    frames of size ``hw``; warns about a file that does not fit or disagrees with the chosen
    one, and raises :class:`InputError` when none fits."""
    why = {n: principal_point_error(K, hw) for n, K in found.items()}
    fits = [n for n in found if why[n] is None]
    if not fits:
        name = next(iter(found))
        raise InputError(
            f"intrinsics do not fit the {hw[1]}x{hw[0]} frames: {why[name]}", intr / name,
            "give the intrinsics of the depth camera at the depth images' resolution "
            "(intrinsic/intrinsic_depth.txt), or scale K to the images",
        )
    chosen = fits[0]
    K = found[chosen]
    for name, other in found.items():
        if name == chosen:
            continue
        if why[name] is not None:
            warnings.warn(f"{intr / name}: ignored, {why[name]} (written for another "
                          f"resolution?); using {chosen}", stacklevel=3)
        elif not np.allclose(other, K, rtol=K_AGREE_RTOL):
            warnings.warn(
                f"{intr / name} and {chosen} disagree (fx {other[0, 0]:g} vs {K[0, 0]:g}, "
                f"cx {other[0, 2]:g} vs {K[0, 2]:g}) for frames of one size; using {chosen}, "
                "the camera whose depth is back-projected", stacklevel=3)
    return K


def _read_frame(root: Path, idx: int, color_path: Path, color_hw: tuple[int, int],
                depth_hw: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """(H, W, 3) uint8 colour at the depth resolution and (H, W) float32 depth in metres."""
    image = read_rgb(color_path)
    check_size(image, color_hw, color_path, "the size of the scene's first colour frame",
               "every colour frame of a scene must have one size")
    depth_path = require_file(root / "depth" / f"{idx}.png", f"depth of frame {idx}",
                              "export the depth of every colour frame into depth/")
    depth = read_depth(depth_path, DEPTH_SCALE)
    check_size(depth, depth_hw, depth_path, "the size of the scene's first depth frame",
               "every depth frame of a scene must have one size")
    return resize_area(image, depth_hw), depth


def _missing_instance_maps(root: Path, instance_dir: Path | None,
                           kept: list[tuple[int, Path]]) -> set[int]:
    """Indices of the kept frames without an instance map (ground truth is optional per
    frame: those frames are left out of the scoring, with a warning naming them)."""
    if instance_dir is None:
        return set()
    missing = [idx for idx, _ in kept if not (instance_dir / f"{idx}.png").is_file()]
    if missing:
        warnings.warn(
            f"{instance_dir}: no instance map for {len(missing)} of {len(kept)} frame(s) ("
            + ", ".join(map(str, missing[:10])) + (" ..." if len(missing) > 10 else "")
            + "): they are left out of the ground-truth scores", stacklevel=3)
    return set(missing)


def _read_instance(instance_dir: Path, idx: int, color_hw: tuple[int, int],
                   depth_hw: tuple[int, int]) -> np.ndarray:
    """(H, W) int32 ground-truth instance map at the frame resolution (``depth_hw``)."""
    path = require_file(instance_dir / f"{idx}.png", f"instance map of frame {idx}",
                        f"write one instance PNG per colour frame into {instance_dir.name}/")
    labels = read_label_image(path)
    if labels.shape not in (tuple(color_hw), tuple(depth_hw)):
        raise InputError(
            f"instance map is {labels.shape[1]}x{labels.shape[0]}, expected the colour "
            f"({color_hw[1]}x{color_hw[0]}) or depth ({depth_hw[1]}x{depth_hw[0]}) size", path,
            "write instance maps at the colour resolution",
        )
    return resize_nearest(labels, depth_hw)
