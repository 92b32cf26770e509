"""The built-in digits dataset: sizes, ranges, a fixed split."""
import numpy as np

from fnn.data import load_digits


def test_digits_split_is_fixed_and_scaled():
    a, b = load_digits(), load_digits(flatten=False)
    assert a.x_train.shape == (1437, 64) and a.x_test.shape == (360, 64)
    assert b.x_train.shape == (1437, 8, 8, 1)
    assert a.x_train.dtype == np.float32 and a.y_train.dtype == np.int32
    assert 0.0 == a.x_train.min() and a.x_train.max() == 1.0
    np.testing.assert_array_equal(a.x_test, b.x_test.reshape(360, 64))
    np.testing.assert_array_equal(load_digits().y_test, a.y_test)          # deterministic
    assert set(np.unique(a.y_test)) == set(range(10))
