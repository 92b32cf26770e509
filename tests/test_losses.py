"""fnn.losses against NumPy formulas; stability; label forms; penalties; validation."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import losses as L

RNG = np.random.default_rng(0)


def np_log_softmax(z):
    z = z - z.max(-1, keepdims=True)
    return z - np.log(np.exp(z).sum(-1, keepdims=True))


@pytest.fixture
def data():
    rng = np.random.default_rng(1)
    return rng.standard_normal((6, 4)), rng.standard_normal((6, 4)), rng.integers(0, 4, 6)


def test_regression_losses(x64, data):
    pred, target, _ = data
    p, t = jnp.asarray(pred), jnp.asarray(target)
    assert float(L.mse(p, t)) == pytest.approx(np.mean((pred - target) ** 2), rel=1e-12)
    assert float(L.mae(p, t)) == pytest.approx(np.mean(np.abs(pred - target)), rel=1e-12)
    assert float(L.sum_of_halves(p, t)) == pytest.approx(0.5 * np.sum((target - pred) ** 2),
                                                         rel=1e-12)
    # the notes' worked example: E_total = 0.298371109
    e = L.sum_of_halves(jnp.array([[0.75136507, 0.772928465]]), jnp.array([[0.01, 0.99]]))
    assert round(float(e), 9) == 0.298371109
    g = jax.grad(L.sum_of_halves)(p, t)
    np.testing.assert_allclose(np.asarray(g), -(target - pred), rtol=1e-12)


def test_softmax_cross_entropy_int_and_onehot(x64, data):
    logits, _, labels = data
    expected = -np.mean(np_log_softmax(logits)[np.arange(6), labels])
    z = jnp.asarray(logits)
    got_int = float(L.softmax_cross_entropy(z, jnp.asarray(labels)))
    got_hot = float(L.softmax_cross_entropy(z, jnp.asarray(np.eye(4)[labels])))
    assert got_int == pytest.approx(expected, rel=1e-12)
    assert got_hot == pytest.approx(got_int, rel=1e-14)
    g = np.asarray(jax.grad(L.softmax_cross_entropy)(z, jnp.asarray(labels)))
    probs = np.exp(np_log_softmax(logits))
    np.testing.assert_allclose(g, (probs - np.eye(4)[labels]) / 6, rtol=1e-10, atol=1e-15)
    # soft targets: -sum p log q, averaged over the batch
    soft = np.exp(np_log_softmax(RNG.standard_normal((6, 4))))
    assert float(L.softmax_cross_entropy(z, jnp.asarray(soft))) == pytest.approx(
        -np.sum(soft * np_log_softmax(logits)) / 6, rel=1e-12)


def test_softmax_cross_entropy_stable_for_huge_logits():
    logits = jnp.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]], jnp.float32)
    labels = jnp.array([0, 2])
    loss, g = jax.value_and_grad(L.softmax_cross_entropy)(logits, labels)
    assert np.isfinite(float(loss)) and np.all(np.isfinite(np.asarray(g)))
    assert float(loss) == pytest.approx((0.0 + 5e3) / 2, rel=1e-6)      # -log q = 1e4 - 5e3
    np.testing.assert_allclose(np.asarray(g), [[0, 0, 0], [0, 0.5, -0.5]], atol=1e-6)


def test_binary_cross_entropy(x64):
    rng = np.random.default_rng(2)
    z, t = 3 * rng.standard_normal((5, 3)), rng.uniform(size=(5, 3))
    s = 1 / (1 + np.exp(-z))
    expected = -np.mean(t * np.log(s) + (1 - t) * np.log(1 - s))
    assert float(L.binary_cross_entropy(jnp.asarray(z), jnp.asarray(t))) == pytest.approx(
        expected, rel=1e-10)
    g = np.asarray(jax.grad(L.binary_cross_entropy)(jnp.asarray(z), jnp.asarray(t)))
    np.testing.assert_allclose(g, (s - t) / z.size, rtol=1e-10)


def test_binary_cross_entropy_stable_for_large_logits():
    z = jnp.array([1e4, -1e4, 1e4, -1e4, 100.0], jnp.float32)
    t = jnp.array([1.0, 0.0, 0.0, 1.0, 1.0], jnp.float32)
    loss, g = jax.value_and_grad(L.binary_cross_entropy)(z, t)
    assert np.isfinite(float(loss)) and np.all(np.isfinite(np.asarray(g)))
    # right with confidence: ~0; wrong with confidence: |z|
    assert float(loss) == pytest.approx((0 + 0 + 1e4 + 1e4 + 0) / 5, rel=1e-6)
    np.testing.assert_allclose(np.asarray(g), np.array([0, 0, 1, -1, 0]) / 5, atol=1e-7)


def test_kl_divergence(x64):
    rng = np.random.default_rng(3)
    p = np.exp(np_log_softmax(rng.standard_normal((4, 5))))
    log_q = np_log_softmax(rng.standard_normal((4, 5)))
    kl = float(L.kl_divergence(jnp.asarray(log_q), jnp.asarray(p)))
    assert kl == pytest.approx(np.sum(p * (np.log(p) - log_q)) / 4, rel=1e-12)
    assert kl > 0
    assert float(L.kl_divergence(jnp.log(jnp.asarray(p)), jnp.asarray(p))) == pytest.approx(0, abs=1e-14)
    # zero-probability entries contribute 0 (no 0 log 0 = nan), and the gradient is finite
    p0 = np.array([[0.0, 0.5, 0.5]])
    log_q0 = np.log(np.array([[0.2, 0.3, 0.5]]))
    val, g = jax.value_and_grad(L.kl_divergence, argnums=(0, 1))(jnp.asarray(log_q0), jnp.asarray(p0))
    assert float(val) == pytest.approx(0.5 * np.log(0.5 / 0.3), rel=1e-12)
    assert all(np.all(np.isfinite(np.asarray(a))) for a in g)


def test_kl_is_nonnegative_on_random_pairs():
    rng = np.random.default_rng(4)
    for _ in range(20):
        p = jax.nn.softmax(jnp.asarray(3 * rng.standard_normal((2, 6)), jnp.float32))
        log_q = jax.nn.log_softmax(jnp.asarray(3 * rng.standard_normal((2, 6)), jnp.float32))
        assert float(L.kl_divergence(log_q, p)) >= -1e-6


PARAMS = {"dense_0": {"w": jnp.array([[1.0, -2.0], [3.0, 0.5]]), "b": jnp.array([10.0, -1.0])},
          "dense_1": {"w": jnp.array([[-1.0], [2.0]]), "b": jnp.array([4.0])}}


def test_l2_penalty_skips_biases():
    w2 = 1 + 4 + 9 + 0.25 + 1 + 4
    assert float(L.l2_penalty(PARAMS)) == pytest.approx(0.5 * w2)
    assert float(L.l2_penalty(PARAMS, include_biases=True)) == pytest.approx(0.5 * (w2 + 100 + 1 + 16))
    g = jax.grad(lambda p: 0.01 * L.l2_penalty(p))(PARAMS)     # the notes' dW += reg * W
    np.testing.assert_allclose(np.asarray(g["dense_0"]["w"]), 0.01 * np.asarray(PARAMS["dense_0"]["w"]))
    assert np.all(np.asarray(g["dense_0"]["b"]) == 0) and np.all(np.asarray(g["dense_1"]["b"]) == 0)


def test_l1_penalty_skips_biases():
    w1 = 1 + 2 + 3 + 0.5 + 1 + 2
    assert float(L.l1_penalty(PARAMS)) == pytest.approx(w1)
    assert float(L.l1_penalty(PARAMS, include_biases=True)) == pytest.approx(w1 + 10 + 1 + 4)
    g = jax.grad(L.l1_penalty)(PARAMS)
    np.testing.assert_array_equal(np.asarray(g["dense_0"]["w"]), [[1, -1], [1, 1]])


def test_shape_errors_are_clear():
    with pytest.raises(ValueError, match=r"mse: predictions and targets must have the same shape, "
                                         r"got \(3, 2\) and \(3,\)"):
        L.mse(jnp.ones((3, 2)), jnp.ones(3))
    with pytest.raises(ValueError, match="sum_of_halves: .*same shape"):
        L.sum_of_halves(jnp.ones((3, 2)), jnp.ones((2, 3)))
    with pytest.raises(ValueError, match="binary_cross_entropy: .*same shape"):
        L.binary_cross_entropy(jnp.ones((3, 1)), jnp.ones(3))
    with pytest.raises(ValueError, match=r"integer labels must have shape \(4,\)"):
        L.softmax_cross_entropy(jnp.ones((4, 3)), jnp.zeros((4, 1), jnp.int32))
    # float labels that are not one-hot shaped: say so, and hint at the integer dtype
    with pytest.raises(ValueError, match=r"one-hot targets must have the logits' shape \(4, 3\), "
                                         r"got \(4,\) \(integer labels must have an integer dtype\)"):
        L.softmax_cross_entropy(jnp.ones((4, 3)), jnp.zeros(4, jnp.float32))
    with pytest.raises(ValueError, match=r"expected logits of shape \(batch, classes\)"):
        L.softmax_cross_entropy(jnp.ones(4), jnp.zeros(4, jnp.int32))


def test_accuracy():
    logits = jnp.array([[2.0, 1.0, 0.0], [0.0, 3.0, 1.0], [1.0, 0.0, 5.0], [4.0, 0.0, 0.0]])
    labels = jnp.array([0, 1, 0, 2])
    assert float(L.accuracy(logits, labels)) == pytest.approx(0.5)
    assert float(L.accuracy(logits, jax.nn.one_hot(labels, 3))) == pytest.approx(0.5)
    assert float(L.accuracy(logits, jnp.array([0, 1, 2, 0]))) == 1.0


def test_losses_are_jittable_scalars():
    z, y = jnp.ones((3, 2)), jnp.array([0, 1, 1])
    for loss in (lambda: jax.jit(L.softmax_cross_entropy)(z, y), lambda: jax.jit(L.mse)(z, z),
                 lambda: jax.jit(L.binary_cross_entropy)(z, z * 0.5)):
        out = loss()
        assert out.shape == () and out.dtype == jnp.float32
    assert float(L.mse(z, z)) == 0.0
    assert fnn.losses is L


def test_out_of_range_integer_labels_are_rejected_eagerly():
    logits = jnp.zeros((2, 3))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\) for 3 classes, got values from 0 to 5"):
        fnn.losses.softmax_cross_entropy(logits, jnp.array([0, 5]))
    assert float(fnn.losses.softmax_cross_entropy(logits, [0, 2])) == pytest.approx(np.log(3))
