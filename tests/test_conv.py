"""Conv and ConvTranspose: the notes' grouped-conv counts, a direct-sum reference, the
shape-agreement sweep, the transpose-as-VJP identity, gradients and error messages."""
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


def count(params):
    return sum(a.size for a in jax.tree.leaves(params))


def init(layer, in_shape, seed=3):
    """``layer.init``'s params (checked by shape) filled from NumPy: a sweep over many kernel
    shapes then compiles no random sampler per shape."""
    shapes = jax.eval_shape(lambda k: layer.init(k, in_shape)[0], KEY)
    return jax.tree.map(lambda s: rand(s.shape, seed), shapes)


@pytest.mark.parametrize("groups, per_filter", [(1, 32), (2, 16), (4, 8)])
def test_grouped_conv_parameter_counts_match_the_notes(groups, per_filter):
    # notes (seed 001): 32 -> 64 channels, 3x3: 64 filters of 3x3x(32/g), 64*3*3*32/g weights
    layer = fnn.Conv2D(64, 3, groups=groups)
    params = jax.eval_shape(lambda k: layer.init(k, (8, 8, 32))[0], KEY)    # shapes only
    assert params["w"].shape == (3, 3, per_filter, 64)
    assert count(params) == 64 * 3 * 3 * per_filter + 64
    assert count(params) == {1: 18496, 2: 9280, 4: 4672}[groups]


def conv_reference(x, w, b, strides, dilation, pads, groups):
    """Direct sum, NumPy, NHWC:
    y[n, i, j, o] = b[o] + sum_{t, u, c} x_pad[n, s i + d t, s j + d u, g(o) + c] w[t, u, c, o]."""
    x = np.pad(np.asarray(x, np.float64), ((0, 0), *pads, (0, 0)))
    w = np.asarray(w, np.float64)
    (kh, kw, cg, n_out), (sh, sw), (dh, dw) = w.shape, strides, dilation
    ho = (x.shape[1] - dh * (kh - 1) - 1) // sh + 1
    wo = (x.shape[2] - dw * (kw - 1) - 1) // sw + 1
    y = np.zeros((x.shape[0], ho, wo, n_out))
    for i, j, o in itertools.product(range(ho), range(wo), range(n_out)):
        g = o // (n_out // groups)
        patch = x[:, i * sh:i * sh + dh * (kh - 1) + 1:dh, j * sw:j * sw + dw * (kw - 1) + 1:dw,
                  g * cg:(g + 1) * cg]
        y[:, i, j, o] = np.einsum("nhwc,hwc->n", patch, w[..., o]) + b[o]
    return y


