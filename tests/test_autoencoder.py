"""Autoencoder: composition, shapes, denoising noise in training only, a short fit, errors."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.models.autoencoder import Autoencoder, conv_autoencoder, dense_autoencoder


def test_dense_autoencoder_params_shapes_and_helpers():
    ae = dense_autoencoder(64, 2, (32,))
    params, state = ae.init(jax.random.key(0), (64,))
    assert set(params) == {"encoder", "decoder"} and state == {}
    assert params["encoder"]["dense_1"]["w"].shape == (32, 2)
    assert params["decoder"]["dense_1"]["w"].shape == (32, 64)
    x = jax.random.uniform(jax.random.key(1), (5, 64))
    y, z, y2, z2 = jax.jit(lambda p, x: (ae(p, x), ae.encode(p, x),
                                         ae.decode(p, ae.encode(p, x)),
                                         ae.encoder(p["encoder"], x)))(params, x)
    chex.assert_shape([y, z], [(5, 64), (5, 2)])
    # apply == decode(encode(x)): a pure composition of the two halves
    chex.assert_trees_all_close(y, y2, rtol=1e-6)
    chex.assert_trees_all_close(z2, z)
    assert ae.output_shape((64,)) == (64,)


def test_conv_autoencoder_on_digit_images():
    ae = conv_autoencoder(8)
    params, _ = ae.init(jax.random.key(0), (8, 8, 1))
    x = jax.random.uniform(jax.random.key(1), (3, 8, 8, 1))
    y, z = jax.jit(lambda p, x: (ae(p, x), ae.encode(p, x)))(params, x)
    chex.assert_shape([y, z], [(3, 8, 8, 1), (3, 8)])
    kinds = {k.split("_")[0] for k in params["decoder"]}
    assert "conv" in kinds  # ConvTranspose2D's base name
    assert set(params["encoder"]) >= {"conv_0", "conv_1", "dense_0"}


def test_denoising_noise_only_in_training_and_keyed():
    ae = dense_autoencoder(16, 4, (8,), noise_std=0.5)
    params, state = ae.init(jax.random.key(0), (16,))
    x = jax.random.uniform(jax.random.key(1), (4, 16))
    run = jax.jit(lambda key, train: ae.apply(params, state, x, key=key, train=train)[0],
                  static_argnums=1)
    clean = jax.jit(lambda: ae.apply(params, state, x)[0])()
    # evaluation: no noise, no key needed, and a key changes nothing
    chex.assert_trees_all_close(run(jax.random.key(5), False), clean)
    a, b, c = (run(jax.random.key(k), True) for k in (2, 2, 3))
    chex.assert_trees_all_close(a, b)
    assert float(jnp.max(jnp.abs(a - clean))) > 1e-3 and float(jnp.max(jnp.abs(a - c))) > 1e-3
    with pytest.raises(ValueError, match="needs a key"):
        ae.apply(params, state, x, train=True)
    # the same net without noise is deterministic in training
    plain = dense_autoencoder(16, 4, (8,))
    chex.assert_trees_all_close(jax.jit(lambda: plain.apply(params, {}, x, train=True)[0])(),
                                clean)


def test_fit_reduces_reconstruction_error():
    x = np.asarray(jax.random.uniform(jax.random.key(0), (64, 16)))
    ae = dense_autoencoder(16, 4, (16,), noise_std=0.1)
    params, _ = ae.init(jax.random.key(1), (16,))
    result = fnn.fit(fnn.supervised(ae, fnn.losses.mse), params, fnn.optim.adam(1e-2), (x, x),
                     epochs=30, batch_size=16, progress=False)
    assert result.history["loss"][-1] < 0.6 * result.history["loss"][0]


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match="must give back the input shape"):
        Autoencoder(fnn.Dense(3), fnn.Dense(5)).init(jax.random.key(0), (4,))
    with pytest.raises(ValueError, match="noise_std"):
        Autoencoder(fnn.Dense(3), fnn.Dense(4), noise_std=-1.0)
    with pytest.raises(ValueError, match="divisible"):
        conv_autoencoder(4, image_shape=(6, 6, 1))


def test_batchnorm_halves_thread_their_state_and_the_helpers_take_it():
    enc = fnn.serial(fnn.Dense(8), fnn.BatchNorm(), fnn.relu, fnn.Dense(2), name="encoder")
    ae = Autoencoder(enc, fnn.serial(fnn.Dense(16), name="decoder"))
    params, state = ae.init(jax.random.key(0), (16,))
    x = jax.random.uniform(jax.random.key(1), (8, 16))
    _, new = ae.apply(params, state, x, train=True)
    assert not np.allclose(new["encoder"]["batchnorm_0"]["mean"], 0.0)
    z = ae.encode(params, x, new)
    chex.assert_trees_all_close(ae.apply(params, new, x)[0], ae.decode(params, z, new), rtol=1e-6)
    with pytest.raises(fnn.ParamsError, match=r"at \['encoder'\]\['batchnorm_0'\]: batchnorm: "
                                              r"state lacks"):
        ae.encode(params, x)
