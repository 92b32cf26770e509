"""fit's NaN/Inf guard: 'raise' names the global step and the first offending leaf and keeps
the last finite params (whatever the chunking); 'skip' leaves a bad step's update out and
counts it; both run on device inside the compiled scan."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import checkpoint


# The minibatch runs (batch 8) of all tests train with one optimizer, so each guard's program
# (off, 'raise', 'skip') is compiled once for the file; momentum gives an opt state that must
# stay finite too.
SGD = fnn.optim.sgd(0.1, momentum=0.9)


def problem(n=40, poison=None):
    rng = np.random.RandomState(0)
    y = rng.randint(0, 2, n).astype(np.int32)
    x = (rng.randn(n, 2) + 3.0 * (2 * y[:, None] - 1)).astype(np.float32)
    if poison is not None:
        x[poison, 1] = np.inf
    net = fnn.serial(fnn.Dense(8), fnn.tanh, fnn.Dense(2))
    params, _ = net.init(jax.random.key(0), (2,))
    return net, params, (x, y)


def batches(n, batch_size, seed, epoch):
    """fit's documented minibatch order for ``epoch``."""
    shuffle_key = jax.random.fold_in(jax.random.key(seed), 0)
    perm = np.asarray(jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), n))
    return perm[: n // batch_size * batch_size].reshape(-1, batch_size)


def finite(tree):
    return all(bool(np.isfinite(a).all()) for a in jax.tree.leaves(tree))


@pytest.mark.parametrize("epochs_per_call", [1, 3, None])
def test_raise_names_the_step_and_leaf_and_keeps_the_params_from_before_it(tmp_path,
                                                                         epochs_per_call):
    net, params, (x, y) = problem(poison=13)
    objective, opt = fnn.supervised(net), SGD
    order = batches(40, 8, seed=0, epoch=0)
    bad = int(np.argmax([13 in b for b in order]))        # the minibatch holding the inf
    with pytest.raises(FloatingPointError,
                       match=rf"non-finite gradient \['dense_0'\]\['w'\] at step {bad} \(epoch 0"
                       ) as info:
        fnn.fit(objective, params, opt, (x, y), epochs=6, batch_size=8, progress=False,
                on_nonfinite="raise", epochs_per_call=epochs_per_call, checkpoint_dir=tmp_path)
    err = info.value
    assert isinstance(err, fnn.train.NonFiniteError)
    assert (err.step, err.epoch, err.kind, err.path) == (bad, 0, "gradient", "['dense_0']['w']")
    assert err.report == fnn.train.NonFiniteReport("gradient", "['dense_0']['w']", bad, 0, bad, 5,
                                                   err.loss)   # structured, not a string
    assert finite(err.params) and finite(err.opt_state)
    # the same steps by hand: the params before the bad step
    step = jax.jit(fnn.train_step(objective, opt))
    ts = fnn.TrainState(params, {}, opt.init(params), jnp.zeros((), jnp.int32))
    for index in order[:bad]:
        ts, _ = step(ts, (x[index], y[index]), None)
    for a, b in zip(jax.tree.leaves(err.params), jax.tree.leaves(ts.params)):   # another program:
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)            # equal up to rounding
    # and saved next to the periodic checkpoints, restorable into the model's structure
    assert err.checkpoint == tmp_path / f"nonfinite-{bad:08d}.npz"
    saved = checkpoint.load(err.checkpoint)
    assert saved.metadata["fit"]["nonfinite"]["path"] == "['dense_0']['w']"
    for a, b in zip(jax.tree.leaves(saved.tree["params"]), jax.tree.leaves(err.params)):
        assert np.array_equal(a, b)


def test_raise_in_a_later_epoch_keeps_history_and_matches_a_shorter_run_bit_for_bit():
    net, params, data = problem()
    # finite for 7 steps, then an infinite learning rate: step 7's update overflows
    lr = lambda count: jnp.where(count < 7, 0.1, jnp.inf).astype(jnp.float32)
    opt = fnn.optim.sgd(lr)
    objective = fnn.supervised(net)
    with pytest.raises(fnn.train.NonFiniteError, match=r"at step 7 \(epoch 7, its full-batch step"
                       ) as info:
        fnn.fit(objective, params, opt, data, epochs=20, progress=False, on_nonfinite="raise")
    err = info.value
    assert err.kind == "parameter" and err.path.startswith("['dense_")
    assert len(err.history["loss"]) == 7 and np.isfinite(err.history["loss"]).all()
    before = fnn.fit(objective, params, opt, data, epochs=7, progress=False, on_nonfinite="raise")
    for a, b in zip(jax.tree.leaves(err.params), jax.tree.leaves(before.params)):
        assert np.array_equal(a, b)
    assert np.array_equal(err.history["loss"], before.history["loss"])


