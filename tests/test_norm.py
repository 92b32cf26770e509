"""BatchNorm (train vs eval, the running-statistics formula, state threading) and LayerNorm."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.check import gradcheck

KEY = jax.random.key(0)


def rand(shape, seed=1, scale=1.0, shift=0.0):
    """scale * N(0, 1) + shift, float32 (NumPy's generator: no per-shape compile)."""
    return jnp.asarray(np.random.default_rng(seed).standard_normal(shape, np.float32)
                       * np.float32(scale) + np.float32(shift))


def test_batchnorm_params_state_and_stateful():
    bn = fnn.BatchNorm()
    params, state = bn.init(KEY, (4, 4, 3))
    np.testing.assert_array_equal(params["scale"], np.ones(3))
    np.testing.assert_array_equal(params["b"], np.zeros(3))
    np.testing.assert_array_equal(state["mean"], np.zeros(3))
    np.testing.assert_array_equal(state["var"], np.ones(3))
    assert bn.stateful and bn.output_shape((4, 4, 3)) == (4, 4, 3)


def test_batchnorm_train_uses_batch_statistics_and_updates_running_ones():
    bn = fnn.BatchNorm(momentum=0.8, eps=1e-3)
    params, state = bn.init(KEY, (5, 2))
    params = {"scale": jnp.array([2.0, 0.5]), "b": jnp.array([1.0, -1.0])}
    state = {"mean": jnp.array([0.3, -0.2]), "var": jnp.array([1.5, 0.7])}
    x = rand((4, 5, 2), scale=3.0, shift=2.0)
    y, new = bn.apply(params, state, x, train=True)
    xs = np.asarray(x, np.float64).reshape(-1, 2)                    # n = 20 values per channel
    mu, var = xs.mean(0), xs.var(0)
    expected = (np.asarray(x) - mu) / np.sqrt(var + 1e-3) * [2.0, 0.5] + [1.0, -1.0]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)
    # running = momentum * running + (1 - momentum) * batch, unbiased variance (as PyTorch)
    np.testing.assert_allclose(new["mean"], 0.8 * np.array([0.3, -0.2]) + 0.2 * mu, rtol=1e-5)
    np.testing.assert_allclose(new["var"], 0.8 * np.array([1.5, 0.7]) + 0.2 * xs.var(0, ddof=1),
                               rtol=1e-5)
    np.testing.assert_array_equal(state["mean"], jnp.array([0.3, -0.2]))  # input state kept


def test_batchnorm_eval_uses_running_statistics_never_batch_ones():
    bn = fnn.BatchNorm()
    params, _ = bn.init(KEY, (3,))
    state = {"mean": jnp.array([1.0, 2.0, 3.0]), "var": jnp.array([4.0, 1.0, 0.25])}
    x = rand((6, 3), scale=5.0)
    y, same = bn.apply(params, state, x)                               # train=False
    np.testing.assert_allclose(y, (np.asarray(x) - [1, 2, 3]) / np.sqrt(np.array([4, 1, .25])
                                                                        + 1e-5), rtol=1e-5)
    chex.assert_trees_all_equal(same, state)
    # one example at a time gives the same answer: nothing depends on the batch
    single = jnp.concatenate([bn.apply(params, state, x[i:i + 1])[0] for i in range(6)])
    np.testing.assert_allclose(single, y, rtol=1e-6)


def test_batchnorm_running_stats_converge_to_the_data_statistics():
    bn = fnn.BatchNorm(momentum=0.5)
    params, state = bn.init(KEY, (2, 2, 1))
    step = jax.jit(lambda s, k: bn.apply(
        params, s, 3.0 + 2.0 * jax.random.normal(k, (64, 2, 2, 1)), train=True)[1])
    for i in range(30):
        state = step(state, jax.random.key(i))
    np.testing.assert_allclose(state["mean"], [3.0], atol=0.5)
    np.testing.assert_allclose(state["var"], [4.0], rtol=0.3)


def test_batchnorm_in_serial_returns_new_state_with_train_true():
    net = fnn.serial(fnn.Conv2D(4, 3), fnn.BatchNorm(), fnn.relu, fnn.Flatten(), fnn.Dense(2))
    assert net.stateful
    params, state = net.init(KEY, (5, 5, 2))
    assert set(state) == {"batchnorm_0"}
    x = rand((3, 5, 5, 2))
    y, new = net.apply(params, state, x, train=True)
    assert not np.allclose(new["batchnorm_0"]["mean"], state["batchnorm_0"]["mean"])
    _, kept = net.apply(params, new, x, train=False)
    np.testing.assert_array_equal(kept["batchnorm_0"]["var"], new["batchnorm_0"]["var"])
    with pytest.raises(TypeError, match="carries state"):
        net(params, x)
    # jit + grad through training mode, state as an auxiliary output
    loss = lambda p: (lambda y, s: (jnp.sum(y ** 2), s))(*net.apply(p, state, x, train=True))
    (_, s), g = jax.jit(jax.value_and_grad(loss, has_aux=True))(params)
    assert jax.tree.structure(s) == jax.tree.structure(state)
    assert jax.tree.structure(g) == jax.tree.structure(params)


