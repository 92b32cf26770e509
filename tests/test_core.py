"""The layer protocol and combinators: shapes, names, keys, state, errors."""
import dataclasses

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.core import Layer

KEY = jax.random.key(0)


def x_of(shape, batch=3, seed=1):
    # flat draw (fnn.initializers.draw): jax.random.normal's numbers, a program per power of 2
    return fnn.initializers.draw(jax.random.normal, jax.random.key(seed), (batch, *shape),
                                 jnp.float32)


def test_serial_names_params_like_the_math():
    net = fnn.serial(fnn.Dense(50), fnn.relu, fnn.Dense(4))
    params, state = net.init(KEY, (2,))
    assert set(params) == {"dense_0", "dense_1"}          # parameter-free layers add nothing
    chex.assert_shape(params["dense_0"]["w"], (2, 50))
    chex.assert_shape(params["dense_1"]["b"], (4,))
    assert state == {}
    x = x_of((2,))
    y, _ = net.apply(params, state, x)
    expected = jax.nn.relu(x @ params["dense_0"]["w"] + params["dense_0"]["b"][None]) \
        @ params["dense_1"]["w"] + params["dense_1"]["b"][None]
    np.testing.assert_allclose(y, expected, rtol=1e-6)
    np.testing.assert_allclose(net(params, x), y)        # the one-line stateless form


@pytest.mark.parametrize("make, in_shape", [
    (lambda: fnn.serial(fnn.Dense(7), fnn.tanh, fnn.Dense(3)), (5,)),
    (lambda: fnn.Dense(4), (6, 5)),                          # Dense on the last axis
    (lambda: fnn.Maxout(3, 4), (5,)),
    (lambda: fnn.serial(fnn.fan_out(2), fnn.parallel(fnn.Dense(3), fnn.Dense(4)),
                        fnn.fan_in_concat()), (5,)),
    (lambda: fnn.serial(fnn.fan_out(3), fnn.parallel(fnn.Dense(3), fnn.identity(), fnn.Dense(3)),
                        fnn.fan_in_sum()), (3,)),
    (lambda: fnn.residual(fnn.serial(fnn.Dense(5), fnn.relu, fnn.Dense(5))), (5,)),
    (lambda: fnn.residual(fnn.Dense(8), projection=fnn.Dense(8, use_bias=False)), (5,)),
    (lambda: fnn.serial(fnn.Lambda(lambda x: x.reshape(x.shape[0], -1)), fnn.Dense(2)), (3, 4)),
    (lambda: fnn.Activation("leaky_relu", alpha=0.2), (4,)),
])
def test_inferred_output_shape_equals_applied_shape(make, in_shape):
    net = make()
    params, state = net.init(KEY, in_shape)
    y, _ = net.apply(params, state, x_of(in_shape, batch=2))
    assert tuple(y.shape[1:]) == net.output_shape(in_shape)


def test_init_is_deterministic_per_key_and_differs_across_keys():
    net = fnn.serial(fnn.Dense(4), fnn.relu, fnn.Dense(2))
    a, _ = net.init(jax.random.key(3), (3,))
    b, _ = net.init(jax.random.key(3), (3,))
    c, _ = net.init(jax.random.key(4), (3,))
    chex.assert_trees_all_equal(a, b)
    assert not np.allclose(a["dense_0"]["w"], c["dense_0"]["w"])
    twins, _ = fnn.serial(fnn.Dense(3), fnn.Dense(3)).init(KEY, (3,))
    assert not np.allclose(twins["dense_0"]["w"], twins["dense_1"]["w"])  # one subkey per child


def test_residual_adds_the_skip_and_uses_the_projection():
    block = fnn.Dense(3)
    net = fnn.residual(block)
    params, _ = net.init(KEY, (3,))
    x = x_of((3,))
    np.testing.assert_allclose(net(params, x), block(params["block"], x) + x, rtol=1e-6)
    proj = fnn.residual(fnn.Dense(4), projection=fnn.Dense(4))
    p, _ = proj.init(KEY, (3,))
    assert set(p) == {"block", "projection"}
    np.testing.assert_allclose(proj(p, x), fnn.Dense(4)(p["block"], x) + fnn.Dense(4)(p["projection"], x),
                               rtol=1e-6)


