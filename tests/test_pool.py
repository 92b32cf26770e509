"""Pooling: values against a NumPy window loop, the notes' L2 pooling, the shape-agreement
sweep over window x stride x padding, gradients and error messages."""
import itertools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.check import gradcheck

KEY = jax.random.key(0)


def rand(shape, seed=1):
    """Standard normal float32 inputs (NumPy's generator: no per-shape compile)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape, np.float32))


def pool_reference(x, window, strides, pads, reduce, fill):
    """y[n, i, j, c] = reduce(x_pad[n, s i : s i + k, s j : s j + k, c]), NumPy, NHWC."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), *pads, (0, 0)), constant_values=fill)
    (kh, kw), (sh, sw) = window, strides
    ho, wo = (x.shape[1] - kh) // sh + 1, (x.shape[2] - kw) // sw + 1
    y = np.zeros((x.shape[0], ho, wo, x.shape[3]))
    for i, j in itertools.product(range(ho), range(wo)):
        y[:, i, j] = reduce(x[:, i * sh:i * sh + kh, j * sw:j * sw + kw], axis=(1, 2))
    return y


def l2(a, axis):
    return np.sqrt(np.sum(a ** 2, axis=axis))


@pytest.mark.parametrize("layer, reduce, fill, window, strides, pads", [
    (fnn.MaxPool(2), np.max, -np.inf, (2, 2), (2, 2), ((0, 0), (0, 0))),
    (fnn.MaxPool((3, 2), (2, 1), padding=1), np.max, -np.inf, (3, 2), (2, 1), ((1, 1), (1, 1))),
    (fnn.MaxPool(3, 2, padding="SAME"), np.max, -np.inf, (3, 3), (2, 2), ((1, 1), (0, 1))),
    (fnn.AvgPool(2), np.mean, 0.0, (2, 2), (2, 2), ((0, 0), (0, 0))),
    (fnn.AvgPool(3, 1, padding=((1, 0), (0, 2))), np.mean, 0.0, (3, 3), (1, 1), ((1, 0), (0, 2))),
    (fnn.LPPool(2, 2), l2, 0.0, (2, 2), (2, 2), ((0, 0), (0, 0))),           # the notes' L2
    (fnn.LPPool(3, (2, 3), 1, padding=1),
     lambda a, axis: np.sum(np.abs(a) ** 3, axis=axis) ** (1 / 3), 0.0, (2, 3), (1, 1),
     ((1, 1), (1, 1))),
])
def test_pool_values_match_a_window_loop(layer, reduce, fill, window, strides, pads):
    x = rand((2, 7, 6, 3))
    expected = pool_reference(x, window, strides, pads, reduce, fill)
    np.testing.assert_allclose(layer.apply({}, {}, x)[0], expected, rtol=1e-5, atol=1e-6)


def test_l2_pooling_is_the_root_of_the_sum_of_squares_over_2x2():
    x = jnp.array([[3.0, 4.0, 1.0, 1.0], [0.0, 0.0, 1.0, 1.0]]).reshape(1, 2, 4, 1)
    y = fnn.LPPool(2, 2).apply({}, {}, x)[0]
    np.testing.assert_allclose(y.ravel(), [5.0, 2.0], rtol=1e-6)


def test_avg_pool_count_include_pad():
    x = jnp.ones((1, 3, 3, 1))
    inc = fnn.AvgPool(3, 1, padding=1).apply({}, {}, x)[0]
    exc = fnn.AvgPool(3, 1, padding=1, count_include_pad=False).apply({}, {}, x)[0]
    assert float(inc[0, 0, 0, 0]) == pytest.approx(4 / 9) and float(inc[0, 1, 1, 0]) == 1.0
    np.testing.assert_allclose(exc, np.ones((1, 3, 3, 1)), rtol=1e-6)


def test_pool_shapes_agree_over_window_stride_padding():
    x = rand((2, 9, 8, 3))
    paddings = ("VALID", "SAME", 1, ((1, 0), (0, 2)))
    sweep = [(fnn.MaxPool, w, s, p) for w, s, p in itertools.product((2, (3, 2)), (None, 1, 2),
                                                                         paddings)]
    sweep += [(make, (3, 2), s, p) for make, s, p in itertools.product(   # same window logic
        (fnn.AvgPool, lambda *a, **k: fnn.LPPool(2, *a, **k)), (None, 2), paddings)]
    for make, window, strides, pad in sweep:
        layer = make(window, strides, padding=pad)
        # eval_shape traces apply as a real call does (every shape it makes and checks)
        # without compiling 40 programs
        y = jax.eval_shape(lambda x: layer.apply({}, {}, x)[0], x)
        assert y.shape[1:] == layer.output_shape((9, 8, 3)), (window, strides, pad)


