"""Dropout and GaussianNoise: statistics in training, identity in eval, key discipline."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.check import gradcheck

KEY = jax.random.key(0)


@pytest.mark.parametrize("rate", [0.0, 0.2, 0.5, 0.9])
def test_dropout_drops_a_fraction_rate_and_preserves_the_mean(rate):
    layer = fnn.Dropout(rate)
    x = jnp.full((200, 500), 2.0)
    y, _ = layer.apply({}, {}, x, key=KEY, train=True)
    dropped = float(jnp.mean(y == 0))
    assert abs(dropped - rate) < 0.01                                  # 100k draws: sd < 0.0016
    np.testing.assert_allclose(np.unique(np.asarray(y)[np.asarray(y) != 0]), [2.0 / (1 - rate)],
                               rtol=1e-6)                             # kept units scaled
    sd = 2.0 * np.sqrt(rate / (1 - rate) / x.size)                    # sd of the mean of y
    assert abs(float(jnp.mean(y)) - 2.0) <= 5 * sd + 1e-6                # E[y] = x


def test_dropout_is_the_identity_in_eval_without_a_key():
    x = jnp.asarray(np.random.default_rng(0).standard_normal((4, 6), np.float32))
    for layer in (fnn.Dropout(0.5), fnn.GaussianNoise(1.0)):
        y, state = layer.apply({}, {}, x)
        assert y is x and state == {}
        np.testing.assert_array_equal(layer({}, x, train=False), x)


def test_training_without_a_key_shows_the_right_call():
    x = jnp.ones((2, 3))
    for layer in (fnn.Dropout(0.5), fnn.GaussianNoise(0.1)):
        with pytest.raises(ValueError, match=rf"{layer.name}: training .*needs a key; call "
                                             r"net\.apply\(params, state, x, "
                                             r"key=jax\.random\.key\(0\), train=True\)"):
            layer.apply({}, {}, x, train=True)
    net = fnn.serial(fnn.Dense(3), fnn.Dropout(0.1))
    params, state = net.init(KEY, (3,))
    with pytest.raises(ValueError, match=r"dropout: training"):
        net.apply(params, state, x, train=True)


def test_dropout_masks_depend_on_the_key_only():
    layer, x = fnn.Dropout(0.5), jnp.ones((4, 50))
    a = layer.apply({}, {}, x, key=jax.random.key(1), train=True)[0]
    b = layer.apply({}, {}, x, key=jax.random.key(1), train=True)[0]
    c = layer.apply({}, {}, x, key=jax.random.key(2), train=True)[0]
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    jitted = jax.jit(lambda x, k: layer.apply({}, {}, x, key=k, train=True)[0])
    np.testing.assert_array_equal(jitted(x, jax.random.key(1)), a)


def test_gaussian_noise_statistics():
    x = jnp.full((100, 1000), 3.0)
    y, _ = fnn.GaussianNoise(0.5).apply({}, {}, x, key=KEY, train=True)
    assert abs(float(jnp.mean(y)) - 3.0) < 0.01
    assert abs(float(jnp.std(y)) - 0.5) < 0.01
    np.testing.assert_array_equal(fnn.GaussianNoise(0.0).apply({}, {}, x, key=KEY, train=True)[0],
                                  x)


def test_noise_gradients_match_finite_differences():
    x, cot = np.random.default_rng(0).standard_normal((2, 3, 4), np.float32)
    for layer in (fnn.Dropout(0.4), fnn.GaussianNoise(0.3)):
        f = lambda x, cot: jnp.sum(layer.apply({}, {}, x, key=jax.random.key(3), train=True)[0]
                                   * cot)
        gradcheck(f, x, cot)


def test_noise_arguments_are_validated():
    with pytest.raises(ValueError, match=r"dropout: rate \(the probability of dropping a unit\) "
                                         r"must be a finite number in \[0, 1\), got 1"):
        fnn.Dropout(1)
    with pytest.raises(ValueError, match=r"dropout: rate .* got -0.1"):
        fnn.Dropout(-0.1)
    with pytest.raises(ValueError, match=r"gaussian_noise: stddev must be a finite number >= 0, "
                                         r"got -1.0"):
        fnn.GaussianNoise(-1.0)