def test_parallel_and_fan_in_concat_values():
    net = fnn.serial(fnn.fan_out(2), fnn.parallel(fnn.Dense(2), fnn.Dense(3)), fnn.fan_in_concat())
    params, _ = net.init(KEY, (4,))
    x = x_of((4,))
    branches = params["parallel_0"]
    expected = jnp.concatenate([fnn.Dense(2)(branches["dense_0"], x),
                                fnn.Dense(3)(branches["dense_1"], x)], axis=1)
    np.testing.assert_allclose(net(params, x), expected, rtol=1e-6)


def _key_recorder(name):
    """A layer whose output is a draw from its key, to see how combinators split keys."""
    def apply_fn(params, state, x, key, train):
        if key is None:
            raise ValueError(f"{name}: needs a key")
        return x + jax.random.normal(key, x.shape), state
    return Layer(name, lambda key, s: (s, {}, {}), apply_fn)


def test_serial_splits_one_subkey_per_child():
    net = fnn.serial(_key_recorder("noise"), _key_recorder("noise"))
    x = jnp.zeros((1, 4))
    y1, _ = net.apply({}, {}, x, key=jax.random.key(1))
    y2, _ = net.apply({}, {}, x, key=jax.random.key(1))
    y3, _ = net.apply({}, {}, x, key=jax.random.key(2))
    np.testing.assert_array_equal(y1, y2)
    assert not np.allclose(y1, y3)
    k1, k2 = jax.random.split(jax.random.key(1))
    expected = jax.random.normal(k1, (1, 4)) + jax.random.normal(k2, (1, 4))
    np.testing.assert_allclose(y1, expected, rtol=1e-6)


def _counter():
    """A stateful layer: counts its training calls in state, passes x through."""
    def init_fn(key, shape):
        return shape, {}, {"calls": jnp.zeros((), jnp.int32)}

    def apply_fn(params, state, x, key, train):
        return x, {"calls": state["calls"] + (1 if train else 0)}
    return Layer("counter", init_fn, apply_fn, stateful=True)


def test_state_is_returned_not_mutated_and_threaded_through_serial():
    net = fnn.serial(fnn.Dense(2), _counter(), fnn.Dense(2), _counter())
    params, state = net.init(KEY, (3,))
    assert set(state) == {"counter_0", "counter_1"}
    _, s1 = net.apply(params, state, x_of((3,)), train=True)
    _, s2 = net.apply(params, s1, x_of((3,)), train=True)
    _, s3 = net.apply(params, s2, x_of((3,)), train=False)
    assert int(state["counter_0"]["calls"]) == 0            # the input state is untouched
    assert int(s2["counter_1"]["calls"]) == 2
    assert int(s3["counter_1"]["calls"]) == 2
    with pytest.raises(TypeError, match=r"carries state.*net.apply\(params, state, x"):
        net(params, x_of((3,)))


def test_everything_jits_grads_and_vmaps():
    net = fnn.serial(fnn.Dense(8), fnn.gelu, fnn.residual(fnn.Dense(8)), fnn.Dense(1))
    params, _ = net.init(KEY, (3,))
    x = x_of((3,), batch=5)
    f = jax.jit(lambda p, x: jnp.sum(net(p, x) ** 2))
    g = jax.grad(f)(params, x)
    chex.assert_trees_all_equal_shapes(g, params)
    per_example = jax.vmap(lambda xi: net(params, xi[None])[0])(x)
    np.testing.assert_allclose(per_example, net(params, x), rtol=1e-5, atol=1e-6)


def test_summary_table_lists_layers_shapes_and_total(capsys):
    net = fnn.serial(fnn.Dense(50), fnn.relu, fnn.Dense(4))
    table = fnn.summary(net, (2,))
    assert capsys.readouterr().out == ""                  # returned, not printed: a REPL shows it once
    assert repr(table) == str(table)
    assert table.rows == (("dense_0", "(50,)", "150"), ("relu_0", "(50,)", "0"),   # 2*50 + 50
                          ("dense_1", "(4,)", "204"))                               # 50*4 + 4
    assert str(table).splitlines()[-1] == "total params: 354  (input (2,))"


