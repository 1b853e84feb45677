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


def _many_ids_output(synthetic_out, tmp_path):
    """A copy of the synthetic output whose first frame holds 400 more IDs (1000..1399, a
    pixel or so each), beside the scene's objects 1, 2 and 25."""
    import shutil

    from lift3d.io.outputs import write_label_png

    out = tmp_path / "out"
    shutil.copytree(synthetic_out.root, out)
    first = out / "labels" / f"{synthetic_out.names[0]}.png"
    labels = read_label_png(first)
    many = np.arange(synthetic_out.height * synthetic_out.width).reshape(
        synthetic_out.height, synthetic_out.width) % 400 + 1000
    many = np.where(labels == 0, many, labels)  # the objects keep their pixels
    write_label_png(first, many)
    return out, many


def _mask(dest, synthetic_out, i=0):
    return np.array(Image.open(dest / "object_mask" /
                               f"{synthetic_out.names[i].replace('.', '_')}.png"))


def test_more_than_255_ids_fold_the_least_observed_into_8_bit_masks(synthetic_out, tmp_path):
    """Gaussian Grouping's stock config (256 classes) and its loader (torch.from_numpy of the
    mask) take 8-bit masks: the 255 most observed IDs are kept, the rest folded into 0 and
    listed in the report."""
    import torch

    out, many = _many_ids_output(synthetic_out, tmp_path)
    doc = json.loads(export(out, "gaussian-grouping", tmp_path / "gg").read_text())
    assert doc["num_classes"] == 256 and doc["mask_bits"] == 8
    kept = {int(k): v for k, v in doc["mask_id_to_lift3d_id"].items()}
    assert len(kept) == 255 and {1, 2, 25} <= set(kept.values())  # the scene's objects stay
    folded = set(doc["folded_lift3d_ids"])
    assert len(folded) == 400 + 3 - 255 and not folded & set(kept.values())
    pixels = {v: int((many == v).sum()) for v in range(1000, 1400)}
    assert max(pixels[v] for v in folded) <= min(pixels[v] for v in kept.values() if v >= 1000)
    mask = _mask(tmp_path / "gg", synthetic_out)
    assert mask.dtype == np.uint8 and torch.from_numpy(mask).dtype == torch.uint8
    back = np.vectorize((kept | {0: 0}).get)(mask)
    np.testing.assert_array_equal(back, np.where(np.isin(many, list(folded)), 0, many))


def test_16_bit_masks_keep_every_id_on_request(synthetic_out, tmp_path):
    from lift3d.export.gaussian_grouping import GaussianGroupingConfig

    out, many = _many_ids_output(synthetic_out, tmp_path)
    cfg = GaussianGroupingConfig(mask_bits=16)
    doc = json.loads(export(out, "gaussian-grouping", tmp_path / "gg",
                            gaussian_grouping=cfg).read_text())
    assert doc["num_classes"] == 1 + 400 + 3 and doc["folded_lift3d_ids"] == []
    assert json.loads((tmp_path / "gg" / "gaussian_grouping_train.json").read_text())[
        "num_classes"] == doc["num_classes"]
    mask = _mask(tmp_path / "gg", synthetic_out)
    assert mask.dtype == np.uint16 and mask.max() == doc["num_classes"] - 1
    to_lift3d = {int(k): v for k, v in doc["mask_id_to_lift3d_id"].items()}
    np.testing.assert_array_equal(np.vectorize(to_lift3d.get)(mask), many)


def test_resolution_writes_images_masks_and_cameras_at_one_size(synthetic_out, tmp_path):
    """--resolution 2: images and masks both at half size, cameras to match, so training with
    -r 1 keeps them aligned: every object's points land on its own mask ID."""
    from _export_helpers import read_cameras_txt, read_images_txt

    from lift3d.export.gaussian_grouping import GaussianGroupingConfig, training_note

    dest = tmp_path / "gg"
    doc = json.loads(export(synthetic_out.root, "gaussian-grouping", dest,
                            gaussian_grouping=GaussianGroupingConfig(resolution=2)).read_text())
    w, h = synthetic_out.width // 2, synthetic_out.height // 2
    assert doc["image_size"] == [[w, h]] and "-r 1" in training_note(doc)
    sparse = dest / "sparse" / "0"
    cams = read_cameras_txt(sparse / "cameras.txt")
    images = read_images_txt(sparse / "images.txt")
    to_mask = {v: int(k) for k, v in doc["mask_id_to_lift3d_id"].items()}
    cloud = synthetic_out.cloud
    for img in images.values():
        cam = cams[img["camera_id"]]
        assert (cam["width"], cam["height"]) == (w, h)
        np.testing.assert_allclose(cam["params"], [70.0, 70.0, 81.8 / 2, 59.2 / 2])
        picture = np.array(Image.open(dest / "images" / img["name"]))
        mask = np.array(Image.open(dest / "object_mask" / f"{img['name'].split('.')[0]}.png"))
        assert picture.shape[:2] == mask.shape == (h, w)
        uv, z = colmap_project(cloud.points.astype(np.float64), cam, img)
        px = np.floor(uv).astype(int)
        ok = (z > 0) & (px[:, 0] >= 0) & (px[:, 0] < w) & (px[:, 1] >= 0) & (px[:, 1] < h)
        for lab in (1, 2, 25):
            sel = ok & (cloud.labels == lab)
            ids, counts = np.unique(mask[px[sel, 1], px[sel, 0]], return_counts=True)
            assert ids[np.argmax(counts)] == to_mask[lab]
