import numpy as np

from lift3d.palette import UNLABELLED_RGB, label_colors


def test_colour_depends_on_the_id_alone():
    ids = np.arange(0, 5000)
    a = label_colors(ids)
    b = label_colors(ids[::-1])[::-1]
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(label_colors(np.array([[7, 0], [300, 7]]))[0, 0], a[7])
    assert a.shape == (5000, 3) and a.dtype == np.uint8


def test_unlabelled_is_grey_and_labels_are_not():
    assert tuple(label_colors(np.array([0, -3]))[0]) == UNLABELLED_RGB
    assert tuple(label_colors(np.array([0, -3]))[1]) == UNLABELLED_RGB
    cols = label_colors(np.arange(1, 2000))
    grey_or_white = (np.abs(cols.astype(int) - 128).max(1) < 8) | (cols.min(1) > 245)
    assert not grey_or_white.any()


def test_neighbouring_ids_are_distinct():
    cols = label_colors(np.arange(1, 1001)).astype(float)
    # consecutive IDs (the usual case: IDs handed out in order) differ clearly
    assert np.linalg.norm(np.diff(cols, axis=0), axis=1).min() > 40
    # the first 20 are pairwise distinct
    first = cols[:20]
    d = np.linalg.norm(first[:, None] - first[None], axis=-1) + np.eye(20) * 1e9
    assert d.min() > 40


def test_big_arrays_take_the_lookup_path_and_agree():
    rng = np.random.default_rng(0)
    small = rng.integers(-2, 400, 100)
    big = np.concatenate([small, rng.integers(-2, 400, 10_000)])
    np.testing.assert_array_equal(label_colors(big)[:100], label_colors(small))
    huge_ids = np.concatenate([small, np.full(10_000, 5_000_000)])
    np.testing.assert_array_equal(label_colors(huge_ids)[:100], label_colors(small))
    np.testing.assert_array_equal(label_colors(huge_ids)[-1],
                                  label_colors(np.array([5_000_000]))[0])
    assert label_colors(big.reshape(-1, 10)).shape == (1010, 10, 3)


def test_picture_colors_make_the_largest_ids_distinct():
    """Far-apart IDs can share a look in the ID-stable palette; a picture's own palette gives
    its largest IDs the most distinct colours (in CIE Lab), whatever their numbers."""
    import cv2

    from lift3d.palette import picture_colors

    # IDs 38 and 72 (and 63 and 139) look alike in the stable palette: seen on a DAVIS strip
    stable = label_colors(np.array([38, 72, 63, 139])).astype(float)
    assert np.linalg.norm(stable[0] - stable[1]) < 40
    rng = np.random.default_rng(1)
    ids = np.array([38, 72, 63, 139, 5, 900, 17, 4000])
    maps = [rng.choice(ids, p=np.linspace(8, 1, 8) / 36, size=(30, 40)) for _ in range(3)]
    maps[0][:2] = 0
    got_ids, rgb = picture_colors(maps)
    counts = {i: sum(int((m == i).sum()) for m in maps) for i in ids}
    assert got_ids.tolist() == sorted(ids.tolist(), key=lambda i: -counts[i])
    lab = cv2.cvtColor(rgb[None].astype(np.float32) / 255, cv2.COLOR_RGB2LAB)[0]
    d = np.linalg.norm(lab[:, None] - lab[None], axis=-1) + np.eye(len(ids)) * 1e9
    assert d.min() > 25  # every pair clearly apart (the stable pair above: < 40 in RGB)
    assert not (np.abs(rgb.astype(int) - UNLABELLED_RGB).max(1) < 20).any()
    assert picture_colors([np.zeros((3, 3), int)])[0].size == 0


def test_id_anchors_sit_inside_the_largest_segments():
    from lift3d.overlay import id_anchors

    lab = np.zeros((60, 80), np.int32)
    lab[:, :50] = 7  # large
    lab[10:30, 55:75] = 300  # medium
    lab[50:52, 70:72] = 9  # 4 px: below min_frac
    anchors = id_anchors(lab, max_n=8, min_frac=0.01)
    assert [a[0] for a in anchors] == [7, 300]
    for i, x, y in anchors:
        assert lab[y, x] == i
    _, x, y = anchors[1]  # the rectangle's centre is its most interior pixel
    assert abs(x - 64.5) <= 1.5 and abs(y - 19.5) <= 1.5


def test_caption_outline_hugs_its_letters():
    """The strip's captions and ID numbers are white with a one-pixel black outline: every
    outline pixel touches a letter. Old main drew the outline as the text drawn thick, which
    OpenCV lays out wider (each character advances by the stroke thickness): outline pixels
    lay up to 9 px from any letter and "frame-000240" read as "frame-0002400"."""
    from scipy import ndimage

    from lift3d.overlay import _text

    for text, xy, center in (("frame-000240", (4, 16), False), ("137", (30, 10), True),
                             ("edge", (-5, 3), False)):
        img = np.full((40, 240, 3), 120, np.uint8)
        _text(img, text, xy, 0.5, center=center)
        white, black = (img == 255).all(-1), (img == 0).all(-1)
        assert white.sum() > 10 and black.sum() > white.sum() / 2
        assert ndimage.distance_transform_edt(~white)[black].max() <= 1.5