def test_summary_takes_a_column_and_checks_given_params():
    net = fnn.serial(fnn.Dense(3), fnn.BatchNorm())
    params, state = net.init(KEY, (2,))
    table = fnn.summary(net, (2,), params=params, state=state)
    wider = dataclasses.replace(table, columns=(*table.columns, "note"), align=(*table.align, "<"),
                                rows=tuple((*r, "x" * i) for i, r in enumerate(table.rows)))
    assert str(wider).splitlines()[0].split() == ["layer", "output", "shape", "params", "note"]
    assert str(wider).splitlines()[3].endswith("6  x")     # batchnorm_0: scale and b
    other, _ = fnn.serial(fnn.Dense(4), fnn.BatchNorm()).init(KEY, (2,))
    with pytest.raises(fnn.ParamsError, match=r"params\['dense_0'\]\['w'\]: expected float32\[2,3\], "
                                              r"got float32\[2,4\]"):
        fnn.summary(net, (2,), params=other)


# ----------------------------------------------------------------------------- errors

def test_wrong_input_feature_size_names_layer_and_shapes():
    net = fnn.serial(fnn.Dense(5, name="hidden"), fnn.relu)
    params, state = net.init(KEY, (3,))
    with pytest.raises(ValueError, match=r"hidden: expected input of shape \(batch, \.\.\., 3\), got \(2, 4\)"):
        net.apply(params, state, jnp.ones((2, 4)))


@pytest.mark.parametrize("bad", [0, -3, 2.5, "10", True])
def test_dense_rejects_invalid_units(bad):
    with pytest.raises(ValueError, match=rf"dense: units must be a positive int, got {bad!r}"):
        fnn.Dense(bad)


@pytest.mark.parametrize("bad", [(0,), (-1, 3), (2.0,)])
def test_init_rejects_invalid_input_shapes(bad):
    with pytest.raises(ValueError, match=r"input_shape must hold positive ints"):
        fnn.Dense(3).init(KEY, bad)


def test_residual_without_projection_needs_matching_shapes():
    with pytest.raises(ValueError, match=r"residual: the block maps \(3,\) to \(5,\).*add a projection"):
        fnn.residual(fnn.Dense(5)).init(KEY, (3,))


def test_fan_in_sum_needs_equal_shapes_and_parallel_needs_matching_inputs():
    net = fnn.serial(fnn.fan_out(2), fnn.parallel(fnn.Dense(2), fnn.Dense(3)), fnn.fan_in_sum())
    with pytest.raises(ValueError, match=r"fan_in_sum: all inputs must have the same shape"):
        net.init(KEY, (4,))
    with pytest.raises(ValueError, match=r"parallel: expected a tuple of 2 input shapes"):
        fnn.parallel(fnn.Dense(2), fnn.Dense(3)).init(KEY, (4,))


def test_unknown_activation_name_suggests_the_right_one():
    with pytest.raises(ValueError, match=r"unknown activation 'rleu'; did you mean 'relu'\?"):
        fnn.Activation("rleu")


def test_serial_rejects_non_layers():
    with pytest.raises(TypeError, match=r"expected a Layer or a function of arrays, got int"):
        fnn.serial(fnn.Dense(2), 3)
    with pytest.raises(ValueError, match=r"serial: needs at least one layer"):
        fnn.serial()


# ----------------------------------------------------------------------------- named children

def _encoder_decoder():
    """A composite whose apply returns the code too: x -> (dec(enc(x)), enc(x))."""
    def init(c, shape):
        code = c("encoder", shape)
        return c("decoder", code), code

    def apply(c, x):
        z = c("encoder", x)
        return c("decoder", z), z

    return fnn.composite("ae", {"encoder": fnn.Dense(2), "decoder": fnn.Dense(3)}, init, apply)


