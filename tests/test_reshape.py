"""Flatten and Reshape: the batch axis is kept; sizes must agree, -1 is inferred once."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.check import gradcheck

KEY = jax.random.key(0)


@pytest.mark.parametrize("layer, in_shape, out_shape", [
    (fnn.Flatten(), (4, 5, 3), (60,)),
    (fnn.Flatten(), (7,), (7,)),
    (fnn.Reshape((3, 20)), (4, 5, 3), (3, 20)),
    (fnn.Reshape((-1, 4)), (4, 5, 4), (20, 4)),
    (fnn.Reshape((2, -1, 5)), (20,), (2, 2, 5)),
    (fnn.Reshape(12), (3, 4), (12,)),
])
def test_shapes_agree_and_values_are_row_major(layer, in_shape, out_shape):
    x = jnp.arange(2 * np.prod(in_shape), dtype=jnp.float32).reshape(2, *in_shape)
    y, _ = layer.apply({}, {}, x)
    assert layer.output_shape(in_shape) == out_shape == y.shape[1:]
    np.testing.assert_array_equal(y, np.asarray(x).reshape(2, *out_shape))


def test_flatten_then_dense_in_a_cnn():
    net = fnn.serial(fnn.Conv2D(2, 3), fnn.Flatten(), fnn.Dense(3))
    params, _ = net.init(KEY, (4, 4, 1))
    assert params["dense_0"]["w"].shape == (32, 3)
    assert net(params, jnp.ones((5, 4, 4, 1))).shape == (5, 3)


def test_reshape_gradients_match_finite_differences():
    rng = np.random.default_rng(0)
    x, cot = rng.standard_normal((2, 3, 4), np.float32), rng.standard_normal((2, 4, 3), np.float32)
    layer = fnn.serial(fnn.Flatten(), fnn.Reshape((4, -1)))
    gradcheck(lambda x, cot: jnp.sum(layer({}, x) * cot), x, cot)


def test_reshape_errors_name_both_shapes():
    with pytest.raises(ValueError, match=r"reshape: cannot reshape examples of shape \(4, 5\) "
                                         r"\(20 values\) into \(3, 6\)"):
        fnn.Reshape((3, 6)).init(KEY, (4, 5))
    with pytest.raises(ValueError, match=r"reshape: cannot reshape examples of shape \(4, 5\) "
                                         r"\(20 values\) into \(3, -1\)"):
        fnn.Reshape((3, -1)).init(KEY, (4, 5))
    with pytest.raises(ValueError, match=r"reshape: cannot reshape examples of shape \(7,\)"):
        fnn.Reshape((2, 3))({}, jnp.zeros((1, 7)))
    with pytest.raises(ValueError, match=r"reshape: shape must be a tuple of positive ints "
                                         r"\(batch axis excluded\) with at most one -1, "
                                         r"got \(-1, -1\)"):
        fnn.Reshape((-1, -1))
    with pytest.raises(ValueError, match=r"got \(0, 3\)"):
        fnn.Reshape((0, 3))
