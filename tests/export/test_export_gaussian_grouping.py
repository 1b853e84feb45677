"""Gaussian Grouping layout: the COLMAP model plus object_mask/ IDs consistent across views."""

import json

import numpy as np
from _export_helpers import check_colmap_model, colmap_project
from PIL import Image

from lift3d.export import export
from lift3d.export.gaussian_grouping import id_table, renumber
from lift3d.io.outputs import read_label_png


def test_gaussian_grouping_layout_and_consistent_ids(synthetic_out, tmp_path):
    dest = tmp_path / "gg"
    doc_path = export(synthetic_out.root, "gaussian-grouping", dest)
    doc = json.loads(doc_path.read_text())
    assert doc["num_classes"] == 4  # background + IDs 1, 2, 25
    assert doc["mask_id_to_lift3d_id"] == {"1": 1, "2": 2, "3": 25}
    train = json.loads((dest / "gaussian_grouping_train.json").read_text())
    assert train["num_classes"] == 4 and train["densify_until_iter"] == 10000
    sparse, images = check_colmap_model(dest, synthetic_out)

    to_lift3d = {int(k): v for k, v in doc["mask_id_to_lift3d_id"].items()} | {0: 0}
    cloud = synthetic_out.cloud
    seen = {}
    for name, frame_name in zip(sorted(images), synthetic_out.names, strict=True):
        # Gaussian Grouping: image_name = basename.split(".")[0]; objects = np.array(PIL image)
        image_name = name.split(".")[0]
        mask = np.array(Image.open(dest / "object_mask" / f"{image_name}.png"))
        assert mask.dtype == np.uint8 and mask.shape == (synthetic_out.height,
                                                         synthetic_out.width)
        assert mask.max() < doc["num_classes"]
        labels = read_label_png(synthetic_out.root / "labels" / f"{frame_name}.png")
        back = np.vectorize(to_lift3d.get)(mask)
        np.testing.assert_array_equal(back, labels)
        # cross-view consistency: the pixels an object's points land on carry one mask ID
        cam = {"params": np.array([140.0, 140.0, 81.8, 59.2])}
        uv, z = colmap_project(cloud.points.astype(np.float64), cam, images[name])
        px = np.floor(uv).astype(int)  # COLMAP coords: pixel i spans [i, i + 1)
        ok = (z > 0) & (px[:, 0] >= 0) & (px[:, 0] < synthetic_out.width) & (px[:, 1] >= 0) \
            & (px[:, 1] < synthetic_out.height)
        for lab in (1, 2, 25):
            sel = ok & (cloud.labels == lab)
            ids, counts = np.unique(mask[px[sel, 1], px[sel, 0]], return_counts=True)
            top = ids[np.argmax(counts)]
            seen.setdefault(lab, set()).add(int(top))
    assert seen == {1: {1}, 2: {2}, 25: {3}}


def test_renumber_is_one_table_for_all_views():
    maps = [np.array([[0, 7], [300, 7]]), np.array([[300, 0], [0, 0]])]
    ids = id_table(maps, np.array([0, 9000]))
    np.testing.assert_array_equal(ids, [7, 300, 9000])
    np.testing.assert_array_equal(renumber(maps[0], ids), [[0, 1], [2, 1]])
    np.testing.assert_array_equal(renumber(maps[1], ids), [[2, 0], [0, 0]])
    np.testing.assert_array_equal(renumber(np.array([5, 9000]), ids), [0, 3])


def test_more_than_255_ids_give_16_bit_masks(synthetic_out, tmp_path):
    import shutil

    from lift3d.io.outputs import write_label_png

    out = tmp_path / "out"
    shutil.copytree(synthetic_out.root, out)
    first = out / "labels" / f"{synthetic_out.names[0]}.png"
    many = np.arange(synthetic_out.height * synthetic_out.width).reshape(
        synthetic_out.height, synthetic_out.width) % 400 + 1000
    write_label_png(first, many)
    doc = json.loads(export(out, "gaussian-grouping", tmp_path / "gg").read_text())
    assert doc["num_classes"] == 1 + 400 + 3
    mask = np.array(Image.open(tmp_path / "gg" / "object_mask" /
                               f"{synthetic_out.names[0].replace('.', '_')}.png"))
    assert mask.dtype == np.uint16 and mask.max() == doc["num_classes"] - 1
    to_lift3d = {int(k): v for k, v in doc["mask_id_to_lift3d_id"].items()}
    np.testing.assert_array_equal(np.vectorize(to_lift3d.get)(mask), many)
