"""dense_index against np.unique on both of its paths (lookup table and sort)."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from lift3d.metrics._dense import dense_index


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(-5, 3_000_000), min_size=1, max_size=300),
    always=st.lists(st.integers(-3, 50), max_size=3),
)
def test_equals_numpy_unique(values, always):
    a = np.array(values, np.int64)
    ids, inv = dense_index(a, always=tuple(always))
    want_ids, want_inv = np.unique(np.r_[np.array(always, np.int64), a], return_inverse=True)
    np.testing.assert_array_equal(ids, want_ids)
    np.testing.assert_array_equal(inv, want_inv[len(always):])
    np.testing.assert_array_equal(ids[inv], a)


def test_label_maps_of_any_int_dtype():
    rng = np.random.default_rng(0)
    maps = rng.integers(0, 40, (3, 50, 60)).astype(np.uint16) * 7
    ids, inv = dense_index(maps, always=(0,))
    assert ids[0] == 0 and ids.dtype.kind == "i"
    np.testing.assert_array_equal(ids[inv].reshape(maps.shape), maps)


def test_bool_arrays_count_as_zero_and_one():
    ids, inv = dense_index(np.array([True, False, True]), always=(0,))
    np.testing.assert_array_equal(ids, [0, 1])
    np.testing.assert_array_equal(inv, [1, 0, 1])
