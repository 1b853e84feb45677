"""Image-folder reader: natural order, names, formats, bad files; real photo folders."""

from __future__ import annotations

import numpy as np
import pytest
from _io_scenes import texture, write_rgb
from PIL import Image

from lift3d.errors import InputError
from lift3d.io import detect_layout, load_scene


def test_natural_order_case_insensitive_suffixes_and_names(tmp_path):
    for k, name in enumerate(["frame10.png", "frame2.JPG", "frame1.jpeg", "Frame3.PNG"]):
        write_rgb(tmp_path / name, texture((20, 30), k))
    (tmp_path / "notes.txt").write_text("not an image")
    (tmp_path / ".hidden.png").write_bytes(b"")
    assert detect_layout(tmp_path) == "images"
    scene = load_scene(tmp_path)
    assert scene.layout == "images"
    assert scene.names == ["frame1", "frame2", "Frame3", "frame10"]
    f = scene.frames[3]
    assert f.image.shape == (20, 30, 3) and f.image.dtype == np.uint8
    assert f.depth is None and f.K is None and f.cam_to_world is None
    # RGB, not OpenCV's BGR: the blue channel of texture() is constant 0 for seed 0
    assert (f.image[..., 2] == 0).all() and f.image[..., 0].max() > 200


def test_grey_and_palette_images_become_rgb(tmp_path):
    Image.fromarray(np.full((5, 6), 77, np.uint8), "L").save(tmp_path / "a.png")
    pal = Image.fromarray(np.ones((5, 6), np.uint8), "P")
    pal.putpalette([0, 0, 0, 10, 20, 30] + [0] * 762)
    pal.save(tmp_path / "b.png")
    a, b = load_scene(tmp_path).frames
    assert a.image.shape == (5, 6, 3) and (a.image == 77).all()
    assert (b.image == [10, 20, 30]).all()


def test_stride_and_max_frames(tmp_path):
    for i in range(7):
        write_rgb(tmp_path / f"{i}.png", texture((4, 4), i))
    assert load_scene(tmp_path, stride=3).names == ["0", "3", "6"]
    assert load_scene(tmp_path, stride=2, max_frames=2).names == ["0", "2"]


def test_same_stem_twice_is_an_error(tmp_path):
    write_rgb(tmp_path / "a.png", texture((4, 4), 0))
    write_rgb(tmp_path / "a.jpg", texture((4, 4), 0))
    with pytest.raises(InputError, match="two images named 'a'"):
        load_scene(tmp_path)


@pytest.mark.parametrize("content", [b"", b"GIF89a not really", "truncated"])
def test_unreadable_image_names_the_file(tmp_path, content):
    write_rgb(tmp_path / "good.jpg", texture((40, 40), 0))
    bad = tmp_path / "bad.jpg"
    if content == "truncated":
        bad.write_bytes((tmp_path / "good.jpg").read_bytes()[:-300])
    else:
        bad.write_bytes(content)
    with pytest.raises(InputError) as err:
        load_scene(tmp_path)
    msg = str(err.value)
    assert str(bad) in msg and "cannot read image" in msg and "\n" not in msg


def test_real_photo_folder_of_mixed_sizes(shared):
    root = shared("data", "multiview_unposed", "vggt_room", "images")
    scene = load_scene(root)
    assert scene.layout == "images" and len(scene) == 8
    assert scene.names == [f"no_overlap_{i}" for i in range(1, 9)]
    assert {f.image.shape for f in scene.frames} == {(960, 1280, 3), (384, 512, 3)}
