"""COLMAP export read back in COLMAP's conventions: the cloud re-projects onto the same pixels."""

import numpy as np
from _export_helpers import check_colmap_model, read_points3d_txt
from plyfile import PlyData

from lift3d.export import export


def test_colmap_round_trip(synthetic_out, tmp_path):
    sparse = export(synthetic_out.root, "colmap", tmp_path / "colmap")
    assert sparse == tmp_path / "colmap" / "sparse" / "0"
    check_colmap_model(tmp_path / "colmap", synthetic_out)

    xyz, rgb = read_points3d_txt(sparse / "points3D.txt")
    np.testing.assert_allclose(xyz, synthetic_out.cloud.points, atol=1e-6)
    np.testing.assert_array_equal(rgb, synthetic_out.cloud.colors)
    # 3DGS loads sparse/0/points3D.ply first when it exists
    v = PlyData.read(str(sparse / "points3D.ply"))["vertex"]
    np.testing.assert_array_equal(v["label"], synthetic_out.cloud.labels)


def test_export_cmd_notes_off_centre_principal_points(synthetic_out, tmp_path, capsys):
    from lift3d.cli import export_cmd  # the command lives with the CLI (the core has no typer)
    from lift3d.export import principal_point_offset

    # synthetic K: cx = 81.3 in a 160-wide image (centre 79.5), cy = 58.7 (centre 59.5)
    assert abs(principal_point_offset(synthetic_out.root / "cameras.json")
               - np.hypot(1.8, 0.8)) < 1e-9
    export_cmd(synthetic_out.root, "colmap", tmp_path / "c")
    printed = capsys.readouterr().out
    assert "wrote colmap" in printed and "2.0 px off the image centre" in printed
