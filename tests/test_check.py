"""gradcheck and tree comparison: they pass on right gradients and catch wrong ones."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.check import GradientCheckError, gradcheck, tree_max_rel_diff
from lowerings import Lowerings

KEY = jax.random.key(0)


def test_gradcheck_passes_for_a_network_and_reports_every_leaf():
    net = fnn.serial(fnn.Dense(5), fnn.tanh, fnn.Dense(3))
    params, _ = net.init(KEY, (4,))
    x = jax.random.normal(jax.random.key(1), (6, 4))
    y = jnp.array([0, 1, 2, 0, 1, 2])
    report = gradcheck(lambda p, x, y: fnn.losses.softmax_cross_entropy(net(p, x), y), params, x, y)
    assert set(report) == {"['dense_0']['b']", "['dense_0']['w']", "['dense_1']['b']", "['dense_1']['w']"}
    assert max(report.values()) < 1e-7


def test_gradcheck_runs_in_float64_even_for_float32_params():
    seen = []

    def f(p):
        seen.append(p["w"].dtype)
        return jnp.sum(jnp.sin(p["w"]) ** 2)

    gradcheck(f, {"w": jnp.linspace(-1, 1, 7, dtype=jnp.float32)})
    assert all(d == jnp.float64 for d in seen)


def test_gradcheck_catches_a_wrong_gradient_and_names_the_leaf():
    @jax.custom_vjp
    def wrong_square(x):
        return x ** 2

    wrong_square.defvjp(lambda x: (x ** 2, x), lambda x, g: (3.0 * x * g,))   # should be 2x
    params = {"good": jnp.array([0.5, -1.0]), "bad": jnp.array([0.7, 1.2])}
    f = lambda p: jnp.sum(p["good"] ** 2) + jnp.sum(wrong_square(p["bad"]))
    with pytest.raises(GradientCheckError, match=r"disagree at \['bad'\]: relative error 3\.3"):
        gradcheck(f, params)


def test_gradcheck_handles_many_parameters_in_batches():
    w = jax.random.normal(KEY, (40, 30))          # 1200 directions, several lax.map batches
    report = gradcheck(lambda w: jnp.sum(jnp.tanh(w) ** 3), w, batch_size=100)
    assert report["<root>"] < 1e-6


def test_gradcheck_lowers_its_two_programs_and_none_per_leaf_shape():
    # casts to float64, the flat vector, the unit directions and each leaf's worst error are
    # NumPy's; only the jitted gradient and the mapped central differences are programs (and
    # lax.map's reshape of the directions into batches), whatever the leaves' shapes and dtypes
    params = {"w": jnp.full((3, 7), 0.3, jnp.float32), "b": jnp.full((11,), -0.2, jnp.bfloat16),
              "v": jnp.full((2, 3, 5), 0.7, jnp.float32)}
    f = lambda p, scale, power: scale * sum(jnp.sum(jnp.sin(v) ** power)
                                            for v in jax.tree.leaves(p))
    with Lowerings(every=True) as lowered:
        report = gradcheck(f, params, np.float32(1.5), 3)
    assert {"jit(<lambda>)", "jit(scan)"} <= set(lowered.names) <= {
        "jit(<lambda>)", "jit(scan)", "jit(reshape)"}, lowered.names
    assert len(lowered.names) <= 4, lowered.names
    assert set(report) == {"['b']", "['v']", "['w']"} and max(report.values()) < 1e-7


@pytest.mark.parametrize("params", [{}, {"w": jnp.zeros((0, 3))}], ids=["no leaves", "empty"])
def test_gradcheck_refuses_params_with_nothing_to_check(params):
    with pytest.raises(ValueError, match="gradcheck: params has no floating-point leaves"):
        gradcheck(lambda p: jnp.float32(1.0), params)


def test_tree_max_rel_diff():
    a = {"w": np.array([1.0, 2.0]), "b": np.array([0.0])}
    b = {"w": np.array([1.0, 2.002]), "b": np.array([0.0])}
    assert tree_max_rel_diff(a, b) == pytest.approx(0.002 / 2.002)
    assert tree_max_rel_diff(a, a) == 0.0
    with pytest.raises(ValueError, match="tree structures differ"):
        tree_max_rel_diff(a, {"w": a["w"]})
