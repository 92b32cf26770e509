"""fnn's RNN/LSTM/GRU against PyTorch numerics, from committed fixtures (no torch needed).

tests/fixtures/torch_rnn/ was written by scripts/make_torch_rnn_fixtures.py (PyTorch CPU,
float32). Each case holds torch's state_dict, input (batch first), optional initial state,
output, final state, a cotangent and the gradients of sum(out * cot) w.r.t. the input and
every torch parameter. fnn must agree to 1e-5 after ``rnn_from_torch``; the parameter
gradients are taken through the conversion, so they come out in torch's layout.
"""
import json
import pathlib

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.interop import rnn_from_torch
from fnn.layers.recurrent import GRUCell, LSTMCell, SimpleRNNCell, scan_cell

FIXTURES = pathlib.Path(__file__).parent / "fixtures" / "torch_rnn"
TOL = dict(rtol=1e-5, atol=1e-5)
KINDS = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU", "rnncell": "RNNCell",
         "lstmcell": "LSTMCell", "grucell": "GRUCell"}
STATE_NAMES = ("x", "h0", "c0", "out", "h_n", "c_n", "c", "cot")


def load(kind):
    data = np.load(FIXTURES / f"{kind}.npz")
    cases = json.loads(str(data["cases"]))
    return [(args, {k.split("_", 1)[1]: data[k] for k in data.files if k.startswith(f"c{i}_")})
            for i, args in enumerate(cases)]


def cases(*kinds):
    return [pytest.param(kind, args, arrays, id=f"{kind}-{i}")
            for kind in kinds for i, (args, arrays) in enumerate(load(kind))]


def make_cell(kind, args):
    h = args["hidden_size"]
    if kind.startswith("rnn"):
        return SimpleRNNCell(h, activation=args.get("nonlinearity", "tanh"))
    return LSTMCell(h) if kind.startswith("lstm") else GRUCell(h)


def tensors_of(arrays):
    return {k: v for k, v in arrays.items()
            if k not in STATE_NAMES and not k.startswith("grad_")}


def torch_like(cell, params, x, h0, c0, layers, bidirectional):
    """torch's stacking, layer by layer with scan_cell: returns (out, h_n, c_n)."""
    dirs = 2 if bidirectional else 1
    h_n, c_n = [], []
    for l in range(layers):
        p_l = params if layers == 1 else params[f"{'bidirectional' if bidirectional else cell.kind}_{l}"]
        ys = []
        for d, direction in enumerate(("forward", "backward")[:dirs]):
            p = p_l[direction] if bidirectional else p_l
            carry = None
            if h0 is not None:
                carry = h0[l * dirs + d] if c0 is None else (h0[l * dirs + d], c0[l * dirs + d])
            carry, y = scan_cell(cell, p, x, carry=carry, reverse=d == 1)
            ys.append(y)
            h_n.append(cell.output(carry))
            if isinstance(cell, LSTMCell):
                c_n.append(carry[1])
        x = jnp.concatenate(ys, axis=-1)
    return x, jnp.stack(h_n), (jnp.stack(c_n) if c_n else None)


