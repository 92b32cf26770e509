"""VAE: closed-form KL against Monte Carlo, reparameterisation, ELBO, training, sampling."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.models.vae import (VAE, dense_vae, elbo, gaussian_kl, interpolate, reparameterize,
                            vae_objective)


def test_gaussian_kl_closed_form_matches_monte_carlo(x64):
    mean = jnp.array([[0.5, -1.0, 0.0], [2.0, 0.3, -0.7]])
    logvar = jnp.array([[0.2, -0.5, 0.0], [-1.0, 0.8, 0.3]])
    closed = gaussian_kl(mean, logvar)
    # KL(q || p) = E_q[log q(z) - log p(z)], estimated with 200k reparameterised draws
    z = jax.vmap(lambda k: reparameterize(k, mean, logvar))(
        jax.random.split(jax.random.key(0), 200_000))
    log_q = -0.5 * jnp.sum((z - mean[None]) ** 2 / jnp.exp(logvar[None]) + logvar[None]
                          + jnp.log(2 * jnp.pi), -1)
    log_p = -0.5 * jnp.sum(z ** 2 + jnp.log(2 * jnp.pi), -1)
    mc = jnp.mean(log_q - log_p, axis=0)
    np.testing.assert_allclose(np.asarray(mc), np.asarray(closed), atol=0.02)
    assert float(gaussian_kl(jnp.zeros((1, 3)), jnp.zeros((1, 3)))[0]) == 0.0


def test_reparameterize_moments_and_gradient():
    mean, logvar = jnp.array([[1.0, -2.0]]), jnp.array([[0.0, jnp.log(4.0)]])
    z = jax.vmap(lambda k: reparameterize(k, mean, logvar))(
        jax.random.split(jax.random.key(1), 20_000))[:, 0]
    np.testing.assert_allclose(np.asarray(z.mean(0)), [1.0, -2.0], atol=0.05)
    np.testing.assert_allclose(np.asarray(z.std(0)), [1.0, 2.0], rtol=0.03)
    g = jax.grad(lambda m: jnp.sum(reparameterize(jax.random.key(0), m, logvar)))(mean)
    chex.assert_trees_all_close(g, jnp.ones_like(mean))


def test_vae_apply_shapes_keys_and_likelihoods():
    vae = dense_vae(16, 3, (8,))
    g = dense_vae(16, 3, (8,), likelihood="gaussian")
    params, state = vae.init(jax.random.key(0), (16,))
    x = jax.random.uniform(jax.random.key(1), (4, 16))
    with pytest.raises(ValueError, match="needs a key"):
        vae.apply(params, state, x, train=True)

    @jax.jit  # one program for all the reads below (eagerly they dispatch op by op)
    def reads(params, x):
        (out, mean, logvar), _ = vae.apply(params, state, x)
        (noisy, _, _), _ = vae.apply(params, state, x, key=jax.random.key(2))
        m0 = vae.encode(params, x[:1])[0]
        return dict(out=out, mean=mean, logvar=logvar, decoded=vae.decode(params, mean),
                    noisy=noisy, sample=vae.sample(params, jax.random.key(3), 5),
                    path=interpolate(vae, params, x[0], x[1], steps=6),
                    first=vae.mean_image(params, m0)[0], ll=vae.log_likelihood(out, x),
                    gaussian_ll=g.log_likelihood(out, x))

    r = reads(params, x)
    out = r["out"]
    chex.assert_shape([out, r["mean"], r["logvar"]], [(4, 16), (4, 3), (4, 3)])
    chex.assert_trees_all_close(out, r["decoded"])  # no key: z = mean
    assert float(jnp.max(jnp.abs(r["noisy"] - out))) > 0
    chex.assert_shape(r["sample"], (5, 16))
    chex.assert_shape(r["path"], (6, 16))
    chex.assert_trees_all_close(r["path"][0], r["first"], rtol=1e-5)
    # Bernoulli log-likelihood from logits = -BCE summed over pixels
    bce = np.sum(np.logaddexp(0, np.asarray(out, np.float64)) - np.asarray(x) * out, axis=1)
    np.testing.assert_allclose(r["ll"], -bce, rtol=1e-5)
    # Gaussian with unit variance: -1/2 ||x - m||^2 - d/2 log 2 pi
    expect = -0.5 * np.sum((np.asarray(x, np.float64) - out) ** 2, axis=1) - 8 * np.log(2 * np.pi)
    np.testing.assert_allclose(r["gaussian_ll"], expect, rtol=1e-5)


def test_elbo_parts_and_objective():
    vae = dense_vae(16, 2, (8,))
    params, _ = vae.init(jax.random.key(0), (16,))
    x = jax.random.uniform(jax.random.key(1), (6, 16))
    e, rec, kl = jax.jit(lambda p, x: elbo(vae, p, x, jax.random.key(2), samples=3))(params, x)
    chex.assert_shape([e, rec, kl], [(6,)] * 3)
    chex.assert_trees_all_close(e, rec - kl)
    assert bool(jnp.all(kl >= 0)) and bool(jnp.all(rec <= 0))
    objective = jax.jit(vae_objective(vae, eval_samples=4), static_argnums=4)
    loss, (_, metrics) = objective(params, {}, x, None, False)
    loss2, _ = objective(params, {}, x, None, False)
    assert float(loss) == float(loss2)  # evaluation is deterministic without a key
    np.testing.assert_allclose(float(loss), -float(metrics["elbo"]), rtol=1e-6)


def test_elbo_improves_on_a_tiny_run():
    rng = np.random.RandomState(0)
    x = (rng.rand(128, 16) < np.linspace(0.1, 0.9, 16)).astype(np.float32)
    vae = dense_vae(16, 2, (16,))
    params, _ = vae.init(jax.random.key(0), (16,))
    result = fnn.fit(vae_objective(vae), params, fnn.optim.adam(1e-2), x, epochs=20,
                     batch_size=32, progress=False, validation_data=x)
    h = result.history
    assert h["val_loss"][-1] < h["val_loss"][0] - 0.5
    assert h["elbo"][-1] > h["elbo"][0]


def test_errors_name_the_problem():
    with pytest.raises(ValueError, match=r"2 \* latent_dim"):
        VAE(fnn.Dense(3), fnn.Dense(4), 2).init(jax.random.key(0), (4,))
    with pytest.raises(ValueError, match="input shape"):
        VAE(fnn.Dense(4), fnn.Dense(5), 2).init(jax.random.key(0), (4,))
    with pytest.raises(ValueError, match="likelihood"):
        VAE(fnn.Dense(4), fnn.Dense(4), 2, likelihood="poisson")


def _vae(*middle):
    """A 16 -> 2 VAE with ``middle`` layers after the encoder's first Dense."""
    enc = fnn.serial(fnn.Dense(8), *middle, fnn.relu, fnn.Dense(4), name="encoder")
    dec = fnn.serial(fnn.Dense(8), fnn.relu, fnn.Dense(16), name="decoder")
    return VAE(enc, dec, 2)