def test_batchnorm_channel_axis():
    bn = fnn.BatchNorm(axis=0)                     # channels first: (C, L) without the batch
    params, state = bn.init(KEY, (3, 5))
    assert params["scale"].shape == (3,)
    x = rand((4, 3, 5), shift=1.0)
    y, new = bn.apply(params, state, x, train=True)
    np.testing.assert_allclose(np.asarray(y).mean(axis=(0, 2)), np.zeros(3), atol=1e-5)
    np.testing.assert_allclose(new["mean"], 0.1 * np.asarray(x).mean(axis=(0, 2)), rtol=1e-5)


@pytest.mark.parametrize("train", [True, False])
def test_batchnorm_gradients_match_finite_differences(train):
    bn = fnn.BatchNorm()
    params, _ = bn.init(KEY, (3, 2))
    params = {"scale": jnp.array([1.5, 0.5]), "b": jnp.array([0.1, -0.2])}
    state = {"mean": jnp.array([0.2, -0.1]), "var": jnp.array([1.2, 0.8])}
    x, cot = rand((2, 3, 2)), rand((2, 3, 2), seed=2)
    gradcheck(lambda px, s, cot: jnp.sum(bn.apply(px[0], s, px[1], train=train)[0] * cot),
              (params, x), state, cot)


def test_layernorm_values_and_gradients():
    ln = fnn.LayerNorm(eps=1e-3)
    params, state = ln.init(KEY, (3, 4))
    assert state == {} and not ln.stateful and params["scale"].shape == (4,)
    params = {"scale": jnp.array([1.0, 2.0, 0.5, -1.0]), "b": jnp.array([0.0, 1.0, 0.0, 2.0])}
    x = rand((2, 3, 4), scale=2.0, shift=1.0)
    xs = np.asarray(x, np.float64)
    mu, var = xs.mean(-1, keepdims=True), xs.var(-1, keepdims=True)
    expected = (xs - mu) / np.sqrt(var + 1e-3) * [1, 2, .5, -1] + [0, 1, 0, 2]
    np.testing.assert_allclose(ln(params, x), expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(ln(params, x, train=True), ln(params, x))
    cot = rand((2, 3, 4), seed=2)
    gradcheck(lambda px, cot: jnp.sum(ln(px[0], px[1]) * cot), (params, x), cot)


def test_norm_errors_name_the_layer_expected_and_given():
    with pytest.raises(ValueError, match=r"batchnorm: momentum must be a finite number in \[0, 1\], "
                                         r"got 1.5"):
        fnn.BatchNorm(momentum=1.5)
    with pytest.raises(ValueError, match=r"batchnorm: eps must be a finite number > 0, got 0"):
        fnn.BatchNorm(eps=0)
    with pytest.raises(ValueError, match=r"layernorm: eps must be a finite number > 0, got -1"):
        fnn.LayerNorm(eps=-1)
    with pytest.raises(ValueError, match=r"batchnorm: axis 2 is out of range for inputs with 2 "
                                         r"non-batch axes"):
        fnn.BatchNorm(axis=2).init(KEY, (3, 4))
    bn = fnn.BatchNorm()
    params, state = bn.init(KEY, (3,))
    with pytest.raises(ValueError, match=r"batchnorm: expected 3 channels on axis 1 of the input "
                                         r"\(batch axis included\), got shape \(2, 4\)"):
        bn.apply(params, state, jnp.zeros((2, 4)))
    with pytest.raises(ValueError, match=r"batchnorm: training needs more than one value per "
                                         r"channel.*got input of shape \(1, 3\)"):
        bn.apply(params, state, jnp.zeros((1, 3)), train=True)
    ln = fnn.LayerNorm()
    p, _ = ln.init(KEY, (4,))
    with pytest.raises(ValueError, match=r"layernorm: expected input of shape "
                                         r"\(batch, \.\.\., 4\), got \(2, 5\)"):
        ln(p, jnp.zeros((2, 5)))