@pytest.mark.parametrize("kind,args,arrays", cases("rnn", "lstm", "gru"))
def test_sequence_modules_match_torch(kind, args, arrays):
    cell = make_cell(kind, args)
    tensors = tensors_of(arrays)
    layers, bi = args["num_layers"], args["bidirectional"]
    h0, c0 = arrays.get("h0"), arrays.get("c0")
    params, state = rnn_from_torch(KINDS[kind], tensors)
    assert state == {}

    net = None
    if h0 is None:  # also run the public layers (and fnn.serial) on the converted params
        layer = (lambda: fnn.Bidirectional(cell)) if bi else (lambda: fnn.Recurrent(cell))
        net = fnn.serial(*[layer() for _ in range(layers)]) if layers > 1 else layer()
        layout = jax.eval_shape(lambda k: net.init(k, arrays["x"].shape[1:])[0], jax.random.key(0))
        assert jax.tree.structure(layout) == jax.tree.structure(params)

    def loss(tensors, x):
        p, _ = rnn_from_torch(KINDS[kind], tensors)
        out, h_n, c_n = torch_like(cell, p, x, h0, c0, layers, bi)
        net_out = None if net is None else net(p, x)
        return jnp.sum(out * arrays["cot"]), (out, h_n, c_n, net_out)

    # one compiled call per case: outputs, final states and both gradients
    (_, (out, h_n, c_n, net_out)), (g_tensors, g_x) = jax.jit(
        jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(tensors, arrays["x"])
    np.testing.assert_allclose(out, arrays["out"], **TOL)
    np.testing.assert_allclose(h_n, arrays["h_n"], **TOL)
    if c_n is not None:
        np.testing.assert_allclose(c_n, arrays["c_n"], **TOL)
    if net is not None:
        np.testing.assert_allclose(net_out, arrays["out"], **TOL)
    np.testing.assert_allclose(g_x, arrays["grad_x"], **TOL)
    assert set(g_tensors) == {k.removeprefix("grad_") for k in arrays if k.startswith("grad_")} - {"x"}
    for k, g in g_tensors.items():
        np.testing.assert_allclose(g, arrays[f"grad_{k}"], **TOL, err_msg=k)


@pytest.mark.parametrize("kind,args,arrays", cases("rnncell", "lstmcell", "grucell"))
def test_cells_match_torch(kind, args, arrays):
    cell = make_cell(kind, args)
    tensors = tensors_of(arrays)
    x = arrays["x"]

    def run(tensors, x):
        params, _ = rnn_from_torch(KINDS[kind], tensors)
        carry = cell.initial_carry(x.shape[0])
        if "h0" in arrays:
            carry = (arrays["h0"], arrays["c0"]) if kind == "lstmcell" else arrays["h0"]
        return cell.step(params, carry, x)

    def loss(t, x):
        carry, h = run(t, x)
        return jnp.sum(h * arrays["cot"]), (carry, h)

    (_, (carry, h)), (g_tensors, g_x) = jax.jit(
        jax.value_and_grad(loss, argnums=(0, 1), has_aux=True))(tensors, x)
    np.testing.assert_allclose(h, arrays["out"], **TOL)
    if kind == "lstmcell":
        np.testing.assert_allclose(carry[1], arrays["c"], **TOL)
    np.testing.assert_allclose(g_x, arrays["grad_x"], **TOL)
    for k, g in g_tensors.items():
        np.testing.assert_allclose(g, arrays[f"grad_{k}"], **TOL, err_msg=k)


def test_fixtures_are_small_and_cover_every_kind():
    files = sorted(FIXTURES.glob("*.npz"))
    assert {f.stem for f in files} == set(KINDS)
    assert sum(f.stat().st_size for f in files) < 500_000


def test_gru_bias_layout():
    """b = b_ih + [b_hr, b_hz, 0] and b_hn = b_hh[2H:]: the hidden candidate bias is kept
    apart because it sits inside r * (h W_hn + b_hn)."""
    h, f = 2, 3
    t = {"weight_ih": np.zeros((3 * h, f), np.float32), "weight_hh": np.zeros((3 * h, h), np.float32),
         "bias_ih": np.arange(6, dtype=np.float32), "bias_hh": 10 * np.arange(6, dtype=np.float32)}
    p, _ = rnn_from_torch("GRUCell", t)
    np.testing.assert_array_equal(p["b"], [0, 11, 22, 33, 4, 5])
    np.testing.assert_array_equal(p["b_hn"], [40, 50])
    assert p["w_ih"].shape == (f, 3 * h) and p["w_hh"].shape == (h, 3 * h)


def test_rnn_from_torch_errors():
    w = {"weight_ih_l0": np.zeros((8, 3)), "weight_hh_l0": np.zeros((8, 2))}
    with pytest.raises(ValueError, match="unknown kind 'LTSM'; did you mean 'LSTM'"):
        rnn_from_torch("LTSM", w)
    with pytest.raises(ValueError, match="unexpected key 'weight_ih'"):
        rnn_from_torch("LSTM", {"weight_ih": np.zeros((8, 3))})
    with pytest.raises(ValueError, match=r"proj_size \(weight_hr\) is not supported"):
        rnn_from_torch("LSTM", {**w, "weight_hr_l0": np.zeros((1, 2))})
    with pytest.raises(ValueError, match=r"expected weight_ih_l0 \(3\*hidden, features\)"):
        rnn_from_torch("GRU", w)
    with pytest.raises(ValueError, match="missing weight_hh_l1"):
        rnn_from_torch("LSTM", {**w, "weight_ih_l1": np.zeros((8, 2))})
    with pytest.raises(ValueError, match=r"layers must be numbered 0..L-1, got \[0, 2\]"):
        rnn_from_torch("LSTM", {**w, "weight_ih_l2": np.zeros((8, 2)),
                                "weight_hh_l2": np.zeros((8, 2))})
    with pytest.raises(ValueError, match=r"expected bias_ih_l0 of shape \(8,\)"):
        rnn_from_torch("LSTM", {**w, "bias_ih_l0": np.zeros(4)})
    with pytest.raises(ValueError, match=r"weight_hh_l0 must be \(8, 2\) for hidden=2, got \(8, 3\)"):
        rnn_from_torch("LSTM", {**w, "weight_hh_l0": np.zeros((8, 3))})
    with pytest.raises(ValueError, match="no tensors given"):
        rnn_from_torch("LSTM", {})
