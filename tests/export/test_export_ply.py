"""The exported PLY read back as 3D Gaussian splatting's fetchPly and Open3D read it."""

import numpy as np
import open3d as o3d
from plyfile import PlyData

from lift3d.export import export


def test_ply_reads_back_as_3dgs_and_open3d_read_it(synthetic_out, tmp_path):
    path = export(synthetic_out.root, "ply", tmp_path / "cloud_for_3dgs.ply")
    c = synthetic_out.cloud

    # 3DGS fetchPly: vertex fields by name, colours / 255
    v = PlyData.read(str(path))["vertex"]
    xyz = np.vstack([v["x"], v["y"], v["z"]]).T
    rgb = np.vstack([v["red"], v["green"], v["blue"]]).T / 255.0
    nrm = np.vstack([v["nx"], v["ny"], v["nz"]]).T
    np.testing.assert_array_equal(xyz, c.points)
    np.testing.assert_allclose(rgb, c.colors / 255.0)
    np.testing.assert_array_equal(nrm, c.normals)
    types = {p.name: p.val_dtype for p in v.properties}
    assert types["x"] == "f4" and types["nx"] == "f4" and types["red"] == "u1"
    assert types["label"] == "i4" and types["confidence"] == "f4"
    np.testing.assert_array_equal(v["label"], c.labels)
    np.testing.assert_array_equal(v["confidence"], c.label_conf)

    # Open3D (nerfstudio's reader of initial points)
    pc = o3d.io.read_point_cloud(str(path))
    np.testing.assert_allclose(np.asarray(pc.points), c.points, atol=1e-6)
    np.testing.assert_allclose(np.asarray(pc.colors), c.colors / 255.0, atol=1e-6)
    np.testing.assert_allclose(np.asarray(pc.normals), c.normals, atol=1e-6)


def test_ply_into_a_folder(synthetic_out, tmp_path):
    path = export(synthetic_out.root, "ply", tmp_path / "dest")
    assert path == tmp_path / "dest" / "points3D.ply" and path.is_file()
