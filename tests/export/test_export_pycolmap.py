"""The COLMAP export read by COLMAP itself (pycolmap, the official bindings), when installed:
its own projection of the cloud lands on lift3d's pixels, half a pixel apart by convention."""

import numpy as np
import pytest
from _export_helpers import reference_pixels

from lift3d.export import export

pycolmap = pytest.importorskip("pycolmap", reason="pycolmap (dev extra) reads COLMAP models")


def test_pycolmap_reads_the_model_and_projects_onto_the_same_pixels(synthetic_out, tmp_path):
    sparse = export(synthetic_out.root, "colmap", tmp_path / "colmap")
    rec = pycolmap.Reconstruction(str(sparse))
    assert len(rec.images) == len(synthetic_out.names)
    assert len(rec.points3D) == len(synthetic_out.cloud)
    pts = synthetic_out.cloud.points[::20].astype(np.float64)
    by_name = {img.name: img for img in rec.images.values()}
    for name, pose in zip(synthetic_out.names, synthetic_out.poses, strict=True):
        img = by_name[name.replace(".", "_") + ".png"]
        cam = rec.cameras[img.camera_id]
        assert cam.model_name == "PINHOLE"
        # a property up to pycolmap 3.11, a method since the rigs/frames API (3.12+)
        cfw = img.cam_from_world() if callable(img.cam_from_world) else img.cam_from_world
        M = cfw.matrix()
        uv = cam.img_from_cam(pts @ M[:, :3].T + M[:, 3])
        ref, _ = reference_pixels(pts, synthetic_out.K, pose)
        assert np.abs(uv - 0.5 - ref).max() < 1e-3
        np.testing.assert_allclose(img.projection_center(), pose[:3, 3], atol=1e-9)
    p = rec.points3D[1]
    np.testing.assert_allclose(p.xyz, synthetic_out.cloud.points[0], atol=1e-6)
    np.testing.assert_array_equal(p.color, synthetic_out.cloud.colors[0])


def test_pycolmap_reads_real_observations_from_the_text_and_binary_models(synthetic_out,
                                                                          tmp_path):
    """POINTS2D and tracks (what gsplat's depth supervision reads): every image observes
    points, at their exact projections, only visible ones (their pixel shows their label),
    and tracks point back at the same observations; the binary model equals the text one."""
    from lift3d.io.outputs import read_label_png

    sparse = export(synthetic_out.root, "colmap", tmp_path / "colmap")
    cloud = synthetic_out.cloud
    seen = {}
    for fmt in ("text", "binary"):
        assert (sparse / f"images.{'txt' if fmt == 'text' else 'bin'}").is_file()
        rec = pycolmap.Reconstruction()
        getattr(rec, f"read_{fmt}")(str(sparse))
        assert len(rec.points3D) == len(cloud) and len(rec.images) == len(synthetic_out.names)
        obs = {}
        for img in rec.images.values():
            idx2d = [j for j, p in enumerate(img.points2D) if p.has_point3D()]
            pts = [img.points2D[j] for j in idx2d]
            assert len(pts) > 50, img.name  # gsplat indexes its points by image name
            pid = np.array([p.point3D_id for p in pts])
            xy = np.array([p.xy for p in pts])
            xyz = np.array([rec.points3D[int(i)].xyz for i in pid])
            cfw = img.cam_from_world() if callable(img.cam_from_world) else img.cam_from_world
            M = cfw.matrix()
            pc = xyz @ M[:, :3].T + M[:, 3]
            assert (pc[:, 2] > 0).all()  # gsplat's depths of the image's points
            np.testing.assert_allclose(rec.cameras[img.camera_id].img_from_cam(pc), xy,
                                       atol=1e-4)
            name = synthetic_out.names[[n.replace(".", "_") + ".png" for n in
                                        synthetic_out.names].index(img.name)]
            labels = read_label_png(synthetic_out.root / "labels" / f"{name}.png")
            px = np.floor(xy).astype(int)  # COLMAP coordinates: pixel i spans [i, i + 1)
            assert np.mean(labels[px[:, 1], px[:, 0]] == cloud.labels[pid - 1]) > 0.95
            for i, j in zip(pid[::25], idx2d[::25], strict=True):  # the track names it back
                track = rec.points3D[int(i)].track.elements
                assert (img.image_id, j) in {(e.image_id, e.point2D_idx) for e in track}
            obs[img.name] = (pid, xy)
        lengths = [len(rec.points3D[int(i)].track.elements) for p, _ in obs.values() for i in p]
        assert max(lengths) >= 2  # the same point observed in several views
        seen[fmt] = obs
    for name, (pid, xy) in seen["text"].items():
        np.testing.assert_array_equal(seen["binary"][name][0], pid)
        np.testing.assert_allclose(seen["binary"][name][1], xy, atol=1e-6)
