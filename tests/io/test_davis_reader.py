"""DAVIS reader: the real DAVIS 2016 sequences in ../shared, and generated DAVIS 2017-style
palette annotations. (Named test_davis_reader so it does not clash with the metrics tests.)"""

from __future__ import annotations

import numpy as np
import pytest
from _io_scenes import texture, write_rgb
from PIL import Image

from lift3d.errors import InputError
from lift3d.io import detect_layout, list_davis_sequences, load_davis_sequence, load_scene


@pytest.fixture
def davis_root(shared):
    return shared("data", "davis2016_480p")


def test_real_sequence_folder_gets_binary_ground_truth(davis_root):
    seq = davis_root / "JPEGImages" / "480p" / "blackswan"
    assert detect_layout(seq) == "davis"
    scene = load_scene(seq)
    assert scene.layout == "davis" and len(scene) == 50
    assert scene.names[:3] == ["00000", "00001", "00002"] and scene.names[-1] == "00049"
    assert scene.frames[0].image.shape == (480, 854, 3)
    assert len(scene.gt_labels) == 50
    for lab in scene.gt_labels[::10]:
        assert lab.dtype == np.int32 and lab.shape == (480, 854)
        assert set(np.unique(lab)) == {0, 1}  # {0, 255} -> {0, 1}
    # the swan covers a few percent of the frame, not most of it
    assert 0.01 < scene.gt_labels[0].mean() < 0.3


def test_real_root_lists_and_loads_sequences(davis_root):
    names = list_davis_sequences(davis_root)
    assert names == sorted(names) and {"blackswan", "dog", "motocross-jump"} <= set(names)
    scene = load_davis_sequence(davis_root, "dog", stride=10)
    assert scene.names == ["00000", "00010", "00020", "00030", "00040", "00050"]
    assert len(scene.gt_labels) == 6
    with pytest.raises(InputError, match="no sequence 'swan'.*blackswan"):
        load_davis_sequence(davis_root, "swan")
    with pytest.raises(InputError, match="no JPEGImages/1080p"):
        list_davis_sequences(davis_root, "1080p")


def test_real_root_asks_for_one_sequence(davis_root):
    assert detect_layout(davis_root) == "davis"
    with pytest.raises(InputError, match=r"DAVIS root with \d+ sequences.*point at one"):
        load_scene(davis_root)


def make_davis(root, seq="cows", n=3, palette=True, annotate=None):
    """A DAVIS root with one sequence; palette annotations with objects 1 and 2."""
    img_dir = root / "JPEGImages" / "480p" / seq
    ann_dir = root / "Annotations" / "480p" / seq
    ann_dir.mkdir(parents=True)
    for i in range(n):
        write_rgb(img_dir / f"{i:05d}.jpg", texture((24, 32), i))
        if annotate is not None and i not in annotate:
            continue
        ids = np.zeros((24, 32), np.uint8)
        ids[2:10, 2:10] = 1
        ids[12:20, 20:30] = 2
        if palette:
            im = Image.fromarray(ids, "P")
            im.putpalette([0, 0, 0, 128, 0, 0, 0, 128, 0] + [0] * 759)  # DAVIS colours
        else:
            im = Image.fromarray(((ids > 0) * 255).astype(np.uint8), "L")
        im.save(ann_dir / f"{i:05d}.png")
    return img_dir


def test_palette_annotations_give_object_ids(tmp_path):
    seq = make_davis(tmp_path)
    scene = load_scene(seq)
    assert scene.layout == "davis"
    for lab in scene.gt_labels:
        assert set(np.unique(lab)) == {0, 1, 2}
        assert lab[5, 5] == 1 and lab[15, 25] == 2
    # a root with a single sequence loads it
    assert load_scene(tmp_path).names == scene.names


def test_partial_annotations_leave_no_ground_truth(tmp_path):
    seq = make_davis(tmp_path, annotate={0})
    with pytest.warns(UserWarning, match="2 of 3 frames have no annotation"):
        scene = load_scene(seq)
    assert scene.gt_labels is None and len(scene) == 3


def test_sequence_without_annotations_is_an_image_folder(tmp_path):
    seq = make_davis(tmp_path)
    for p in (tmp_path / "Annotations" / "480p" / "cows").iterdir():
        p.unlink()
    (tmp_path / "Annotations" / "480p" / "cows").rmdir()
    assert detect_layout(seq) == "images"
    assert load_scene(seq).gt_labels is None


def test_annotation_of_the_wrong_size(tmp_path):
    seq = make_davis(tmp_path, palette=False)
    bad = tmp_path / "Annotations" / "480p" / "cows" / "00001.png"
    Image.fromarray(np.zeros((12, 16), np.uint8), "L").save(bad)
    with pytest.raises(InputError, match=r"00001\.png.*16x12 but frame 00001 is 32x24"):
        load_scene(seq)


def test_rgb_annotation_is_refused(tmp_path):
    seq = make_davis(tmp_path)
    bad = tmp_path / "Annotations" / "480p" / "cows" / "00002.png"
    Image.fromarray(np.zeros((24, 32, 3), np.uint8), "RGB").save(bad)
    with pytest.raises(InputError, match=r"00002\.png.*RGB image"):
        load_scene(seq)