def test_encoder_dropout_is_active_in_training_and_off_in_evaluation():
    plain, dropped = _vae(), _vae(fnn.Dropout(0.5))
    params, state = plain.init(jax.random.key(0), (16,))    # Dropout holds no params
    x = jax.random.uniform(jax.random.key(1), (8, 16))
    key = jax.random.key(2)
    loss = lambda vae, train: float(jax.jit(vae_objective(vae), static_argnums=4)(
        params, state, x, key, train)[0])
    assert loss(dropped, False) == loss(plain, False)
    assert loss(dropped, True) != loss(plain, True)
    assert loss(plain, True) == loss(plain, False)          # same z draw from the same key


def test_a_batchnorm_encoder_trains_with_its_state_threaded():
    vae = _vae(fnn.BatchNorm())
    params, state = vae.init(jax.random.key(0), (16,))
    assert set(state) == {"encoder"}
    rng = np.random.RandomState(0)
    x = (rng.rand(64, 16) < np.linspace(0.1, 0.9, 16)).astype(np.float32)
    result = fnn.fit(vae_objective(vae), params, fnn.optim.adam(1e-2), x, model_state=state,
                     epochs=3, batch_size=16, progress=False)
    mean = result.model_state["encoder"]["batchnorm_0"]["mean"]
    assert float(jnp.max(jnp.abs(mean))) > 1e-3              # running statistics moved
    chex.assert_trees_all_equal_shapes(result.model_state, state)
    # evaluation helpers read the running statistics through the state
    chex.assert_shape(vae.encode(result.params, x, result.model_state)[0], (64, 2))
    with pytest.raises(fnn.ParamsError, match=r"state lacks \['mean', 'var'\]"):
        vae.encode(result.params, x)


def test_elbo_refuses_several_samples_through_a_batchnorm_decoder_in_training():
    dec = fnn.serial(fnn.Dense(8), fnn.BatchNorm(), fnn.relu, fnn.Dense(16), name="decoder")
    vae = VAE(fnn.Dense(4), dec, 2)
    params, state = vae.init(jax.random.key(0), (16,))
    x = jnp.ones((4, 16))
    with pytest.raises(ValueError, match=r"a decoder with state \(BatchNorm\) trains with "
                                         r"samples=1, got 3"):
        vae.elbo(params, state, x, jax.random.key(1), train=True, samples=3)
    (e, _, _), new = jax.jit(lambda p, s: vae.elbo(p, s, x, jax.random.key(1), samples=3))(
        params, state)                                                          # eval: fine
    chex.assert_shape(e, (4,))
    chex.assert_trees_all_equal(new, state)