def test_composite_names_params_by_child_and_wires_them_as_written():
    net = _encoder_decoder()
    params, state = net.init(KEY, (3,))
    assert set(params) == {"encoder", "decoder"} and state == {}
    k_enc, k_dec = jax.random.split(KEY)                   # child i gets split(key, n)[i]
    chex.assert_trees_all_equal(params["encoder"], fnn.Dense(2).init(k_enc, (3,))[0])
    chex.assert_trees_all_equal(params["decoder"], fnn.Dense(3).init(k_dec, (2,))[0])
    x = x_of((3,))
    (y, z), _ = net.apply(params, state, x)
    np.testing.assert_allclose(z, fnn.Dense(2)(params["encoder"], x), rtol=1e-6)
    np.testing.assert_allclose(y, fnn.Dense(3)(params["decoder"], z), rtol=1e-6)
    assert net.output_shape((3,)) == ((3,), (2,))


def test_composite_keys_own_key_and_a_child_applied_twice():
    def apply(c, x):
        return c.key, c("noise", x), c("noise", x)          # the same child twice

    net = fnn.composite("twice", {"noise": _key_recorder("noise")},
                        lambda c, s: (s, c("noise", s), s), apply, own_key=True)
    x = jnp.zeros((1, 4))
    (own, first, second), _ = net.apply({}, {}, x, key=jax.random.key(1))
    k_own, k_child = jax.random.split(jax.random.key(1))
    np.testing.assert_array_equal(jax.random.key_data(own), jax.random.key_data(k_own))
    np.testing.assert_allclose(first, jax.random.normal(k_child, (1, 4)), rtol=1e-6)
    np.testing.assert_allclose(second, jax.random.normal(jax.random.fold_in(k_child, 1), (1, 4)),
                               rtol=1e-6)


def test_composite_threads_each_childs_state_across_applications():
    def apply(c, x):
        return c("counter", c("counter", x))

    net = fnn.composite("twice", {"counter": _counter()}, lambda c, s: c("counter", s), apply)
    params, state = net.init(KEY, (2,))
    _, new = net.apply(params, state, x_of((2,)), train=True)
    assert int(new["counter"]["calls"]) == 2 and int(state["counter"]["calls"]) == 0


def test_composite_errors_name_the_child():
    net = fnn.serial(fnn.residual(fnn.serial(fnn.Dense(3), fnn.relu)), fnn.Dense(2))
    params, _ = net.init(KEY, (3,))
    bad = {**params, "residual_0": {"block": {"dense_0": {"w": jnp.ones((3, 4)),
                                                          "b": jnp.ones(4)}}}}
    with pytest.raises(fnn.ParamsError, match=r"^at \['residual_0'\]\['block'\]\['dense_0'\]: "
                                              r"dense: params hold w \(3, 4\)"):
        net(bad, x_of((3,)))
    with pytest.raises(fnn.ParamsError, match=r"serial: state hold \['batchnorm_0'\], which "
                                              r"match no child"):
        net.apply(params, {"batchnorm_0": {}}, x_of((3,)))
    twice = fnn.composite("c", {"d": fnn.Dense(2)}, lambda c, s: c("d", c("d", s)), lambda c, x: x)
    with pytest.raises(ValueError, match=r"c: child 'd' is initialised twice"):
        twice.init(KEY, (2,))
    lazy = fnn.composite("c", {"d": fnn.Dense(2)}, lambda c, s: s, lambda c, x: x)
    with pytest.raises(ValueError, match=r"c: init never initialised the child\(ren\) \['d'\]"):
        lazy.init(KEY, (2,))
    with pytest.raises(ValueError, match=r"c: no child 'e' \(its children are \['d'\]\)"):
        fnn.composite("c", {"d": fnn.Dense(2)}, lambda c, s: c("e", s), lambda c, x: x).init(KEY, (2,))


NET_SMALL = fnn.serial(fnn.Dense(3), fnn.relu, fnn.Dense(2))


def test_state_none_is_empty_for_a_stateless_network():
    params, _ = NET_SMALL.init(KEY, (2,))
    y, state = NET_SMALL.apply(params, None, x_of((2,)))
    assert state == {}
    np.testing.assert_array_equal(y, NET_SMALL(params, x_of((2,))))


