"""fnn.manual's hand-written backpropagation through time against jax.grad of fnn's
SimpleRNNCell run by lax.scan, in float64, to 1e-10 (relative)."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import manual
from fnn.check import tree_max_rel_diff
from fnn.layers.recurrent import SimpleRNNCell, scan_cell

pytestmark = pytest.mark.usefixtures("x64")

TOL = 1e-10
N, T, D, H = 3, 7, 4, 5


@pytest.mark.parametrize("activation", ["tanh", "relu"])
@pytest.mark.parametrize("final_state_loss", [False, True])
def test_bptt_matches_jax_grad(activation, final_state_loss):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(N, T, D))
    h0 = rng.normal(size=(N, H))
    w_ih = rng.normal(size=(D, H)) * 0.6
    w_hh = rng.normal(size=(H, H)) * 0.4
    b = rng.normal(size=H) * 0.3
    cot = rng.normal(size=(N, T, H))           # dLoss/dh_t from above
    cot_last = rng.normal(size=(N, H)) if final_state_loss else None
    cell = SimpleRNNCell(H, activation=activation)

    def loss(x, h0, w_ih, w_hh, b):
        final, hs = scan_cell(cell, {"w_ih": w_ih, "w_hh": w_hh, "b": b}, x, carry=h0)
        extra = jnp.sum(final * cot_last) if final_state_loss else 0.0
        return jnp.sum(hs * cot) + extra, hs

    grads, hs_jax = jax.jit(jax.grad(loss, argnums=range(5), has_aux=True))(x, h0, w_ih, w_hh, b)
    hs, cache = manual.rnn_forward(x, h0, w_ih, w_hh, b, activation)
    assert tree_max_rel_diff(hs, np.asarray(hs_jax)) < TOL
    mine = manual.rnn_backward(cot, cache, cot_last)
    names = ["dx", "dh0", "dw_ih", "dw_hh", "db"]
    for name, a, g in zip(names, mine, grads):
        assert a.shape == g.shape, name
        assert tree_max_rel_diff(a, np.asarray(g)) < TOL, name


def test_bptt_by_finite_differences_on_one_weight():
    """The formulas by themselves, with no JAX: one weight, central differences."""
    rng = np.random.default_rng(1)
    x, h0 = rng.normal(size=(2, 4, 3)), rng.normal(size=(2, 2))
    w_ih, w_hh, b = rng.normal(size=(3, 2)), rng.normal(size=(2, 2)) * 0.5, rng.normal(size=2)
    cot = rng.normal(size=(2, 4, 2))
    f = lambda w: np.sum(manual.rnn_forward(x, h0, w_ih, w, b)[0] * cot)
    _, cache = manual.rnn_forward(x, h0, w_ih, w_hh, b)
    dw_hh = manual.rnn_backward(cot, cache)[3]
    e = np.zeros_like(w_hh)
    e[1, 0] = 1e-6
    numeric = (f(w_hh + e) - f(w_hh - e)) / 2e-6
    assert abs(numeric - dw_hh[1, 0]) < 1e-8 * max(1, abs(numeric))


def test_rnn_forward_rejects_unknown_activation():
    with pytest.raises(ValueError, match="activation must be 'tanh' or 'relu', got 'sigmoid'"):
        manual.rnn_forward(np.zeros((1, 2, 3)), np.zeros((1, 2)), np.zeros((3, 2)),
                           np.zeros((2, 2)), np.zeros(2), "sigmoid")
