"""fnn._cpu_grad.value_and_grad: jax.value_and_grad with XLA:CPU-friendly convolution and
max-pool gradients. Same values (float64), the same tied maximum, only canonical convolutions
and no select-and-scatter in what it lowers to, and the layers stay plain lax (forward-mode
AD works through them)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn._cpu_grad import canonical_conv, value_and_grad


def rand(shape, seed=1):
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape))


def init(layer, in_shape):
    shapes = jax.eval_shape(lambda k: layer.init(k, in_shape)[0], jax.random.key(0))
    return jax.tree.map(lambda s: rand(s.shape, 3), shapes)


@pytest.mark.parametrize("dims", [("NHWC", "HWIO", "NHWC"), ("NCHW", "OIHW", "NCHW"),
                                  ("HNCW", "WHIO", "CWNH"), ("CHWN", "IOWH", "HCWN")])
def test_canonical_conv_equals_lax_for_any_dimension_numbers(x64, dims):
    lhs_spec, rhs_spec, _ = dims
    sizes = {"N": 2, "C": 4, "H": 7, "W": 6, "I": 2, "O": 6}
    lhs = rand(tuple(sizes[d] for d in lhs_spec))
    rhs = rand(tuple(sizes[d] if d not in "HW" else 3 for d in rhs_spec), 2)
    dn = jax.lax.conv_dimension_numbers(lhs.shape, rhs.shape, dims)
    kwargs = dict(window_strides=(2, 1), padding=((1, 0), (2, 1)), lhs_dilation=(1, 2),
                  rhs_dilation=(2, 1), feature_group_count=2)
    expected = jax.lax.conv_general_dilated(lhs, rhs, dimension_numbers=dn, **kwargs)
    np.testing.assert_allclose(canonical_conv(lhs, rhs, dimension_numbers=dn, **kwargs),
                               expected, rtol=1e-13, atol=1e-13)


def _convolution_labels(fun, *args):
    hlo = jax.jit(fun).lower(*args).as_text()
    return [line.split("dim_numbers = ")[1].split(", window")[0] for line in hlo.splitlines()
            if "stablehlo.convolution" in line]


@pytest.mark.parametrize("layer, in_shape", [
    (fnn.Conv2D(6, 3, strides=2, dilation=(1, 2), groups=2, padding=((1, 2), (0, 1))),
     (9, 8, 4)),
    (fnn.Conv1D(4, 5, padding="SAME"), (11, 3)),
    (fnn.Conv3D(2, (2, 3, 2), strides=(1, 2, 1)), (4, 5, 3, 2)),
    (fnn.ConvTranspose2D(6, 3, strides=2, padding=1, output_padding=1, groups=3), (4, 5, 3)),
])
def test_conv_gradients_equal_jax_and_use_only_canonical_convolutions(x64, layer, in_shape):
    params, x = init(layer, in_shape), rand((2, *in_shape), 5)
    loss = lambda px: jnp.sum(jnp.sin(layer(px[0], px[1])))
    (value, grads), (value_ref, grads_ref) = value_and_grad(loss)((params, x)), \
        jax.value_and_grad(loss)((params, x))
    np.testing.assert_allclose(value, value_ref, rtol=1e-13)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12),
                 grads, grads_ref)
    spatial = ", ".join(str(i) for i in range(len(in_shape) - 1))
    canonical = f"[b, {spatial}, f]x[{spatial}, i, o]->[b, {spatial}, f]"
    assert _convolution_labels(value_and_grad(loss), (params, x)) == [canonical] * 3  # y, dx, dw
    assert canonical in _convolution_labels(jax.value_and_grad(loss), (params, x))
    assert set(_convolution_labels(jax.value_and_grad(loss), (params, x))) != {canonical}


@pytest.mark.parametrize("window, in_shape", [
    ((2,), (2, 9, 3)),            # 1-D, a remainder cell that VALID pooling drops
    ((2, 2), (2, 6, 7, 3)),
    ((3, 2), (1, 6, 4, 2)),
    ((2, 1, 2), (1, 4, 3, 4, 2)),  # 3-D
])
def test_max_pool_gradient_is_the_same_first_maximum_even_on_ties(x64, window, in_shape):
    """Values 0, 1, 2 make many windows tie: the rewritten gradient must pick the same cell as
    select-and-scatter (the first maximum, row-major), with one nonzero cell per window."""
    x = jnp.asarray(np.random.default_rng(0).integers(0, 3, in_shape).astype(np.float64))
    pool = fnn.MaxPool(window)
    g = rand(pool({}, x).shape, 7)
    loss = lambda x: jnp.sum(g * pool({}, x))
    (value, grad), (value_ref, grad_ref) = value_and_grad(loss)(x), jax.value_and_grad(loss)(x)
    assert value == value_ref
    np.testing.assert_array_equal(grad, grad_ref)
    assert int(jnp.sum(grad != 0)) == g.size
    assert "select_and_scatter" in jax.jit(jax.grad(loss)).lower(x).as_text()
    assert "select_and_scatter" not in jax.jit(value_and_grad(loss)).lower(x).as_text()


def test_overlapping_or_padded_max_pools_keep_select_and_scatter(x64):
    x = rand((2, 8, 8, 3))
    for pool in (fnn.MaxPool(3, 2), fnn.MaxPool(2, padding=1)):
        loss = lambda x: jnp.sum(pool({}, x) ** 2)
        np.testing.assert_allclose(value_and_grad(loss)(x)[1], jax.grad(loss)(x), rtol=1e-13)
        assert "select_and_scatter" in jax.jit(value_and_grad(loss)).lower(x).as_text()


def test_layers_stay_plain_lax_so_forward_mode_works(x64):
    net = fnn.serial(fnn.Conv2D(3, 3), fnn.relu, fnn.MaxPool(2), fnn.Flatten(), fnn.Dense(2))
    params, x = init(net, (6, 6, 2)), rand((1, 6, 6, 2))
    f = lambda x: net(params, x)
    np.testing.assert_allclose(jax.jacfwd(f)(x), jax.jacrev(f)(x), rtol=1e-12, atol=1e-12)


def test_fit_trains_a_cnn_with_the_rewritten_gradient_like_plain_jax(x64):
    """fit's steps differentiate with value_and_grad: one SGD step equals the update from
    jax.grad of the same objective."""
    net = fnn.serial(fnn.Conv2D(4, 3), fnn.relu, fnn.MaxPool(2), fnn.Flatten(), fnn.Dense(3))
    params, x = init(net, (6, 6, 1)), rand((8, 6, 6, 1))
    y = jnp.arange(8) % 3
    objective = fnn.supervised(net)
    out = fnn.fit(objective, params, fnn.optim.sgd(0.1), (x, y), epochs=1, batch_size=None,
                  progress=False)
    grads = jax.grad(lambda p: objective(p, {}, (x, y), None, True)[0])(params)
    expected = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12),
                 out.params, expected)
