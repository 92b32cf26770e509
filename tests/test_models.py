"""Models: the MLP's structure and the perceptron learning rule."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn

X = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], np.float32)


def test_mlp_is_dense_layers_with_activations_between():
    net = fnn.MLP([16, 8, 3], activation="tanh")
    params, _ = net.init(jax.random.key(0), (5,))
    assert [params[f"dense_{i}"]["w"].shape for i in range(3)] == [(5, 16), (16, 8), (8, 3)]
    x = jax.random.normal(jax.random.key(1), (4, 5))
    h = x
    for i in range(3):
        h = h @ params[f"dense_{i}"]["w"] + params[f"dense_{i}"]["b"][None]
        h = jnp.tanh(h) if i < 2 else h
    np.testing.assert_allclose(net(params, x), h, rtol=1e-5, atol=1e-6)
    probs = fnn.MLP([3], output_activation="softmax")(fnn.MLP([3], output_activation="softmax")
                                                     .init(jax.random.key(0), (5,))[0], x)
    np.testing.assert_allclose(np.sum(probs, axis=1), 1.0, rtol=1e-6)
    with pytest.raises(ValueError, match="sizes must list at least the output size"):
        fnn.MLP([])


@pytest.mark.parametrize("gate, targets", [("AND", [0, 0, 0, 1]), ("OR", [0, 1, 1, 1])])
def test_perceptron_rule_learns_separable_gates(gate, targets):
    run = fnn.perceptron_rule(X, np.array(targets), epochs=20)
    errors = np.asarray(run.errors)
    assert errors[0] > 0 and errors[-1] == 0
    unit = fnn.Perceptron()
    params = {"dense_0": {"w": run.w[:, None], "b": run.b[None]}}
    np.testing.assert_array_equal(np.asarray(unit(params, X))[:, 0], targets)


def test_perceptron_rule_matches_a_python_loop_and_never_solves_xor():
    t = np.array([0, 1, 1, 0])
    run = fnn.perceptron_rule(X, t, epochs=30, learning_rate=0.5)
    w, b, errors = np.zeros(2), 0.0, []
    for _ in range(30):
        mistakes = 0
        for xi, ti in zip(X, t):
            e = ti - float(xi @ w + b > 0)
            w, b, mistakes = w + 0.5 * e * xi, b + 0.5 * e, mistakes + abs(e)
        errors.append(mistakes)
    np.testing.assert_allclose(run.w, w, rtol=1e-6)
    np.testing.assert_allclose(run.b, b, rtol=1e-6)
    np.testing.assert_array_equal(run.errors, errors)
    assert min(errors) > 0
    with pytest.raises(ValueError, match=r"expected x \(N, n\) and t \(N,\)"):
        fnn.perceptron_rule(X, t[:3])
