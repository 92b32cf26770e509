"""Recurrent cells and layers: shapes, parameter layout, scan vs step-by-step, masks, reverse,
bidirectional merges, learned initial state, gradient checks and error messages."""
import math

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.layers.recurrent import (Bidirectional, GRUCell, LSTMCell, Recurrent, SimpleRNNCell,
                                  scan_cell, sequence_mask, torch_init)

B, T, F, H = 3, 5, 2, 4
CELLS = {"rnn-tanh": lambda h: SimpleRNNCell(h), "rnn-relu": lambda h: SimpleRNNCell(h, "relu"),
         "lstm": lambda h: LSTMCell(h), "gru": lambda h: GRUCell(h)}


def data(seed=0, b=B, t=T, f=F):
    # flat draw (fnn.initializers.draw): jax.random.normal's numbers, a program per power of 2
    return fnn.initializers.draw(jax.random.normal, jax.random.key(seed), (b, t, f), jnp.float32)


def shape_of(tree):
    return jax.tree.map(lambda a: tuple(a.shape), tree, is_leaf=lambda a: hasattr(a, "shape"))


# ----------------------------------------------------------------------------- shapes

@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("kind", ["uni", "reverse", "bi-concat", "bi-sum", "bi-mean"])
@pytest.mark.parametrize("return_sequences", [True, False])
@pytest.mark.parametrize("masked", [False, True])
def test_init_shape_equals_apply_shape(cell, kind, return_sequences, masked):
    c = CELLS[cell](H)
    if kind.startswith("bi"):
        net = Bidirectional(c, merge=kind[3:], return_sequences=return_sequences)
    else:
        net = Recurrent(c, return_sequences=return_sequences, reverse=kind == "reverse")
    in_shape = ((T, F), (T,)) if masked else (T, F)
    x = jax.ShapeDtypeStruct((B, T, F), jnp.float32)
    if masked:
        x = (x, jax.ShapeDtypeStruct((B, T), jnp.bool_))
    params, _ = net.init(jax.random.key(0), in_shape)
    out = jax.eval_shape(lambda p, x: net.apply(p, {}, x)[0], params, x)
    inferred = net.output_shape(in_shape)
    assert shape_of(out) == jax.tree.map(lambda s: (B, *s), inferred,
                                         is_leaf=lambda s: isinstance(s, tuple)
                                         and all(isinstance(d, int) for d in s))
    size = 2 * H if kind == "bi-concat" else H
    y_shape = (T, size) if return_sequences else (size,)
    assert inferred == ((y_shape, (T,)) if masked and return_sequences else y_shape)


@pytest.mark.parametrize("cell,gates", [("rnn-tanh", 1), ("lstm", 4), ("gru", 3)])
def test_parameter_layout(cell, gates):
    params = CELLS[cell](H).init_params(jax.random.key(0), F)
    expected = {"w_ih": (F, gates * H), "w_hh": (H, gates * H), "b": (gates * H,)}
    if cell == "gru":
        expected["b_hn"] = (H,)
    assert shape_of(params) == expected
    # w_hh is one orthogonal (H, H) block per gate
    for k in range(gates):
        block = np.asarray(params["w_hh"][:, k * H:(k + 1) * H])
        np.testing.assert_allclose(block.T @ block, np.eye(H), atol=1e-5)


def test_lstm_forget_bias_initialised_to_one_and_configurable():
    b = LSTMCell(H).init_params(jax.random.key(0), F)["b"]
    np.testing.assert_array_equal(b, np.r_[np.zeros(H), np.ones(H), np.zeros(2 * H)])
    b = LSTMCell(H, forget_bias=0.0).init_params(jax.random.key(0), F)["b"]
    np.testing.assert_array_equal(b, np.zeros(4 * H))
    b = LSTMCell(H, forget_bias=2.5).init_params(jax.random.key(0), F)["b"]
    assert np.all(np.asarray(b[H:2 * H]) == 2.5)


def test_torch_init_bounds():
    p = GRUCell(6, **torch_init(6)).init_params(jax.random.key(0), 3)
    bound = 1 / math.sqrt(6)
    for leaf in jax.tree.leaves(p):
        assert np.all(np.abs(np.asarray(leaf)) <= bound) and np.std(np.asarray(leaf)) > 0.1


