"""Layout detection and load_scene's own errors."""

from __future__ import annotations

import pytest
from _io_scenes import make_scannet, texture, write_rgb

from lift3d.errors import FormatNotRecognised, InputError, Lift3DError
from lift3d.io import LAYOUTS, detect_layout, load_scene


def test_missing_path(tmp_path):
    with pytest.raises(InputError, match="no such folder"):
        load_scene(tmp_path / "nope")


def test_file_instead_of_folder(tmp_path):
    f = tmp_path / "a.png"
    write_rgb(f, texture((4, 4), 0))
    with pytest.raises(InputError, match="not a folder"):
        detect_layout(f)


def test_empty_folder(tmp_path):
    with pytest.raises(InputError, match="folder is empty") as err:
        load_scene(tmp_path)
    assert not isinstance(err.value, FormatNotRecognised)


def test_unrecognised_folder_names_everything_looked_for(tmp_path):
    (tmp_path / "readme.txt").write_text("hello")
    (tmp_path / "color").mkdir()  # a partial ScanNet export is still not one
    with pytest.raises(FormatNotRecognised) as err:
        load_scene(tmp_path)
    msg = str(err.value)
    assert "\n" not in msg and str(tmp_path) in msg and "sub-folders here: color" in msg
    for wanted in ("color/ depth/ pose/ (ScanNet export)", "frames/frame-*.color.jpg (7-Scenes)",
                   "rgb.txt+depth.txt (TUM RGB-D)", "images (*.jpg, *.png)"):
        assert wanted in msg


def test_detection_prefers_the_richest_layout(tmp_path):
    """A ScanNet folder that also has loose images in its root is still ScanNet."""
    make_scannet(tmp_path, indices=(0,), instance=False, gt_cloud=False)
    write_rgb(tmp_path / "preview.jpg", texture((4, 4), 0))
    assert detect_layout(tmp_path) == "scannet"


def test_explicit_layout(tmp_path):
    make_scannet(tmp_path / "s", indices=(0, 1), instance=False, gt_cloud=False)
    scene = load_scene(tmp_path / "s" / "color", layout="images")
    assert scene.layout == "images" and scene.names == ["0", "1"]
    with pytest.raises(InputError, match="unknown layout 'colmap'.*scannet"):
        load_scene(tmp_path / "s", layout="colmap")
    with pytest.raises(InputError, match="rgb.txt"):
        load_scene(tmp_path / "s", layout="tum")
    assert set(LAYOUTS) == {"scannet", "7scenes", "tum", "images", "davis"}


@pytest.mark.parametrize("kw", [{"stride": 0}, {"stride": 1.5}, {"max_frames": 0}])
def test_bad_stride_or_max_frames(tmp_path, kw):
    write_rgb(tmp_path / "a.png", texture((4, 4), 0))
    with pytest.raises(Lift3DError, match="positive integer"):
        load_scene(tmp_path, **kw)
