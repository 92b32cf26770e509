"""fnn._cpu_grad.value_and_grad: jax.value_and_grad with XLA:CPU-friendly convolution and
max-pool gradients. Same values (float64), the same max-pool cell as select-and-scatter (ties,
NaN, infinities), only canonical convolutions and no select-and-scatter in what it lowers to,
also inside scan, cond, while, remat, closed_call and custom_jvp/custom_vjp (a warning
elsewhere); the layers stay plain lax (forward-mode AD works through them); on another
platform (forced) the gradient is JAX's own, jaxpr for jaxpr."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn._cpu_grad import (canonical_conv, force_platform, target_platform,
                           value_and_grad)


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


def lowered(fun, *args):
    """(the StableHLO text of jit(fun) at args, its result): one trace serves both (run
    eagerly, fun would dispatch op by op)."""
    low = jax.jit(fun).lower(*args)
    return low.as_text(), low.compile()(*args)


def _labels(hlo):
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
    hlo, (value, grads) = lowered(value_and_grad(loss), (params, x))
    hlo_ref, (value_ref, grads_ref) = lowered(jax.value_and_grad(loss), (params, x))
    np.testing.assert_allclose(value, value_ref, rtol=1e-13)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12),
                 grads, grads_ref)
    spatial = ", ".join(str(i) for i in range(len(in_shape) - 1))
    canonical = f"[b, {spatial}, f]x[{spatial}, i, o]->[b, {spatial}, f]"
    assert _labels(hlo) == [canonical] * 3  # y, dx, dw
    assert canonical in _labels(hlo_ref)
    assert set(_labels(hlo_ref)) != {canonical}


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
    hlo, (value, grad) = lowered(value_and_grad(loss), x)
    hlo_ref, (value_ref, grad_ref) = lowered(jax.value_and_grad(loss), x)
    assert value == value_ref
    np.testing.assert_array_equal(grad, grad_ref)
    assert int(np.sum(np.asarray(grad) != 0)) == g.size
    assert "select_and_scatter" in hlo_ref
    assert "select_and_scatter" not in hlo


def test_overlapping_or_padded_max_pools_keep_select_and_scatter(x64):
    x = rand((2, 8, 8, 3))
    for pool in (fnn.MaxPool(3, 2), fnn.MaxPool(2, padding=1)):
        loss = lambda x: jnp.sum(pool({}, x) ** 2)
        hlo, (_, grad) = lowered(value_and_grad(loss), x)
        np.testing.assert_allclose(grad, jax.jit(jax.grad(loss))(x), rtol=1e-13)
        assert "select_and_scatter" in hlo


def test_layers_stay_plain_lax_so_forward_mode_works(x64):
    net = fnn.serial(fnn.Conv2D(3, 3), fnn.relu, fnn.MaxPool(2), fnn.Flatten(), fnn.Dense(2))
    params, x = init(net, (6, 6, 2)), rand((1, 6, 6, 2))
    f = lambda x: net(params, x)
    np.testing.assert_allclose(jax.jit(jax.jacfwd(f))(x), jax.jit(jax.jacrev(f))(x), rtol=1e-12,
                               atol=1e-12)


def test_fit_trains_a_cnn_with_the_rewritten_gradient_like_plain_jax(x64):
    """fit's steps differentiate with value_and_grad: one SGD step equals the update from
    jax.grad of the same objective."""
    net = fnn.serial(fnn.Conv2D(4, 3), fnn.relu, fnn.MaxPool(2), fnn.Flatten(), fnn.Dense(3))
    params, x = init(net, (6, 6, 1)), rand((8, 6, 6, 1))
    y = jnp.arange(8) % 3
    objective = fnn.supervised(net)
    out = fnn.fit(objective, params, fnn.optim.sgd(0.1), (x, y), epochs=1, batch_size=None,
                  progress=False)
    grads = jax.jit(jax.grad(lambda p: objective(p, {}, (x, y), None, True)[0]))(params)
    expected = jax.tree.map(lambda p, g: p - 0.1 * g, params, grads)
    jax.tree.map(lambda a, b: np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12),
                 out.params, expected)


# ----------------------------------------------------------------------------- NaN and inf

@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_max_pool_gradient_picks_select_and_scatters_cell_in_every_window_of_four(dtype):
    """All 6**4 windows of four cells drawn from 0, 1, NaN, +inf, -inf, -0: the rewritten
    gradient sends each window's cotangent to the cell XLA's select-and-scatter picks (argmax
    would send it to the first NaN; select-and-scatter hands a NaN's choice on to the next
    cell)."""
    values = np.array([0.0, 1.0, np.nan, np.inf, -np.inf, -0.0], dtype)
    windows = np.stack(np.meshgrid(*[values] * 4, indexing="ij"), -1).reshape(-1, 4)
    with jax.enable_x64(dtype == np.float64):
        x = jnp.asarray(windows.reshape(1, -1))                      # (1, 1296 * 4)
        g = jnp.asarray(np.random.default_rng(0).uniform(1, 2, (1, len(windows))).astype(dtype))
        loss = lambda x: jnp.sum(g * jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 4),
                                                           (1, 4), "VALID"))
        hlo, (_, grad) = lowered(value_and_grad(loss), x)
        grad, grad_ref = np.asarray(grad), np.asarray(jax.jit(jax.grad(loss))(x))
        assert "select_and_scatter" not in hlo
    np.testing.assert_array_equal(grad, grad_ref)
    assert np.sum(grad != 0) == len(windows)
    first_nan = np.isnan(windows) & (np.cumsum(np.isnan(windows), axis=1) == 1)
    routed = grad_ref.reshape(-1, 4) != 0
    assert np.any(first_nan & ~routed)  # where argmax (the first NaN) would be wrong


@pytest.mark.parametrize("window, in_shape", [
    ((3,), (2, 9, 3)),
    ((2, 2), (2, 6, 7, 3)),
    ((3, 2), (1, 6, 4, 2)),
    ((2, 1, 2), (1, 4, 3, 4, 2)),
])
def test_max_pool_gradient_routes_nan_inf_and_ties_like_select_and_scatter(x64, window,
                                                                            in_shape):
    rng = np.random.default_rng(1)
    values = np.array([0.0, 1.0, np.nan, np.inf, -np.inf])
    x = jnp.asarray(values[rng.integers(0, len(values), in_shape)])
    pool = fnn.MaxPool(window)
    g = rand(pool({}, jnp.zeros(in_shape)).shape, 7)
    loss = lambda x: jnp.sum(g * pool({}, x))
    grad, grad_ref = jax.jit(value_and_grad(loss))(x)[1], jax.jit(jax.grad(loss))(x)
    np.testing.assert_array_equal(grad, grad_ref)
    assert int(np.sum(np.asarray(grad) != 0)) == g.size
    assert np.any(np.isnan(x)) and np.any(np.isinf(x))


# ----------------------------------------------------------------------------- nesting

def _conv(x, w):
    return jax.lax.conv_general_dilated(x, w, (1, 1), "SAME",
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))


def _max_pool(x):
    return jax.lax.reduce_window(x, -jnp.inf, jax.lax.max, (1, 2, 2, 1), (1, 2, 2, 1), "VALID")


def _pooled(w, x):
    return _max_pool(jnp.tanh(_conv(x, w)))


def _input_grad(w, x):  # holds a transposed convolution and a select-and-scatter
    return jax.grad(lambda x: jnp.sum(_pooled(w, x) ** 2))(x)


_custom_jvp_input_grad = jax.custom_jvp(_input_grad)
_custom_jvp_input_grad.defjvp(lambda primals, tangents: (
    _custom_jvp_input_grad(*primals), jax.jvp(_input_grad, primals, tangents)[1]))
_custom_vjp_input_grad = jax.custom_vjp(_input_grad)
_custom_vjp_input_grad.defvjp(lambda w, x: (_input_grad(w, x), (w, x)),
                              lambda res, g: jax.vjp(_input_grad, *res)[1](g))


def _closed_call(f, *args):
    call = jax.extend.core.primitives.closed_call_p
    jaxpr = jax.make_jaxpr(f)(*args)
    return call.bind(*args, **call.get_bind_params({"call_jaxpr": jaxpr}))[0]


_sg = jax.lax.stop_gradient
NESTED = {  # name: (the primitive of jax.value_and_grad's jaxpr they hide in, loss(w, x))
    "plain": (None, lambda w, x: jnp.sum(_pooled(w, x))),
    "scan": ("scan", lambda w, x: jnp.sum(jax.lax.scan(
        lambda c, _: (jnp.tanh(_conv(c, w)), jnp.sum(_pooled(w, c))), x, None, length=2)[1])),
    "cond": ("cond", lambda w, x: jax.lax.cond(
        jnp.sum(w) > 0, lambda w: jnp.sum(_pooled(w, x)), lambda w: jnp.sum(_pooled(-w, x)), w)),
    "while": ("while", lambda w, x: jnp.sum(_pooled(w, jax.lax.while_loop(
        lambda c: c[1] < 2, lambda c: (c[0] - 0.1 * _input_grad(_sg(w), c[0]), c[1] + 1),
        (x, 0))[0]))),
    "remat": ("remat2", lambda w, x: jnp.sum(jax.checkpoint(_pooled)(w, x))),
    "closed_call": ("closed_call", lambda w, x: jnp.sum(_closed_call(_pooled, w, x))),
    "custom_jvp": ("custom_jvp_call", lambda w, x: jnp.sum(_pooled(w, x))
                   + jnp.sum(_custom_jvp_input_grad(_sg(w), x))),
    "custom_vjp": ("custom_vjp_call", lambda w, x: jnp.sum(_pooled(w, x))
                   + jnp.sum(_custom_vjp_input_grad(_sg(w), x))),
}
CANONICAL_2D = "[b, 0, 1, f]x[0, 1, i, o]->[b, 0, 1, f]"


def _primitives(jaxpr) -> set:
    """Names of the primitives of ``jaxpr`` and of the jaxprs nested in it."""
    return {e.primitive.name for e in jaxpr.eqns} | {
        name for e in jaxpr.eqns for sub in jax.extend.core.jaxprs_in_params(e.params)
        for name in _primitives(sub)}


def _primitives_inside(jaxpr, primitive: str) -> set:
    """Names of the primitives nested in the equations of ``primitive`` anywhere in jaxpr."""
    return {name for e in jaxpr.eqns for sub in jax.extend.core.jaxprs_in_params(e.params)
            for name in (_primitives(sub) if e.primitive.name == primitive
                         else _primitives_inside(sub, primitive))}


@pytest.mark.parametrize("name", sorted(NESTED))
def test_nested_convolutions_and_max_pool_gradients_are_rewritten(x64, name):
    primitive, loss = NESTED[name]
    w, x = rand((3, 3, 3, 3), 12), rand((2, 4, 4, 3), 11)
    if primitive is not None:  # JAX's gradient hides a select-and-scatter inside it
        jaxpr = jax.make_jaxpr(jax.value_and_grad(loss))(w, x).jaxpr
        assert "select_and_scatter_add" in _primitives_inside(jaxpr, primitive)
    hlo, (value, grad) = lowered(value_and_grad(loss), w, x)
    hlo_ref, (value_ref, grad_ref) = lowered(jax.value_and_grad(loss), w, x)
    np.testing.assert_allclose(value, value_ref, rtol=1e-13)
    np.testing.assert_allclose(grad, grad_ref, rtol=1e-11, atol=1e-12)
    assert set(_labels(hlo_ref)) != {CANONICAL_2D}
    assert "select_and_scatter" in hlo_ref
    assert set(_labels(hlo)) == {CANONICAL_2D}
    assert "select_and_scatter" not in hlo


def test_convolutions_inside_shard_map_stay_and_one_warning_says_so(x64):
    """Two shard_maps hold convolutions and max pools: one warning for the computation."""
    from jax.sharding import PartitionSpec as P

    mesh = jax.make_mesh((1,), ("data",))
    inside = jax.shard_map(_pooled, mesh=mesh, in_specs=(P(), P()), out_specs=P())
    loss = lambda w, x: jnp.sum(inside(w, x)) + jnp.sum(inside(2 * w, x))
    w, x = rand((3, 3, 3, 3), 12), rand((2, 4, 4, 3), 11)
    with pytest.warns(UserWarning) as record:
        hlo, (value, grad) = lowered(value_and_grad(loss), w, x)
    assert [str(r.message) for r in record] == [
        "value_and_grad: convolutions or max-pool gradients inside shard_map stay on XLA:CPU's "
        "slow path (jax-ml/jax#12868): fnn rewrites them only inside the scan, cond, while, "
        "checkpoint, closed_call, custom_jvp and custom_vjp bodies it can re-trace"]
    np.testing.assert_allclose(grad, jax.jit(jax.grad(loss))(w, x), rtol=1e-11, atol=1e-12)
    assert "select_and_scatter" in hlo


# ----------------------------------------------------------------------------- the decision

def _mlp_cnn_loss():
    net = fnn.serial(fnn.Conv2D(3, 3), fnn.relu, fnn.MaxPool(2), fnn.Flatten(), fnn.Dense(2))
    params, x = init(net, (6, 6, 2)), rand((4, 6, 6, 2))
    return (lambda p: jnp.sum(net(p, x) ** 2)), params


@pytest.mark.parametrize("canonical_matmuls", [False, True])
def test_on_another_platform_the_gradient_is_jaxs_own(x64, canonical_matmuls):
    loss, params = _mlp_cnn_loss()
    ours = lambda: value_and_grad(loss, canonical_matmuls=canonical_matmuls)
    expected = str(jax.make_jaxpr(jax.value_and_grad(loss))(params))
    with force_platform("gpu"):
        assert str(jax.make_jaxpr(ours())(params)) == expected
        assert str(jax.make_jaxpr(lambda: ours()(params))()) == str(
            jax.make_jaxpr(lambda: jax.value_and_grad(loss)(params))())  # concrete arrays
    assert str(jax.make_jaxpr(value_and_grad(loss, platform="tpu"))(params)) == expected
    assert str(jax.make_jaxpr(ours())(params)) != expected  # on the CPU: rewritten


def test_the_decision_takes_concrete_arrays_devices_over_the_default_backend(x64, monkeypatch):
    """CPU arrays while another default backend is set (simulated): concrete CPU arguments are
    rewritten, traced ones follow the default backend unless platform= says otherwise."""
    monkeypatch.setattr(jax, "default_backend", lambda: "gpu")
    loss, params = _mlp_cnn_loss()
    assert target_platform((params,)) == "cpu"
    assert target_platform((params,), "tpu") == "tpu"
    assert jax.jit(lambda p: jnp.asarray(target_platform(p) == "gpu"))(params)
    with jax.default_device(jax.devices("cpu")[0]):
        assert jax.jit(lambda p: jnp.asarray(target_platform(p) == "cpu"))(params)
    with force_platform("gpu"):
        assert target_platform((params,)) == "gpu"
        assert target_platform((params,), "cpu") == "cpu"
    concrete = jax.jit(lambda: value_and_grad(loss)(params)).lower().as_text()
    traced = jax.jit(value_and_grad(loss)).lower(params).as_text()
    explicit = jax.jit(value_and_grad(loss, platform="cpu")).lower(params).as_text()
    assert "select_and_scatter" not in concrete and "select_and_scatter" not in explicit
    assert "select_and_scatter" in traced


def test_canonical_matmuls_equal_jax_and_keep_their_backward_out_of_dot_general_transposes(x64):
    net = fnn.serial(fnn.Dense(5), fnn.tanh, fnn.Dense(3))
    params, x = init(net, (4,)), rand((6, 4))
    loss = lambda p: jnp.sum(jnp.sin(net(p, x)))
    (value, grads), (value_ref, grads_ref) = (
        jax.jit(value_and_grad(loss, canonical_matmuls=True))(params),
        jax.jit(jax.value_and_grad(loss))(params))
    np.testing.assert_allclose(value, value_ref, rtol=1e-13)
    chex.assert_trees_all_close(grads, grads_ref, rtol=1e-12, atol=1e-12)
    contracting = lambda f: {str(e.params["dimension_numbers"][0]) for e in
                             jax.make_jaxpr(f)(params).eqns if e.primitive.name == "dot_general"}
    assert contracting(jax.value_and_grad(loss)) == {"((1,), (0,))", "((0,), (0,))", "((1,), (1,))"}
    assert contracting(value_and_grad(loss, canonical_matmuls=True)) == {"((1,), (0,))"}


def test_bad_arguments_name_value_and_grad():
    with pytest.raises(TypeError, match="value_and_grad: fun must be a function"):
        value_and_grad(3)
    with pytest.raises(TypeError, match="value_and_grad: has_aux must be True or False, got 1"):
        value_and_grad(jnp.sum, has_aux=1)
    with pytest.raises(TypeError, match="value_and_grad: platform must be a non-empty string "
                                        "or None, got 0"):
        value_and_grad(jnp.sum, platform=0)