def test_serial_names_and_stacking():
    net = fnn.serial(Recurrent(LSTMCell(H)), Recurrent(GRUCell(3), return_sequences=False),
                     fnn.Dense(1))
    params, state = net.init(jax.random.key(0), (T, F))
    assert set(params) == {"lstm_0", "gru_0", "dense_0"} and state == {}
    assert net(params, data()).shape == (B, 1)
    assert net.output_shape((T, F)) == (1,)
    assert "lstm_0" in str(fnn.summary(net, (T, F)))


# ----------------------------------------------------------------------------- semantics

@pytest.mark.parametrize("cell", CELLS)
def test_scan_equals_step_by_step(cell):
    c = CELLS[cell](H)
    params = c.init_params(jax.random.key(1), F)
    x = data()
    carry = c.initial_carry(B)
    hs = []
    for t in range(T):
        carry, h = c.step(params, carry, x[:, t])
        hs.append(h)
    final, ys = scan_cell(c, params, x)
    np.testing.assert_allclose(ys, jnp.stack(hs, axis=1), rtol=1e-6, atol=1e-6)
    chex.assert_trees_all_close(final, carry, rtol=1e-6, atol=1e-6)
    net = Recurrent(c, return_sequences=False)
    np.testing.assert_allclose(net(params, x), c.output(carry), rtol=1e-6, atol=1e-6)