def test_a_non_finite_loss_is_named_as_such():
    net, params, (x, _) = problem()
    objective = fnn.supervised(net, fnn.losses.mse, accuracy=False)
    target = np.full((40, 2), 3e38, np.float32)              # (pred - 3e38)^2 overflows
    with pytest.raises(fnn.train.NonFiniteError, match=r"non-finite loss at step 0") as info:
        fnn.fit(objective, params, fnn.optim.sgd(0.1), (x, target), epochs=3, progress=False,
                on_nonfinite="raise")
    assert info.value.path is None and info.value.loss == np.inf
    for a, b in zip(jax.tree.leaves(info.value.params), jax.tree.leaves(params)):
        assert np.array_equal(a, b)                            # nothing was applied


def test_skip_leaves_bad_steps_out_and_counts_them():
    net, params, (x, y) = problem(poison=13)
    objective, opt = fnn.supervised(net), SGD
    result = fnn.fit(objective, params, opt, (x, y), epochs=4, batch_size=8, progress=False,
                     on_nonfinite="skip")
    assert result.history["skipped"].tolist() == [1, 1, 1, 1]  # one poisoned batch per epoch
    assert np.isfinite(result.history["loss"]).all()           # mean over the applied steps
    assert finite(result.params) and finite(result.opt_state)
    # by hand: the same loop without the batches holding example 13
    step = jax.jit(fnn.train_step(objective, opt))
    ts = fnn.TrainState(params, {}, opt.init(params), jnp.zeros((), jnp.int32))
    for epoch in range(4):
        for index in batches(40, 8, seed=0, epoch=epoch):
            if 13 not in index:
                ts, _ = step(ts, (x[index], y[index]), None)
    for a, b in zip(jax.tree.leaves(result.params), jax.tree.leaves(ts.params)):   # another program:
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)            # equal up to rounding


def test_skip_with_full_batch_reports_nan_metrics_for_a_skipped_epoch():
    net, params, (x, y) = problem(poison=3)
    result = fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), (x, y), epochs=3,
                     progress=False, on_nonfinite="skip")
    assert result.history["skipped"].tolist() == [1, 1, 1]
    assert np.isnan(result.history["loss"]).all()
    for a, b in zip(jax.tree.leaves(result.params), jax.tree.leaves(params)):
        assert np.array_equal(a, b)


def test_without_the_guard_nan_flows_through_and_check_finite_inputs_catches_it_early():
    net, params, (x, y) = problem(poison=13)
    with pytest.warns(RuntimeWarning, match=r"fit: the loss became non-finite \(NaN or inf\) in "
                                            r"epoch 1.*Pass on_nonfinite='raise'"):
        result = fnn.fit(fnn.supervised(net), params, SGD, (x, y), epochs=2, batch_size=8,
                         progress=False)
    assert not finite(result.params)
    with pytest.raises(ValueError, match=r"fit: data\[0\] holds 1 non-finite value\(s\) \(NaN or "
                                         r"inf\), the first at index \(13, 1\)"):
        fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), (x, y), epochs=2,
                batch_size=8, progress=False, check_finite_inputs=True)


def test_the_guard_does_not_change_finite_results():
    net, params, data = problem()
    runs = [fnn.fit(fnn.supervised(net), params, SGD, data, epochs=5,
                    batch_size=8, progress=False, on_nonfinite=mode)
            for mode in (None, "raise", "skip")]
    for run in runs[1:]:
        for a, b in zip(jax.tree.leaves(runs[0].params), jax.tree.leaves(run.params)):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)
    assert runs[2].history["skipped"].tolist() == [0] * 5


def test_on_nonfinite_is_validated_with_a_suggestion():
    net, params, data = problem()
    with pytest.raises(ValueError, match=r"on_nonfinite must be one of None, 'raise', 'skip', got "
                                         r"'rasie'; did you mean 'raise'\?"):
        fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), data, on_nonfinite="rasie")
