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