def test_cell_formulas_by_hand():
    """One step of each cell written out in NumPy (gate order i,f,g,o and r,z,n)."""
    rng = np.random.default_rng(0)
    x, h, c = rng.normal(size=(2, F)), rng.normal(size=(2, H)), rng.normal(size=(2, H))
    sig = lambda a: 1 / (1 + np.exp(-a))
    for cell in (SimpleRNNCell(H), LSTMCell(H), GRUCell(H)):
        p = jax.tree.map(lambda a: rng.normal(size=a.shape).astype(np.float32),
                         cell.init_params(jax.random.key(0), F))
        p64 = jax.tree.map(lambda a: np.asarray(a, np.float64), p)
        carry = (h, c) if isinstance(cell, LSTMCell) else h
        new, out = cell.step(p, jax.tree.map(lambda a: a.astype(np.float32), carry),
                             x.astype(np.float32))
        zx = x @ p64["w_ih"] + p64["b"]
        zh = h @ p64["w_hh"]
        if isinstance(cell, SimpleRNNCell):
            want = np.tanh(zx + zh)
        elif isinstance(cell, LSTMCell):
            i, f, g, o = np.split(zx + zh, 4, axis=1)
            c_new = sig(f) * c + sig(i) * np.tanh(g)
            want = sig(o) * np.tanh(c_new)
            np.testing.assert_allclose(new[1], c_new, rtol=1e-4, atol=1e-5)
        else:
            r = sig(zx[:, :H] + zh[:, :H])
            z = sig(zx[:, H:2 * H] + zh[:, H:2 * H])
            n = np.tanh(zx[:, 2 * H:] + r * (zh[:, 2 * H:] + p64["b_hn"]))
            want = (1 - z) * n + z * h
        np.testing.assert_allclose(out, want, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("cell", ["rnn-tanh", "lstm", "gru"])
def test_reverse_is_the_forward_pass_of_the_flipped_sequence(cell):
    c = CELLS[cell](H)
    params = c.init_params(jax.random.key(2), F)
    x = data(1)
    rev = Recurrent(c, reverse=True)(params, x)
    fwd = Recurrent(c)(params, x[:, ::-1])
    np.testing.assert_allclose(rev, fwd[:, ::-1], rtol=1e-6, atol=1e-6)


def test_bidirectional_merges():
    x = data(2)
    nets = {"cat": Bidirectional(GRUCell(H), LSTMCell(3)),
            "last": Bidirectional(GRUCell(H), LSTMCell(3), return_sequences=False),
            "sum": Bidirectional(GRUCell(H), merge="sum"),
            "mean": Bidirectional(GRUCell(H), merge="mean")}
    params = {k: net.init(jax.random.key(0), (T, F))[0] for k, net in nets.items()}
    fw = lambda c, p: Recurrent(c)(p["forward"], x)
    bw = lambda c, p: Recurrent(c, reverse=True)(p["backward"], x)

    @jax.jit
    def outputs(params):
        got = {k: net(params[k], x) for k, net in nets.items()}
        f, b = fw(GRUCell(H), params["cat"]), bw(LSTMCell(3), params["cat"])
        want = {"cat": jnp.concatenate([f, b], -1),
                "last": jnp.concatenate([f[:, -1], b[:, 0]], -1),
                "sum": fw(GRUCell(H), params["sum"]) + bw(GRUCell(H), params["sum"]),
                "mean": (fw(GRUCell(H), params["mean"]) + bw(GRUCell(H), params["mean"])) / 2}
        return got, want

    got, want = outputs(params)
    chex.assert_trees_all_close(got, want, rtol=1e-6, atol=1e-6)


def _alone(cell, params, x, reverse):
    """Step by step through one unpadded sequence x (1, n, F): (outputs (n, H), last h)."""
    carry = cell.initial_carry(1)
    ys = {}
    order = range(x.shape[1])
    for t in (reversed(order) if reverse else order):
        carry, ys[t] = cell.step(params, carry, x[:, t])
    return jnp.concatenate([ys[t] for t in order]), cell.output(carry)[0]


@pytest.mark.parametrize("cell", ["lstm", "gru"])
def test_mask_matches_running_each_sequence_alone(cell):
    """Right-padded sequences with a mask give, per example, exactly what the unpadded sequence
    gives alone: padded steps output 0 and leave the carry alone, in both directions."""
    c = CELLS[cell](H)
    lengths = [5, 3, 1]
    x = data(3)
    mask = sequence_mask(jnp.array(lengths), T)
    np.testing.assert_array_equal(mask[1], [True, True, True, False, False])
    bi, bi_last = Bidirectional(c), Bidirectional(c, return_sequences=False)
    params, _ = bi.init(jax.random.key(0), ((T, F), (T,)))
    (y, m_out), last = jax.jit(lambda p, xm: (bi(p, xm), bi_last(p, xm)))(params, (x, mask))
    np.testing.assert_array_equal(m_out, mask)
    for b, n in enumerate(lengths):
        y_fw, h_fw = _alone(c, params["forward"], x[b:b + 1, :n], reverse=False)
        y_bw, h_bw = _alone(c, params["backward"], x[b:b + 1, :n], reverse=True)
        np.testing.assert_allclose(y[b, :n], jnp.concatenate([y_fw, y_bw], -1), rtol=1e-5,
                                   atol=1e-6)
        assert np.all(np.asarray(y[b, n:]) == 0)
        np.testing.assert_allclose(last[b], jnp.concatenate([h_fw, h_bw]), rtol=1e-5, atol=1e-6)


def test_masked_layers_stack_and_numeric_masks_work():
    net = fnn.serial(Recurrent(LSTMCell(H)), Recurrent(GRUCell(3), return_sequences=False),
                     fnn.Dense(2))
    params, _ = net.init(jax.random.key(0), ((T, F), (T,)))
    x = data(4)
    mask = sequence_mask(jnp.array([5, 2, 4]), T)
    x_junk = jnp.where(mask[..., None], x, 1e3)  # padding values never matter

    @jax.jit
    def outputs(params):
        return (net(params, (x, mask)), net(params, (x, mask.astype(jnp.float32))),
                net(params, (x_junk, mask)))

    y_bool, y_float, y_junk = outputs(params)
    np.testing.assert_allclose(y_bool, y_float)
    np.testing.assert_allclose(y_junk, y_bool, rtol=1e-6, atol=1e-6)


def test_initial_state_learned_and_given():
    c = LSTMCell(H)
    net = Recurrent(c, initial_state="learned", return_sequences=False)
    params, _ = net.init(jax.random.key(0), (T, F))
    assert shape_of({k: params[k] for k in ("h0", "c0")}) == {"h0": (H,), "c0": (H,)}
    x = data(5)
    h0 = jnp.linspace(-1, 1, H)
    params = {**params, "h0": h0, "c0": -h0}
    carry = (jnp.broadcast_to(h0, (B, H)), jnp.broadcast_to(-h0, (B, H)))

    @jax.jit
    def outputs(params):
        final, _ = scan_cell(c, params, x, carry=carry)
        grads = jax.grad(lambda p: jnp.sum(net(p, x) ** 2))(params)
        return net(params, x), final[0], grads

    y, want, grads = outputs(params)
    np.testing.assert_allclose(y, want, rtol=1e-6, atol=1e-6)
    assert float(jnp.abs(grads["h0"]).sum()) > 0 and float(jnp.abs(grads["c0"]).sum()) > 0


def test_any_length_at_apply_and_jit_does_not_retrace():
    net = fnn.serial(Recurrent(GRUCell(H), return_sequences=False), fnn.Dense(1))
    params, _ = net.init(jax.random.key(0), (T, F))
    assert net(params, data(t=9)).shape == (B, 1)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def f(p, x):
        return net(p, x)

    for seed in range(3):
        f(params, data(seed))


# ----------------------------------------------------------------------------- gradients

def test_cells_pass_gradcheck(x64):
    """jax.grad through the scan vs central differences, w.r.t. every parameter of each cell
    and the input (one check over all three cells: one compilation)."""
    cells = {"rnn": SimpleRNNCell(3), "lstm": LSTMCell(3), "gru": GRUCell(3)}
    tree = {k: jax.tree.map(lambda a: a.astype(jnp.float64), c.init_params(jax.random.key(i), 2))
            for i, (k, c) in enumerate(cells.items())}
    tree["x"] = np.random.default_rng(0).normal(size=(2, 4, 2))
    cot = np.random.default_rng(1).normal(size=(2, 4, 3))

    def loss(tree):
        total = 0.0
        for k, c in cells.items():
            final, ys = scan_cell(c, tree[k], tree["x"])
            total = total + jnp.sum(ys * cot) + jnp.sum(c.output(final) ** 2)
        return total

    report = fnn.gradcheck(loss, tree, tol=1e-6)
    assert set(report) == {f"['{k}']['{n}']" for k in cells for n in tree[k]} | {"['x']"}


# ----------------------------------------------------------------------------- errors

def test_construction_errors():
    with pytest.raises(ValueError, match="SimpleRNNCell: hidden must be a positive int, got 0"):
        SimpleRNNCell(0)
    with pytest.raises(ValueError, match="activation must be one of 'tanh', 'relu', got 'rleu'; did you mean 'relu'"):
        SimpleRNNCell(4, activation="rleu")
    with pytest.raises(ValueError, match="LSTMCell: forget_bias must be a finite number, got nan"):
        LSTMCell(4, forget_bias=float("nan"))
    with pytest.raises(ValueError, match="unknown initializer"):
        GRUCell(4, w_init="glorot")
    with pytest.raises(TypeError, match=r"Recurrent: expected a cell .* got Layer"):
        Recurrent(fnn.Dense(3))
    with pytest.raises(TypeError, match="lstm: return_sequences must be True or False, got 'yes'"):
        Recurrent(LSTMCell(4), return_sequences="yes")
    with pytest.raises(ValueError, match="initial_state must be one of 'zeros', 'learned', got 'learn'"):
        Recurrent(LSTMCell(4), initial_state="learn")
    with pytest.raises(ValueError, match=r"merge must be one of 'concat', 'sum', 'mean', got 'add'"):
        Bidirectional(GRUCell(4), merge="add")
    with pytest.raises(ValueError, match=r"merge='sum' needs equal hidden sizes, got 4 \(forward\) and 3"):
        Bidirectional(GRUCell(4), GRUCell(3), merge="sum")
    with pytest.raises(ValueError, match="input_features must be a positive int, got 0"):
        GRUCell(4).init_params(jax.random.key(0), 0)


def test_shape_errors():
    net = Recurrent(GRUCell(H))
    with pytest.raises(ValueError, match=r"gru: expected input_shape \(time, features\).*got \(5,\)"):
        net.init(jax.random.key(0), (5,))
    with pytest.raises(ValueError, match=r"a masked input has shape \(\(time, features\), \(time,\)\)"):
        net.init(jax.random.key(0), ((5, 2), (4,)))
    params, _ = net.init(jax.random.key(0), (T, F))
    with pytest.raises(ValueError, match=r"gru: expected input of shape \(batch, time, 2\), got \(3, 5, 3\)"):
        net(params, data(f=3))
    with pytest.raises(ValueError, match=r"gru: expected input of shape \(batch, time, 2\), got \(5, 2\)"):
        net(params, jnp.zeros((5, 2)))
    with pytest.raises(ValueError, match=r"expected a mask of shape \(batch, time\) = \(3, 5\), got \(3, 4\)"):
        net(params, (data(), jnp.ones((3, 4), bool)))
    with pytest.raises(ValueError, match="expected x .* or a pair \\(x, mask\\), got a tuple of 3"):
        net(params, (data(), None, None))
    with pytest.raises(ValueError, match=r"sequence_mask: expected integer lengths of shape \(batch,\)"):
        sequence_mask(jnp.ones((2, 2), jnp.int32), 3)
