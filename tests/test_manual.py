"""fnn.manual (hand-derived NumPy backprop) against jax.grad of the same fnn code, in float64."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import activations as A
from fnn import losses as L
from fnn import manual
from fnn.check import tree_max_rel_diff

pytestmark = pytest.mark.usefixtures("x64")

TOL = 1e-10

# Every activation of fnn.activations, with non-default arguments where it has any.
ACTS = [
    ("step", {}), ("sigmoid", {}), ("tanh", {}), ("relu", {}), ("leaky_relu", {}),
    ("leaky_relu", {"alpha": 0.2}), ("elu", {}), ("elu", {"alpha": 0.5}), ("selu", {}),
    ("gelu", {}), ("gelu", {"approximate": True}), ("softplus", {}), ("swish", {}),
    ("softmax", {}), ("log_softmax", {}),
]
ACT_IDS = [name + "".join(f"-{k}={v}" for k, v in kw.items()) for name, kw in ACTS]
LOSS_NAMES = ["softmax_cross_entropy", "mse", "sum_of_halves"]


def to_np(tree):
    return jax.tree.map(lambda a: np.asarray(a, np.float64), tree)


def random_params(layer, input_shape, rng, scale=0.7):
    """float64 N(0, scale^2) values in the layout ``layer.init`` gives (traced, never run)."""
    layout = jax.eval_shape(lambda k: layer.init(k, input_shape)[0], jax.random.key(0))
    return jax.tree.map(lambda s: scale * rng.standard_normal(s.shape), layout)


def test_every_fnn_activation_is_covered():
    public = set(A.__all__) - {"Activation", "Maxout", "get"}
    assert public == {name for name, _ in ACTS}
    assert public == set(manual.ACTIVATIONS)


# ----------------------------------------------------------------------------- activations

@pytest.mark.parametrize("name,kw", ACTS, ids=ACT_IDS)
def test_activation_backward_equals_vjp(name, kw):
    rng = np.random.default_rng(0)
    x = 1.5 * rng.standard_normal((4, 6))
    x[np.abs(x) < 1e-3] = 0.5          # the kinks of step/relu/leaky_relu are not sampled
    dout = rng.standard_normal((4, 6))
    y, vjp = jax.vjp(A.get(name, **kw), jnp.asarray(x))
    (dx,) = vjp(jnp.asarray(dout))
    fwd, bwd = manual.ACTIVATIONS[name]
    np.testing.assert_allclose(fwd(x, **kw), np.asarray(y), rtol=1e-13, atol=1e-15)
    assert bwd(dout, x, **kw).shape == x.shape
    assert tree_max_rel_diff(np.asarray(dx), bwd(dout, x, **kw)) < TOL


def test_step_gradient_is_zero():
    x = jnp.asarray(np.linspace(-2.0, 2.0, 9))
    assert np.all(np.asarray(jax.grad(lambda v: jnp.sum(fnn.step(v) * v))(x)) == np.asarray(fnn.step(x)))
    assert np.all(np.asarray(jax.grad(lambda v: jnp.sum(fnn.step(v)))(x)) == 0)
    assert np.all(manual.step_backward(np.ones(9), np.asarray(x)) == 0)


def test_relu_backward_is_the_notes_mask():
    h = np.array([[-1.0, 0.0, 2.0], [3.0, -0.5, 0.0]])
    dout = np.arange(1.0, 7.0).reshape(2, 3)
    expected = dout.copy()
    expected[h <= 0] = 0                     # the notes: dh1[relu_cache <= 0] = 0
    np.testing.assert_array_equal(manual.relu_backward(dout, h), expected)
    (dx,) = jax.vjp(fnn.relu, jnp.asarray(h))[1](jnp.asarray(dout))
    np.testing.assert_array_equal(np.asarray(dx), expected)   # jax: 0 at 0 as well


def test_sigmoid_backward_is_out_times_one_minus_out():
    x = np.array([-3.0, 0.0, 0.3775, 1.105905967])
    out = manual.sigmoid(x)
    np.testing.assert_allclose(manual.sigmoid_backward(np.ones(4), x), out * (1 - out), rtol=1e-15)
    assert manual.sigmoid(np.array([1.105905967]))[0] == pytest.approx(0.75136507, abs=1e-8)


def test_softmax_backward_is_the_jacobian_product():
    rng = np.random.default_rng(1)
    x, dout = rng.standard_normal(5), rng.standard_normal(5)
    y = manual.softmax(x)
    jac = np.diag(y) - np.outer(y, y)                    # dy_i/dx_j = y_i (delta_ij - y_j)
    np.testing.assert_allclose(manual.softmax_backward(dout, x), jac.T @ dout, rtol=1e-12)
    jac_log = np.eye(5) - y[None, :]                     # d log y_i / dx_j = delta_ij - y_j
    np.testing.assert_allclose(manual.log_softmax_backward(dout, x), jac_log.T @ dout, rtol=1e-12)


# ----------------------------------------------------------------------------- layers

@pytest.mark.parametrize("shape", [(5, 3), (4, 2, 3)])
def test_affine_backward_equals_jax(shape):
    rng = np.random.default_rng(2)
    x = rng.standard_normal(shape)
    d = int(np.prod(shape[1:]))
    w, b = rng.standard_normal((d, 4)), rng.standard_normal(4)
    dout = rng.standard_normal((shape[0], 4))
    out, cache = manual.affine_forward(x, w, b)
    np.testing.assert_allclose(out, x.reshape(shape[0], -1) @ w + b, rtol=1e-14)
    f = lambda x, w, b: jnp.sum(jnp.asarray(dout) * (x.reshape(x.shape[0], -1) @ w + b[None]))
    expected = jax.grad(f, argnums=(0, 1, 2))(jnp.asarray(x), jnp.asarray(w), jnp.asarray(b))
    dx, dw, db = manual.affine_backward(dout, cache)
    assert (dx.shape, dw.shape, db.shape) == (x.shape, w.shape, b.shape)
    assert tree_max_rel_diff(to_np(expected), (dx, dw, db)) < TOL


def test_affine_backward_against_the_dense_layer():
    rng = np.random.default_rng(3)
    layer = fnn.Dense(3)
    params = random_params(layer, (4,), rng)
    assert jax.tree.map(np.shape, params) == {"w": (4, 3), "b": (3,)}
    x, dout = rng.standard_normal((6, 4)), rng.standard_normal((6, 3))
    dparams, dx = jax.jit(lambda p, x, d: jax.vjp(layer, p, x)[1](d))(params, x, dout)
    out, cache = manual.affine_forward(x, params["w"], params["b"])
    np.testing.assert_allclose(out, np.asarray(layer(params, jnp.asarray(x))), rtol=1e-13)
    mdx, mdw, mdb = manual.affine_backward(dout, cache)
    assert tree_max_rel_diff(to_np((dx, dparams)), (mdx, {"w": mdw, "b": mdb})) < TOL


def test_maxout_backward_equals_jax():
    rng = np.random.default_rng(4)
    layer = fnn.Maxout(3, 4)
    params = random_params(layer, (5,), rng)
    assert jax.tree.map(np.shape, params) == {"w": (5, 3, 4), "b": (3, 4)}
    x, dout = rng.standard_normal((7, 5)), rng.standard_normal((7, 3))

    @jax.jit
    def reference(p, x, d):
        y, vjp = jax.vjp(layer, p, x)
        return y, vjp(d)

    y, (dparams, dx) = reference(params, x, dout)
    out, cache = manual.maxout_forward(x, params["w"], params["b"])
    np.testing.assert_allclose(out, np.asarray(y), rtol=1e-13)
    mdx, mdw, mdb = manual.maxout_backward(dout, cache)
    assert tree_max_rel_diff(to_np((dx, dparams)), (mdx, {"w": mdw, "b": mdb})) < TOL
    # only the winning piece of each unit receives gradient
    winners = np.zeros(cache[3].shape, bool)
    np.put_along_axis(winners, cache[3].argmax(-1)[..., None], True, axis=-1)
    never_won = ~winners.any(axis=0)                     # (units, pieces)
    assert np.all(mdb[never_won] == 0) and np.all(np.asarray(dparams["b"])[never_won] == 0)
    assert np.all(mdb[winners.any(axis=0)] != 0)


# ----------------------------------------------------------------------------- losses

def test_softmax_cross_entropy_equals_jax():
    rng = np.random.default_rng(5)
    logits, labels = 3 * rng.standard_normal((6, 4)), rng.integers(0, 4, 6)
    loss, dlogits = manual.softmax_cross_entropy(logits, labels)
    value, grad = jax.value_and_grad(L.softmax_cross_entropy)(jnp.asarray(logits), jnp.asarray(labels))
    assert loss == pytest.approx(float(value), rel=1e-13)
    assert tree_max_rel_diff(np.asarray(grad), dlogits) < TOL
    # the notes' dx = probs; dx[range(N), t] -= 1; dx /= N, written out
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    dx = probs.copy()
    dx[np.arange(6), labels] -= 1
    np.testing.assert_allclose(dlogits, dx / 6, rtol=1e-12, atol=1e-15)
    assert loss == pytest.approx(-np.mean(np.log(probs[np.arange(6), labels])), rel=1e-12)
    onehot = np.eye(4)[labels]
    loss1, dlogits1 = manual.softmax_cross_entropy(logits, onehot)
    assert loss1 == pytest.approx(loss, rel=1e-14)
    np.testing.assert_allclose(dlogits1, dlogits, rtol=1e-14, atol=1e-16)


@pytest.mark.parametrize("name", ["mse", "sum_of_halves", "binary_cross_entropy"])
def test_regression_losses_equal_jax(name):
    rng = np.random.default_rng(6)
    pred, target = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    if name == "binary_cross_entropy":
        target = rng.uniform(size=(5, 3))
    loss, dpred = manual.LOSSES[name](pred, target)
    value, grad = jax.value_and_grad(getattr(L, name))(jnp.asarray(pred), jnp.asarray(target))
    assert loss == pytest.approx(float(value), rel=1e-13)
    assert tree_max_rel_diff(np.asarray(grad), dpred) < TOL


def test_sum_of_halves_gradient_is_minus_t_minus_o():
    o, t = np.array([[0.75136507, 0.772928465]]), np.array([[0.01, 0.99]])
    e, do = manual.sum_of_halves(o, t)
    assert round(e, 9) == 0.298371109
    np.testing.assert_allclose(do, -(t - o))
    assert do[0, 0] == pytest.approx(0.74136507, abs=1e-9)


# ----------------------------------------------------------------------------- MLP

def make_net(sizes, act, out_act=None):
    """fnn.serial(Dense, act, Dense, act, ..., Dense[, out_act])."""
    layers = []
    for i, n in enumerate(sizes):
        layers.append(fnn.Dense(n))
        if i < len(sizes) - 1:
            layers.append(A.Activation(act[0], **act[1]))
    if out_act is not None:
        layers.append(A.Activation(out_act[0], **out_act[1]))
    return fnn.serial(*layers)


def check_mlp(act, loss, seed, out_act=None, reg=0.0):
    rng = np.random.default_rng(seed)
    depth = 1 + seed % 3                                  # 1, 2 or 3 hidden layers
    n_in, batch, n_out = int(rng.integers(2, 6)), int(rng.integers(1, 7)), int(rng.integers(2, 5))
    sizes = [int(h) for h in rng.integers(2, 7, depth)] + [n_out]
    net = make_net(sizes, act, out_act)
    params = random_params(net, (n_in,), rng)
    assert sorted(params) == [f"dense_{i}" for i in range(len(sizes))]
    x = rng.standard_normal((batch, n_in))
    y = (rng.integers(0, n_out, batch) if loss == "softmax_cross_entropy"
         else rng.standard_normal((batch, n_out)))

    @jax.jit
    def reference(p, x, y):
        def objective(p):
            out = net(p, x)
            return getattr(L, loss)(out, y) + reg * L.l2_penalty(p), out
        return jax.value_and_grad(objective, has_aux=True)(p)

    (value, jax_out), grads = reference(params, x, y)
    m_value, m_grads = manual.mlp_backward(params, x, y, act, loss, out_act, reg=reg)
    out, _ = manual.mlp_forward(params, x, act, out_act)
    np.testing.assert_allclose(out, np.asarray(jax_out), rtol=1e-12, atol=1e-14)
    assert m_value == pytest.approx(float(value), rel=1e-12)
    err = tree_max_rel_diff(to_np(grads), m_grads)
    assert err < TOL, f"{act} {loss}: manual vs jax.grad relative error {err:.2e}"
    return grads


@pytest.mark.parametrize("act", ACTS, ids=ACT_IDS)
def test_mlp_backward_equals_jax_grad(act):
    """Every activation, 1-3 hidden layers of random widths, the three losses in turn."""
    seed = ACTS.index(act)
    grads = check_mlp(act, LOSS_NAMES[seed % 3], seed)
    assert any(np.any(g != 0) for g in jax.tree.leaves(grads))


@pytest.mark.parametrize("act,out_act,loss,reg", [
    (("sigmoid", {}), ("sigmoid", {}), "sum_of_halves", 0.0),
    (("relu", {}), ("softmax", {}), "mse", 0.0),
    (("tanh", {}), ("log_softmax", {}), "sum_of_halves", 0.1),
    (("elu", {"alpha": 0.5}), ("tanh", {}), "mse", 0.01),
    (("relu", {}), None, "softmax_cross_entropy", 1e-3),
    (("swish", {}), ("softplus", {}), "mse", 0.5),
], ids=["sigmoid-out", "softmax-out", "log_softmax-out-reg", "elu-tanh-out-reg", "notes-reg",
        "softplus-out-reg"])
def test_mlp_backward_output_activation_and_reg(act, out_act, loss, reg):
    check_mlp(act, loss, seed=100 + int(reg * 1000), out_act=out_act, reg=reg)


def test_mlp_backward_reg_is_dW_plus_reg_W():
    rng = np.random.default_rng(7)
    params = random_params(make_net([4, 3], ("relu", {})), (2,), rng)
    x, y = rng.standard_normal((5, 2)), rng.integers(0, 3, 5)
    l0, g0 = manual.mlp_backward(params, x, y, "relu", reg=0.0)
    l1, g1 = manual.mlp_backward(params, x, y, "relu", reg=0.25)
    for name in params:
        np.testing.assert_allclose(g1[name]["w"], g0[name]["w"] + 0.25 * params[name]["w"])
        np.testing.assert_array_equal(g1[name]["b"], g0[name]["b"])
    w2 = sum((params[n]["w"] ** 2).sum() for n in params)
    assert l1 == pytest.approx(l0 + 0.125 * w2, rel=1e-14)


def test_mlp_comparison_can_fail():
    """The check has teeth: the wrong activation derivative is far off."""
    rng = np.random.default_rng(8)
    net = make_net([4, 3], ("sigmoid", {}))
    params = random_params(net, (3,), rng)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 3))
    grads = jax.grad(lambda p: L.mse(net(p, jnp.asarray(x)), jnp.asarray(y)))(params)
    _, wrong = manual.mlp_backward(params, x, y, "tanh", "mse")
    assert tree_max_rel_diff(to_np(grads), wrong) > 1e-2


def test_mlp_without_bias():
    rng = np.random.default_rng(9)
    net = fnn.serial(fnn.Dense(4, use_bias=False), fnn.tanh, fnn.Dense(2, use_bias=False))
    params = random_params(net, (3,), rng)
    x, y = rng.standard_normal((5, 3)), rng.standard_normal((5, 2))
    grads = jax.grad(lambda p: L.mse(net(p, jnp.asarray(x)), jnp.asarray(y)))(params)
    _, m_grads = manual.mlp_backward(params, x, y, "tanh", "mse")
    assert tree_max_rel_diff(to_np(grads), m_grads) < TOL


def test_mlp_rejects_bad_params_and_names():
    params = {"dense_0": {"w": np.ones((2, 3)), "b": np.zeros(3)},
              "dense_2": {"w": np.ones((3, 1)), "b": np.zeros(1)}}
    with pytest.raises(ValueError, match="dense_0"):
        manual.mlp_forward(params, np.ones((1, 2)), "relu")
    good = {"dense_0": params["dense_0"]}
    with pytest.raises(ValueError, match="unknown loss 'hinge'"):
        manual.mlp_backward(good, np.ones((1, 2)), np.ones((1, 3)), "relu", "hinge")
    with pytest.raises(ValueError, match="unknown activation 'rleu'"):
        manual.mlp_backward(good, np.ones((1, 2)), np.ones((1, 3)), "rleu", "mse")


# ----------------------------------------------------------------------------- seed 002

W = dict(w1=0.15, w2=0.20, w3=0.25, w4=0.30, w5=0.40, w6=0.45, w7=0.50, w8=0.55, b1=0.35, b2=0.60)


def notes_network():
    """The notes' 2-2-2 sigmoid net in fnn's layout: h = x W1 + b1 with W1[i, j] the weight
    from input i to hidden j, so h1 = w1 i1 + w2 i2 + b1, h2 = w3 i1 + w4 i2 + b1;
    o1 = w5 h1 + w6 h2 + b2, o2 = w7 h1 + w8 h2 + b2."""
    params = {"dense_0": {"w": np.array([[W["w1"], W["w3"]], [W["w2"], W["w4"]]]),
                          "b": np.array([W["b1"], W["b1"]])},
              "dense_1": {"w": np.array([[W["w5"], W["w7"]], [W["w6"], W["w8"]]]),
                          "b": np.array([W["b2"], W["b2"]])}}
    return params, np.array([[0.05, 0.10]]), np.array([[0.01, 0.99]])


def test_seed_002_worked_example():
    params, x, t = notes_network()
    out, (_, nets) = manual.mlp_forward(params, x, "sigmoid", "sigmoid")
    assert round(nets[0][0, 0], 4) == 0.3775                        # net_h1
    assert round(nets[1][0, 0], 9) == 1.105905967                   # net_o1
    assert round(out[0, 0], 8) == 0.75136507 and round(out[0, 1], 9) == 0.772928465

    e, grads = manual.mlp_backward(params, x, t, "sigmoid", "sum_of_halves", "sigmoid")
    assert round(e, 9) == 0.298371109
    assert round(grads["dense_1"]["w"][0, 0], 9) == 0.082167041     # dE/dw5
    assert round(grads["dense_0"]["w"][0, 0], 9) == 0.000438568     # dE/dw1

    lr = 0.5
    new = jax.tree.map(lambda p, g: p - lr * g, params, grads)
    assert round(new["dense_1"]["w"][0, 0], 8) == 0.35891648        # w5+
    assert round(new["dense_1"]["w"][1, 0], 9) == 0.408666186       # w6+
    assert round(new["dense_1"]["w"][0, 1], 9) == 0.511301270       # w7+
    assert round(new["dense_1"]["w"][1, 1], 9) == 0.561370121       # w8+
    assert round(new["dense_0"]["w"][0, 0], 9) == 0.149780716       # w1+

    # and jax.grad of the same fnn network agrees
    net = fnn.serial(fnn.Dense(2), fnn.sigmoid, fnn.Dense(2), fnn.sigmoid)
    jgrads = jax.grad(lambda p: L.sum_of_halves(net(p, jnp.asarray(x)), jnp.asarray(t)))(params)
    assert tree_max_rel_diff(to_np(jgrads), grads) < TOL