# ----------------------------------------------------------------------------- check_params

def test_check_params_accepts_what_init_makes_and_other_float_widths():
    net = fnn.serial(fnn.Conv2D(4, 3), fnn.BatchNorm(), fnn.Flatten(), fnn.Dense(2))
    params, state = net.init(KEY, (6, 6, 1))
    fnn.check_params(net, (6, 6, 1), params, state)
    fnn.check_params(net, (6, 6, 1), jax.tree.map(lambda a: a.astype(jnp.bfloat16), params), state)
    fnn.check_params(NET_SMALL, (2,), NET_SMALL.init(KEY, (2,))[0])     # state None: {}
    with pytest.raises(fnn.ParamsError, match=r"^fit: the params and state do not fit serial on "
                                              r"inputs \(6, 6, 1\):\n  params\['conv_0'\]\['w'\]: "
                                              r"expected float32\[3,3,1,4\], got float32\[3,3,2,4\]"):
        fnn.check_params(net, (6, 6, 1), net.init(KEY, (6, 6, 2))[0], state, who="fit")


# ----------------------------------------------------------------------------- one example

def test_per_example_gradients_match_a_python_loop(x64):
    net = fnn.serial(fnn.Dense(5), fnn.tanh, fnn.Dense(3))
    params = jax.tree.map(lambda a: a.astype(jnp.float64), net.init(KEY, (4,))[0])
    x = jax.random.normal(jax.random.key(1), (6, 4), jnp.float64)
    y = jnp.arange(6) % 3
    one = fnn.per_example(net)

    def loss(p, xi, yi):
        return fnn.losses.softmax_cross_entropy(one(p, xi)[None], yi[None])

    grads = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(params, x, y)
    for i in range(6):
        expected = jax.grad(lambda p: fnn.losses.softmax_cross_entropy(
            net(p, x[i:i + 1]), y[i:i + 1]))(params)
        chex.assert_trees_all_close(jax.tree.map(lambda g: g[i], grads), expected, rtol=1e-12)
    chex.assert_shape(grads["dense_0"]["w"], (6, 4, 5))


def test_per_example_conv_recurrent_dropout_and_batchnorm_under_vmap():
    conv = fnn.serial(fnn.Conv2D(3, 3), fnn.relu, fnn.MaxPool(2), fnn.Flatten(), fnn.Dense(2))
    params, _ = conv.init(KEY, (8, 8, 1))
    images = jax.random.normal(jax.random.key(1), (5, 8, 8, 1))
    chex.assert_trees_all_close(jax.vmap(lambda xi: fnn.per_example(conv)(params, xi))(images),
                                conv(params, images), rtol=1e-5, atol=1e-6)
    rnn = fnn.Recurrent(fnn.GRUCell(4), return_sequences=False)
    p_rnn, _ = rnn.init(KEY, ((7, 3), (7,)))
    seqs = jax.random.normal(jax.random.key(2), (5, 7, 3))
    mask = fnn.sequence_mask(jnp.array([7, 3, 5, 1, 6]), 7)
    chex.assert_trees_all_close(
        jax.vmap(lambda s, m: fnn.per_example(rnn)(p_rnn, (s, m)))(seqs, mask),
        rnn(p_rnn, (seqs, mask)), rtol=1e-5, atol=1e-6)
    drop = fnn.per_example(fnn.Dropout(0.5))
    ones = jnp.ones((4, 64))
    masks = jax.vmap(lambda xi, k: drop({}, xi, key=k, train=True))(ones, jax.random.split(KEY, 4))
    assert len({tuple(np.asarray(m)) for m in masks}) == 4        # one mask per example
    bn = fnn.serial(fnn.Dense(3), fnn.BatchNorm())
    p_bn, s_bn = bn.init(KEY, (2,))
    x = x_of((2,), batch=4)
    y = jax.vmap(lambda xi: fnn.per_example(bn).apply(p_bn, s_bn, xi)[0])(x)
    chex.assert_trees_all_close(y, bn.apply(p_bn, s_bn, x)[0], rtol=1e-5, atol=1e-6)
