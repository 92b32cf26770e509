"""GAN losses, the two-tree step (each tree moved only by its own optimizer) and multi_step."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn
from fnn.models.gan import (GAN, conv_generator, dense_discriminator, dense_generator,
                            discriminator_loss, generator_loss)
from fnn.train import fit_gan, gan_step, multi_step


def _gan(conv=False):
    gen = conv_generator((8, 8, 1), (8, 4)) if conv else dense_generator(4, 8, (16,))
    disc = fnn.serial(fnn.Flatten(), dense_discriminator((16,)))
    return GAN(gen, disc, 4)


def test_losses_match_their_formulas():
    real, fake = jnp.array([[2.0], [-1.0]]), jnp.array([[0.5], [-3.0]])
    sig = jax.nn.sigmoid
    expect_d = -jnp.mean(jnp.log(sig(real))) - jnp.mean(jnp.log(1 - sig(fake)))
    np.testing.assert_allclose(float(discriminator_loss(real, fake)), float(expect_d), rtol=1e-6)
    np.testing.assert_allclose(float(generator_loss(fake)), float(-jnp.mean(jnp.log(sig(fake)))),
                               rtol=1e-6)
    # non-saturating: strong gradient when D confidently rejects the fakes
    assert abs(float(jax.grad(lambda f: generator_loss(f))(jnp.array([[-8.0]]))[0, 0])) > 0.99


def test_step_changes_both_trees_and_zero_lr_freezes_one():
    gan = _gan()
    trees, _ = gan.init(jax.random.key(0), (8,))
    x = jax.random.uniform(jax.random.key(1), (16, 8))
    key = jax.random.key(2)
    both = gan_step(gan, fnn.optim.adam(1e-2), fnn.optim.adam(1e-2))
    new, _, metrics = jax.jit(both)(trees, both.init(trees), x, key)
    for name in ("generator", "discriminator"):
        assert all(bool(jnp.any(a != b)) for a, b in
                   zip(jax.tree.leaves(new[name]), jax.tree.leaves(trees[name])))
    assert set(metrics) == {"discriminator_loss", "generator_loss", "discriminator_d_real",
                            "discriminator_d_fake"}
    # a zero learning rate for one optimizer (here optax's) freezes its tree alone
    step = gan_step(gan, optax.sgd(0.0), fnn.optim.adam(1e-2))
    new, _, _ = jax.jit(step)(trees, step.init(trees), x, key)
    chex.assert_trees_all_equal(new["discriminator"], trees["discriminator"])
    assert all(bool(jnp.any(a != b)) for a, b in
               zip(jax.tree.leaves(new["generator"]), jax.tree.leaves(trees["generator"])))


def test_multi_step_gradients_sequential_vs_simultaneous():
    # f = (a - b)^2 for tree "a", g = (a + b - 1)^2 for tree "b", plain SGD with lr 0.1
    def loss_a(t, s, batch, key, train):
        return jnp.sum((t["a"] - t["b"]) ** 2), (s, {"gap": jnp.sum(t["a"] - t["b"])})

    def loss_b(t, s, batch, key, train):
        return jnp.sum((t["a"] + t["b"] - 1.0) ** 2), (s, {})

    trees = {"a": jnp.array([1.0]), "b": jnp.array([0.0])}
    opts = {"a": fnn.optim.sgd(0.1), "b": fnn.optim.sgd(0.1)}
    seq = multi_step({"a": loss_a, "b": loss_b}, opts)
    sim = multi_step({"a": loss_a, "b": loss_b}, opts, order="simultaneous")
    out, _, metrics = seq(trees, seq.init(trees), None, jax.random.key(0))
    # a: 1 - 0.1 * 2 (1 - 0) = 0.8; then b sees a = 0.8: 0 - 0.1 * 2 (0.8 - 1) = 0.04
    np.testing.assert_allclose([float(out["a"][0]), float(out["b"][0])], [0.8, 0.04], rtol=1e-6)
    assert set(metrics) == {"a_loss", "a_gap", "b_loss"}
    out, _, _ = sim(trees, sim.init(trees), None, jax.random.key(0))
    np.testing.assert_allclose([float(out["a"][0]), float(out["b"][0])], [0.8, 0.0], atol=1e-7)
    with pytest.raises(ValueError, match="same non-empty set"):
        multi_step({"a": loss_a}, {"b": fnn.optim.sgd(0.1)})
    with pytest.raises(ValueError, match="order"):
        multi_step({"a": loss_a}, {"a": fnn.optim.sgd(0.1)}, order="random")


def test_fit_gan_is_deterministic_snapshots_fixed_noise_and_compiles_once():
    traces = []
    tracing = fnn.Lambda(lambda x: traces.append(1) or x, name="tracing")
    gan = _gan()
    gan = GAN(fnn.serial(gan.generator, tracing), gan.discriminator, gan.latent_dim)
    data = jax.random.uniform(jax.random.key(0), (32, 8))
    trees, _ = gan.init(jax.random.key(1), (8,))
    d_opt, g_opt = fnn.optim.adam(1e-3), fnn.optim.adam(1e-3)
    runs = [fit_gan(gan, trees, d_opt, g_opt, data, epochs=2,
                    batch_size=16, seed=3, snapshot_epochs=(0, 2), num_snapshot=9)
            for _ in range(2)]
    chex.assert_trees_all_equal(runs[0].trees, runs[1].trees)
    first = len(traces)
    fit_gan(gan, trees, d_opt, g_opt, data, epochs=2, batch_size=16, seed=4,
            snapshot_epochs=(0, 2), num_snapshot=9)
    assert first > 0 and len(traces) == first  # the third run traced nothing: compiled once
    assert sorted(runs[0].snapshots) == [0, 2] and runs[0].snapshots[2].shape == (9, 8)
    assert runs[0].history["generator_loss"].shape == (4,)
    assert np.all(np.isfinite(runs[0].history["discriminator_loss"]))


def test_conv_generator_shapes():
    gan = _gan(conv=True)
    assert gan.generator.output_shape((4,)) == (8, 8, 1)
    kinds = [name for name, _ in gan.generator.children]
    assert kinds.count("conv_transpose_0") == 1 and "conv_transpose_1" in kinds


def test_init_checks_shapes():
    with pytest.raises(ValueError, match="generator maps"):
        GAN(dense_generator(4, 8), dense_discriminator(), 4).init(jax.random.key(0), (9,))
    with pytest.raises(ValueError, match="one logit"):
        GAN(dense_generator(4, 8), fnn.Dense(3), 4).init(jax.random.key(0), (8,))


def _with_dropout(rate):
    """A GAN whose discriminator has Dropout(rate) between its layers; rate 0 -> no Dropout.
    Both have the same parameter tree (Dropout holds no params)."""
    layers = [fnn.Dense(16), fnn.leaky_relu] + ([fnn.Dropout(rate)] if rate else []) + [fnn.Dense(1)]
    return GAN(dense_generator(4, 8, (16,)), fnn.serial(*layers, name="discriminator"), 4)


def test_discriminator_dropout_is_active_in_training_and_off_in_evaluation():
    plain, dropped = _with_dropout(0), _with_dropout(0.5)
    trees, state = plain.init(jax.random.key(0), (8,))
    x = jax.random.uniform(jax.random.key(1), (32, 8))
    key = jax.random.key(2)
    for name in ("discriminator", "generator"):
        loss = lambda gan, train: gan.objectives()[name](trees, state, x, key, train)[0]
        assert float(loss(dropped, False)) == float(loss(plain, False))   # eval: no dropout
        assert float(loss(dropped, True)) != float(loss(plain, True))     # train: masks drawn
        assert float(loss(plain, True)) == float(loss(plain, False))


def test_a_batchnorm_discriminator_trains_with_its_state_threaded():
    disc = fnn.serial(fnn.Dense(16), fnn.BatchNorm(), fnn.leaky_relu, fnn.Dense(1),
                      name="discriminator")
    gan = GAN(dense_generator(4, 8, (16,)), disc, 4)
    trees, state = gan.init(jax.random.key(0), (8,))
    assert set(state) == {"discriminator"}
    step = gan_step(gan, fnn.optim.adam(1e-2), fnn.optim.adam(1e-2))
    data = jax.random.uniform(jax.random.key(1), (8, 16, 8))

    @jax.jit
    def train(trees, opt_states, state):           # a short jitted loop: one step per batch
        def body(carry, batch_and_key):
            trees, opt_states, state = carry
            trees, opt_states, metrics, state = step(trees, opt_states, *batch_and_key,
                                                     state=state)
            return (trees, opt_states, state), metrics["discriminator_loss"]
        keys = jax.random.split(jax.random.key(2), data.shape[0])
        return jax.lax.scan(body, (trees, opt_states, state), (data, keys))

    (new_trees, _, new_state), losses = train(trees, step.init(trees), state)
    assert losses.shape == (8,) and bool(jnp.all(jnp.isfinite(losses)))
    bn = new_state["discriminator"]["batchnorm_0"]
    # running mean moved from 0 toward the batch means of D's first layer, on real and fake input
    assert float(jnp.max(jnp.abs(bn["mean"]))) > 1e-3
    assert not np.allclose(new_trees["discriminator"]["batchnorm_0"]["scale"], 1.0)
    # evaluation uses the running statistics: the eval loss depends on the state
    d_obj = gan.objectives()["discriminator"]
    x = data[0]
    assert float(d_obj(new_trees, new_state, x, jax.random.key(3), False)[0]) != float(
        d_obj(new_trees, state, x, jax.random.key(3), False)[0])


def _points_gan():
    gan = GAN(dense_generator(4, 2, hidden=(16,), output_activation=None),
              dense_discriminator(hidden=(16,)), latent_dim=4)
    trees, _ = gan.init(jax.random.key(8), (2,))
    data = np.random.RandomState(8).randn(64, 2).astype(np.float32)
    return gan, trees, data


def test_fit_trains_the_gan_step_as_fit_gan_does_with_a_hook_reading_the_state():
    gan, trees, data = _points_gan()
    opt = fnn.optim.adam(2e-3, b1=0.5)
    step = gan_step(gan, opt, opt)
    z = gan.noise(jax.random.key(5), 3)
    samples = {}

    def save_samples(epoch, metrics, state):   # a hook that reads the train state
        if (epoch + 1) % 2 == 0:
            samples[epoch + 1] = np.asarray(gan.generate(state.params["generator"], z))

    res = fnn.fit(step, trees, None, data, epochs=4, batch_size=16, seed=9, progress=False,
                  callbacks=[save_samples])
    run = fit_gan(gan, trees, opt, opt, data, epochs=4, batch_size=16, seed=9)
    chex.assert_trees_all_equal(res.params, run.trees)   # the same program, bit for bit
    chex.assert_trees_all_equal(res.opt_state, run.opt_states)
    assert sorted(samples) == [2, 4] and samples[4].shape == (3, 2)
    np.testing.assert_array_equal(samples[4], gan.generate(run.trees["generator"], z))
    assert res.history["generator_loss"].shape == (4,) and run.history["generator_loss"].shape == (16,)
    np.testing.assert_allclose(res.history["discriminator_loss"],
                               run.history["discriminator_loss"].reshape(4, 4).mean(1), rtol=1e-5)


def test_the_gan_through_fit_resumes_bit_identically(tmp_path):
    gan, trees, data = _points_gan()
    opt = fnn.optim.adam(2e-3, b1=0.5)      # the step of the test above: its program, reused
    step = gan_step(gan, opt, opt)
    args = dict(batch_size=16, seed=2, progress=False)
    whole = fnn.fit(step, trees, None, data, epochs=4, **args)
    fnn.fit(step, trees, None, data, epochs=2, checkpoint_dir=tmp_path, **args)
    resumed = fnn.fit(step, trees, None, data, epochs=4, checkpoint_dir=tmp_path, resume=True,
                      **args)
    chex.assert_trees_all_equal((whole.params, whole.opt_state),
                                (resumed.params, resumed.opt_state))
    np.testing.assert_array_equal(whole.history["generator_loss"],
                                  resumed.history["generator_loss"])


def test_the_gan_through_fit_has_the_nan_guard_and_refuses_what_it_cannot_do():
    gan, trees, data = _points_gan()
    step = gan_step(gan, fnn.optim.adam(1e-3), fnn.optim.adam(1e-3))
    bad = data.copy()
    bad[5] = np.nan
    with pytest.raises(fnn.NonFiniteError) as err:
        fnn.fit(step, trees, None, bad, epochs=2, batch_size=16, progress=False,
                on_nonfinite="raise")
    assert err.value.report.step < 4   # the first epoch's batch holding example 5
    chex.assert_trees_all_equal(err.value.params["generator"], trees["generator"]) if \
        err.value.report.step == 0 else None
    skipped = fnn.fit(step, trees, None, bad, epochs=2, batch_size=16, progress=False,
                      on_nonfinite="skip")
    assert skipped.history["skipped"].tolist() == [1, 1]
    assert all(np.all(np.isfinite(a)) for a in jax.tree.leaves(skipped.params))
    with pytest.raises(ValueError, match="optimizer=None"):
        fnn.fit(step, trees, fnn.optim.sgd(0.1), data, epochs=1)
    with pytest.raises(ValueError, match="validation_data"):
        fnn.fit(step, trees, None, data, epochs=1, validation_data=data[:8], progress=False)
    with pytest.raises(ValueError, match="early_stopping"):
        fnn.fit(step, trees, None, data, epochs=1,
                early_stopping=fnn.EarlyStopping("generator_loss"))
    with pytest.raises(ValueError, match="loss scaling"):
        fnn.fit(step, trees, None, data, epochs=1, precision="compute=float16")
    half = fnn.fit(step, trees, None, data, epochs=1, batch_size=16, progress=False,
                   precision="compute=bfloat16")   # losses computed in bfloat16
    assert half.params["generator"]["dense_0"]["w"].dtype == jnp.float32
    assert half.history["generator_loss"].dtype == np.float32
    assert np.all(np.isfinite(half.history["generator_loss"]))


def test_the_moved_names_say_where_they_went():
    gan, _, _ = _points_gan()
    with pytest.raises(TypeError, match="fnn.train.gan_step"):
        gan.step(fnn.optim.sgd(0.1), fnn.optim.sgd(0.1))
    with pytest.raises(AttributeError, match="fnn.train.fit_gan"):
        fnn.models.fit_gan
    assert not hasattr(fnn.models, "GANRun") and hasattr(fnn.train, "GANRun")


def test_the_network_is_the_discriminator_of_the_generator():
    gan = _gan()
    trees, state = gan.init(jax.random.key(0), (8,))
    z = jax.random.normal(jax.random.key(1), (5, 4))
    logits, _ = gan.network.apply(trees, state, z)
    part = lambda name: state.get(name, {})     # stateless children keep no state
    fake, _ = gan.generator.apply(trees["generator"], part("generator"), z)
    expect, _ = gan.discriminator.apply(trees["discriminator"], part("discriminator"), fake)
    assert logits.shape == (5, 1)
    np.testing.assert_allclose(logits, expect, rtol=1e-6)