@pytest.mark.parametrize("strides, dilation, padding, pads, groups", [
    ((1, 1), (1, 1), "VALID", ((0, 0), (0, 0)), 1),
    ((2, 1), (1, 2), ((1, 0), (2, 1)), ((1, 0), (2, 1)), 2),
    ((2, 2), (2, 1), 1, ((1, 1), (1, 1)), 4),
    ((1, 1), (1, 1), "SAME", ((1, 1), (0, 1)), 2),          # kernel (3, 2): odd pad goes high
])
def test_conv_equals_the_direct_sum(strides, dilation, padding, pads, groups):
    layer = fnn.Conv(8, (3, 2), strides=strides, padding=padding, dilation=dilation,
                     groups=groups)
    params = init(layer, (7, 6, 4))
    x = rand((2, 7, 6, 4))
    y = layer(params, x)
    expected = conv_reference(x, params["w"], params["b"], strides, dilation, pads, groups)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_conv_shapes_agree_over_stride_padding_groups_dilation():
    x = rand((2, 9, 8, 4))
    for s, pad, g, d in itertools.product((1, 2, 3), ("SAME", "VALID", 1, ((2, 0), (1, 3))),
                                          (1, 4), (1, 2)):
        layer = fnn.Conv2D(4, (3, 2), strides=s, padding=pad, groups=g, dilation=d)
        params = init(layer, (9, 8, 4))
        y = jax.jit(layer)(params, x)
        assert y.shape[1:] == layer.output_shape((9, 8, 4)), (s, pad, g, d)
        if pad == "SAME":
            assert y.shape[1:3] == (-(-9 // s), -(-8 // s))        # ceil(in / s)


@pytest.mark.parametrize("make, in_shape, out_shape", [
    (lambda: fnn.Conv1D(5, 3, strides=2, padding=1), (11, 2), (6, 5)),
    (lambda: fnn.Conv(5, 3, padding="VALID"), (11, 2), (9, 5)),          # rank from the input
    (lambda: fnn.Conv(5, 3, padding="VALID"), (5, 6, 7, 2), (3, 4, 5, 5)),
    (lambda: fnn.Conv3D(4, (3, 1, 2), strides=(1, 2, 1), groups=2), (4, 5, 3, 2), (4, 3, 3, 4)),
    (lambda: fnn.ConvTranspose1D(3, 4, strides=2, padding=1), (5, 2), (10, 3)),
    (lambda: fnn.ConvTranspose3D(2, 2, strides=2), (2, 3, 1, 2), (4, 6, 2, 2)),
])
def test_1d_and_3d_shapes(make, in_shape, out_shape):
    layer = make()
    params = init(layer, in_shape)
    assert layer.output_shape(in_shape) == out_shape
    assert layer(params, rand((2, *in_shape))).shape == (2, *out_shape)


def test_1x1_conv_is_dense_on_channels():
    conv, dense = fnn.Conv2D(3, 1), fnn.Dense(3)
    params = init(conv, (4, 4, 5))
    x = rand((2, 4, 4, 5))
    flat = {"w": params["w"].reshape(5, 3), "b": params["b"]}
    np.testing.assert_allclose(conv(params, x), dense(flat, x), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("s, pad, op, d, g", [
    (s, pad, 0 if pad == "SAME" else s - 1, d, g)       # output_padding: the largest allowed
    for s, pad, (d, g) in itertools.product((1, 2, 3), ("SAME", "VALID", 1, ((2, 0), (0, 3))),
                                            ((1, 1), (2, 2)))])
def test_conv_transpose_is_the_vjp_of_conv(s, pad, op, d, g):
    """y = vjp(z -> conv(z, w))(x): the same kernel, the same settings."""
    t = fnn.ConvTranspose2D(4, (3, 2), strides=s, padding=pad, output_padding=op, dilation=d,
                            groups=g, use_bias=False)
    params = init(t, (4, 5, 2))
    x = rand((2, 4, 5, 2))
    y = jax.jit(t)(params, x)
    assert y.shape[1:] == t.output_shape((4, 5, 2))
    conv = fnn.Conv2D(2, (3, 2), strides=s, padding=pad, dilation=d, groups=g, use_bias=False)
    assert conv.output_shape(y.shape[1:]) == (4, 5, 2)       # conv maps y's size back to x's
    vjp = jax.jit(lambda x: jax.vjp(lambda z: conv(params, z), jnp.zeros_like(y))[1](x)[0])
    np.testing.assert_allclose(y, vjp(x), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("size, k, s, p, op, d", [
    (5, 3, 2, 1, 1, 1), (4, 4, 2, 1, 0, 1), (3, 3, 3, 0, 2, 2), (6, 1, 1, 0, 0, 1),
    (4, 5, 2, 3, 1, 1)])
def test_conv_transpose_output_size_matches_pytorch(size, k, s, p, op, d):
    layer = fnn.ConvTranspose1D(2, k, strides=s, padding=p, output_padding=op, dilation=d)
    assert layer.output_shape((size, 3)) == ((size - 1) * s - 2 * p + d * (k - 1) + op + 1, 2)
    assert fnn.ConvTranspose2D(2, k, strides=s, padding="SAME").output_shape(
        (size, size, 3)) == (size * s, size * s, 2)


def test_conv_gradients_match_finite_differences():
    conv = fnn.Conv2D(4, 3, strides=2, padding=((1, 0), (0, 1)), dilation=(1, 2), groups=2)
    params = init(conv, (4, 5, 2))
    x = rand((1, 4, 5, 2))
    cot = rand((1, *conv.output_shape((4, 5, 2))), seed=2)
    gradcheck(lambda px, cot: jnp.sum(conv(px[0], px[1]) * cot), (params, x), cot)



def test_conv_transpose_gradients_match_finite_differences():
    t = fnn.ConvTranspose2D(4, (3, 2), strides=(2, 1), padding=1, output_padding=(1, 0),
                            groups=2)
    params = init(t, (3, 3, 2))
    x = rand((1, 3, 3, 2))
    cot = rand((1, *t.output_shape((3, 3, 2))), seed=2)
    gradcheck(lambda px, cot: jnp.sum(t(px[0], px[1]) * cot), (params, x), cot)


def test_conv_jits_inside_serial():
    net = fnn.serial(fnn.Conv2D(4, 3), fnn.relu, fnn.Conv2D(4, 3, strides=2, groups=2),
                     fnn.ConvTranspose2D(2, 3, strides=2))
    params, _ = net.init(KEY, (6, 6, 3))
    x = rand((2, 6, 6, 3))
    np.testing.assert_allclose(jax.jit(net)(params, x), net(params, x), rtol=1e-5, atol=1e-6)
    assert set(params) == {"conv_0", "conv_1", "conv_transpose_0"}


def test_conv_errors_name_the_layer_expected_and_given():
    with pytest.raises(ValueError, match=r"conv: in_channels \(=6\) must be divisible by "
                                         r"groups \(=4\)"):
        fnn.Conv2D(8, 3, groups=4).init(KEY, (5, 5, 6))
    with pytest.raises(ValueError, match=r"Conv2D: features \(=6\) must be divisible by "
                                         r"groups \(=4\)"):
        fnn.Conv2D(6, 3, groups=4, name="Conv2D")
    with pytest.raises(ValueError, match=r"conv: kernel_size must be an int >= 1 or a tuple "
                                         r"of them, got 0"):
        fnn.Conv(4, 0)
    with pytest.raises(ValueError, match=r"conv: kernel_size \(3, 3, 3\) has 3 entries but the "
                                         r"input has 2 spatial dims"):
        fnn.Conv2D(4, (3, 3, 3))
    with pytest.raises(ValueError, match=r"conv: padding must be 'SAME', 'VALID'.*got 'same-ish'"):
        fnn.Conv2D(4, 3, padding="same-ish")
    with pytest.raises(ValueError, match=r"conv: expected input_shape \(\*spatial, channels\) "
                                         r"with 2 spatial dim\(s\), got \(28, 28\)"):
        fnn.Conv2D(4, 3).init(KEY, (28, 28))
    with pytest.raises(ValueError, match=r"conv: the dilated kernel \(5, 5\) does not fit"):
        fnn.Conv2D(4, 3, dilation=2, padding="VALID").init(KEY, (4, 4, 1))
    layer = fnn.Conv2D(4, 3)
    params, _ = layer.init(KEY, (5, 5, 3))
    with pytest.raises(ValueError, match=r"conv: expected input of shape \(batch, <2 spatial "
                                         r"dims>, 3\), got \(2, 5, 5, 4\)"):
        layer(params, jnp.zeros((2, 5, 5, 4)))
    with pytest.raises(ValueError, match=r"conv_transpose: output_padding \(2, 2\) must be "
                                         r"smaller than strides \(2, 2\)"):
        fnn.ConvTranspose2D(4, 3, strides=2, padding=1, output_padding=2).init(KEY, (3, 3, 1))
    with pytest.raises(ValueError, match=r"conv_transpose: output_padding must be 0 with "
                                         r"padding='SAME'"):
        fnn.ConvTranspose2D(4, 3, strides=2, output_padding=1).init(KEY, (3, 3, 1))


def test_padding_forms_are_canonicalised_alike():
    x = rand((1, 6, 5, 2))
    ref = fnn.Conv2D(3, 3, padding=((1, 1), (1, 1)))
    params = init(ref, (6, 5, 2))
    for pad in (1, (1, 1), [1, 1], [[1, 1], [1, 1]], "same", "SAME"):
        np.testing.assert_allclose(fnn.Conv2D(3, 3, padding=pad)(params, x), ref(params, x),
                                   rtol=1e-6)
    with pytest.raises(ValueError, match=r"conv: padding \(1, 2, 3\) has 3 entries but the "
                                         r"input has 2 spatial dims"):
        fnn.Conv2D(3, 3, padding=(1, 2, 3)).init(KEY, (6, 5, 2))
    with pytest.raises(ValueError, match=r"conv: padding must be an int >= 0 or a tuple of "
                                         r"them, got -1"):
        fnn.Conv2D(3, 3, padding=-1)
    with pytest.raises(ValueError, match=r"conv: explicit padding must be \(lo, hi\) pairs"):
        fnn.Conv2D(3, 3, padding=((1, 2, 3), (0, 0)))


def test_params_from_another_layer_are_refused_by_name():
    params = init(fnn.Conv2D(2, 3, use_bias=False), (4, 4, 1))
    with pytest.raises(ValueError, match=r"conv: params lack \['b'\]"):
        fnn.Conv2D(2, 3)(params, jnp.zeros((1, 4, 4, 1)))