@pytest.mark.parametrize("layer, in_shape, out_shape", [
    (fnn.MaxPool(2), (9, 4), (4, 4)),                      # 1D: rank from the input
    (fnn.AvgPool(2, padding="SAME"), (5, 4, 3, 2), (3, 2, 2, 2)),
    (fnn.LPPool(2, (2, 1, 3), 1), (5, 4, 3, 2), (4, 4, 1, 2)),
    (fnn.GlobalAvgPool(), (5, 4, 3), (3,)),
    (fnn.GlobalMaxPool(), (6, 2), (2,)),
])
def test_pool_ranks_and_global_pools(layer, in_shape, out_shape):
    x = rand((2, *in_shape))
    assert layer.output_shape(in_shape) == out_shape
    assert layer.apply({}, {}, x)[0].shape == (2, *out_shape)


def test_global_pools_values():
    x = rand((2, 3, 4, 5))
    np.testing.assert_allclose(fnn.GlobalAvgPool().apply({}, {}, x)[0], x.mean(axis=(1, 2)),
                               rtol=1e-6)
    np.testing.assert_allclose(fnn.GlobalMaxPool().apply({}, {}, x)[0], x.max(axis=(1, 2)))


@pytest.mark.parametrize("layer", [
    fnn.MaxPool(2, 1, padding=1), fnn.AvgPool(3, 2, padding=1, count_include_pad=False),
    fnn.LPPool(2, 2, 1), fnn.LPPool(3, 2, padding="SAME"), fnn.GlobalAvgPool(),
    fnn.GlobalMaxPool()], ids=lambda l: l.name)
def test_pool_gradients_match_finite_differences(layer):
    x = rand((1, 3, 4, 2))          # distinct values: the max is unique in every window
    cot = rand((1, *layer.output_shape((3, 4, 2))), seed=2)
    gradcheck(lambda x, cot: jnp.sum(layer.apply({}, {}, x)[0] * cot), x, cot)


def test_lp_pool_of_an_all_zero_window_has_zero_gradient():
    x = jnp.zeros((1, 2, 2, 1)).at[0, 0, 0, 0].set(1.0).at[0, 0, 1, 0].set(0.0)
    layer = fnn.LPPool(2, (1, 2))
    g = jax.grad(lambda x: jnp.sum(layer.apply({}, {}, x)[0]))(x)
    assert np.all(np.isfinite(g))
    np.testing.assert_array_equal(g.ravel(), [1.0, 0.0, 0.0, 0.0])


def test_pool_errors_name_the_layer_expected_and_given():
    with pytest.raises(ValueError, match=r"max_pool: window must be an int >= 1 or a tuple of "
                                         r"them, got 0"):
        fnn.MaxPool(0)
    with pytest.raises(ValueError, match=r"avg_pool: padding must be 'SAME', 'VALID'.*got 'full'"):
        fnn.AvgPool(2, padding="full")
    with pytest.raises(ValueError, match=r"lp_pool: p must be a finite number >= 1, got 0.5"):
        fnn.LPPool(0.5, 2)
    with pytest.raises(ValueError, match=r"max_pool: expected examples of shape \(\*spatial, "
                                         r"channels\) with 2 spatial dim\(s\), got \(8, 8\)"):
        fnn.MaxPool((2, 2)).init(KEY, (8, 8))
    with pytest.raises(ValueError, match=r"max_pool: the window \(3, 3\) does not fit in the "
                                         r"spatial input \(2, 2\) padded by "
                                         r"\(\(0, 0\), \(0, 0\)\)"):
        fnn.MaxPool(3).init(KEY, (2, 2, 1))
    with pytest.raises(ValueError, match=r"global_avg_pool: expected input_shape \(\*spatial, "
                                         r"channels\).*got \(5,\)"):
        fnn.GlobalAvgPool().init(KEY, (5,))


def test_pools_differentiate_under_jit():
    x = rand((2, 4, 4, 3))
    for layer in (fnn.MaxPool(2), fnn.AvgPool(2, padding="SAME"), fnn.LPPool(2, 2),
                  fnn.GlobalMaxPool()):
        g = jax.jit(jax.grad(lambda x: jnp.sum(layer.apply({}, {}, x)[0] ** 2)))(x)
        np.testing.assert_allclose(
            g, jax.grad(lambda x: jnp.sum(layer.apply({}, {}, x)[0] ** 2))(x), rtol=1e-6)
