"""Training loop: equivalence with a hand loop, determinism, no retracing, metrics, stopping."""
import io
import itertools
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn
from fnn.train.progress import Progress, progress_mode
from lowerings import Lowerings

KEY = jax.random.key(0)


def blobs(n=64, seed=0):
    """Two Gaussian blobs in 2-D, labels 0/1 (linearly separable)."""
    rng = np.random.RandomState(seed)
    y = rng.randint(0, 2, n)
    x = rng.randn(n, 2).astype(np.float32) + 3.0 * (2 * y[:, None] - 1)
    return x.astype(np.float32), y.astype(np.int32)


def setup(hidden=8):
    net = fnn.serial(fnn.Dense(hidden), fnn.tanh, fnn.Dense(2))
    params, _ = net.init(KEY, (2,))
    return net, params


def test_full_batch_fit_equals_a_hand_written_loop():
    net, params = setup()
    x, y = blobs()
    objective = fnn.supervised(net, l2=1e-3)
    result = fnn.fit(objective, params, fnn.optim.sgd(0.1), (x, y), epochs=25, progress=False)

    def loss(p):
        logits = net(p, x)
        l2 = sum(jnp.sum(layer["w"] ** 2) for layer in p.values())
        return fnn.losses.softmax_cross_entropy(logits, y) + 0.5e-3 * l2

    @jax.jit                           # one program for the step, not op-by-op dispatch
    def step(p):
        return (fnn.losses.softmax_cross_entropy(net(p, x), y),
                jax.tree.map(lambda w, g: w - 0.1 * g, p, jax.grad(loss)(p)))

    p, losses = params, []
    for _ in range(25):
        before, p = step(p)
        losses.append(float(before))
    np.testing.assert_allclose(result.history["loss"], losses, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(result.params), jax.tree.leaves(p)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_minibatch_fit_follows_the_documented_shuffle_and_drops_the_remainder():
    net, params = setup()
    x, y = blobs(n=50)
    objective = fnn.supervised(net)
    opt = fnn.optim.sgd(0.05)
    result = fnn.fit(objective, params, opt, (x, y), epochs=3, batch_size=16, seed=7,
                     progress=False)
    step = jax.jit(fnn.train_step(objective, opt))
    ts = fnn.TrainState(params, {}, opt.init(params), jnp.zeros((), jnp.int32))
    shuffle_key, step_key = jax.random.fold_in(jax.random.key(7), 0), jax.random.fold_in(jax.random.key(7), 1)
    epoch_losses = []
    for epoch in range(3):
        perm = np.asarray(jax.random.permutation(jax.random.fold_in(shuffle_key, epoch), 50))
        losses = []
        for b in range(3):                                   # 50 // 16 = 3 steps; 2 dropped
            index = perm[b * 16:(b + 1) * 16]
            ts, metrics = step(ts, (x[index], y[index]), jax.random.fold_in(step_key, ts.step))
            losses.append(float(metrics["loss"]))
        epoch_losses.append(np.mean(losses))
    assert int(ts.step) == 9
    np.testing.assert_allclose(result.history["loss"], epoch_losses, rtol=1e-5)
    for a, b in zip(jax.tree.leaves(result.params), jax.tree.leaves(ts.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_fit_is_deterministic_given_the_seed_and_chunking_does_not_matter():
    net, params = setup()
    data = blobs(n=40)
    objective = fnn.supervised(net)
    run = lambda **kw: fnn.fit(objective, params, fnn.optim.sgd(0.1, momentum=0.9), data,
                               epochs=6, batch_size=8, progress=False, **kw)
    a, b, c, d = run(seed=1), run(seed=1), run(seed=2), run(seed=1, epochs_per_call=4)
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(b.params)):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a.params["dense_0"]["w"], c.params["dense_0"]["w"])
    for x, y in zip(jax.tree.leaves(a.params), jax.tree.leaves(d.params)):
        np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7)
    np.testing.assert_allclose(a.history["loss"], d.history["loss"], rtol=1e-6)


def test_fit_does_not_retrace_across_chunks_or_calls():
    net, params = setup()
    traces = []

    def objective(p, s, batch, key, train):
        traces.append(train)
        x, y = batch
        return fnn.losses.softmax_cross_entropy(net(p, x), y), (s, {})

    opt = fnn.optim.sgd(0.1)
    data = blobs(n=32)
    fnn.fit(objective, params, opt, data, epochs=8, batch_size=8, epochs_per_call=2,
            progress=False)
    after_first = len(traces)
    assert after_first >= 1
    from fnn.train.programs import PROGRAMS
    hits = PROGRAMS.hits
    fnn.fit(objective, params, opt, blobs(n=32, seed=1), epochs=8, batch_size=8,
            epochs_per_call=2, progress=False)
    # the same objects: no trace at all (not even the compile cache's fingerprint)
    assert len(traces) == after_first and PROGRAMS.hits == hits + 1


def test_train_step_jits_with_donation_and_is_traced_once():
    import chex
    net, params = setup()
    objective = fnn.supervised(net)
    opt = optax.sgd(1e-2, momentum=0.9)                     # any optax optimizer plugs in
    step = jax.jit(chex.assert_max_traces(fnn.train_step(objective, opt), n=1), donate_argnums=0)
    ts = fnn.TrainState(params, {}, opt.init(params), jnp.zeros((), jnp.int32))
    x, y = blobs(n=64)
    for i in range(4):
        ts, metrics = step(ts, (x[i * 16:(i + 1) * 16], y[i * 16:(i + 1) * 16]), None)
    assert int(ts.step) == 4 and set(metrics) == {"loss", "accuracy"}


def test_fit_learns_and_reports_validation_metrics():
    net, params = setup()
    train, val = blobs(n=128, seed=0), blobs(n=40, seed=1)
    result = fnn.fit(fnn.supervised(net), params, fnn.optim.adam(0.05), train, epochs=10,
                     batch_size=32, validation_data=val, progress=False)
    h = result.history
    assert set(h) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 10 for v in h.values())
    assert h["loss"][-1] < 0.2 * h["loss"][0]
    assert h["val_accuracy"][-1] == 1.0
    final = fnn.evaluate(fnn.supervised(net), result.params, {}, val)
    assert final["accuracy"] == pytest.approx(h["val_accuracy"][-1])
    assert final["loss"] == pytest.approx(h["val_loss"][-1], rel=1e-5)


def test_evaluate_in_batches_weights_the_remainder():
    net, params = setup()
    x, y = blobs(n=37)
    objective = fnn.supervised(net)
    whole = fnn.evaluate(objective, params, {}, (x, y))
    chunked = fnn.evaluate(objective, params, {}, (x, y), batch_size=10)
    expected = float(fnn.losses.softmax_cross_entropy(net(params, x), y))
    assert whole["loss"] == pytest.approx(expected, rel=1e-6)
    assert chunked["loss"] == pytest.approx(expected, rel=1e-5)
    assert chunked["accuracy"] == pytest.approx(whole["accuracy"], rel=1e-6)


def test_early_stopping_stops_after_patience_and_restores_the_best_epoch():
    net, params = setup()
    data = blobs(n=32)
    objective = fnn.supervised(net)
    # The training loss keeps falling, so in 'max' mode the first epoch stays the best.
    rule = fnn.EarlyStopping(monitor="loss", patience=3, mode="max")
    stopped = fnn.fit(objective, params, fnn.optim.sgd(0.1), data, epochs=50,
                      early_stopping=rule, progress=False)
    one_epoch = fnn.fit(objective, params, fnn.optim.sgd(0.1), data, epochs=1, progress=False)
    assert len(stopped.history["loss"]) == 4
    for a, b in zip(jax.tree.leaves(stopped.params), jax.tree.leaves(one_epoch.params)):
        np.testing.assert_allclose(a, b, rtol=1e-6)


def test_callbacks_see_every_epoch_and_can_stop():
    net, params = setup()
    seen = []
    stop_at_three = lambda epoch, metrics: seen.append((epoch, metrics["loss"])) or epoch == 2
    result = fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), blobs(n=16), epochs=10,
                     callbacks=[stop_at_three], progress=False)
    assert [e for e, _ in seen] == [0, 1, 2]
    np.testing.assert_allclose([l for _, l in seen], result.history["loss"])


def test_progress_in_a_log_is_a_line_every_tenth_of_the_run_and_a_bar_on_a_terminal(capsys):
    net, params = setup()
    run = lambda progress: fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), blobs(n=16),
                                   epochs=20, progress=progress)
    run(True)                                   # stderr is not a terminal here: plain lines
    err = capsys.readouterr().err
    lines = err.splitlines()
    assert "\r" not in err and len(lines) == 10
    assert lines[0].startswith("fit: epoch 2/20  loss ") and "accuracy" in lines[0]
    assert lines[-1].startswith("fit: epoch 20/20  loss ")
    run(5)                                      # an int: a line every 5 epochs
    assert [l.split()[2] for l in capsys.readouterr().err.splitlines()] == [
        "5/20", "10/20", "15/20", "20/20"]
    run(False)
    assert capsys.readouterr().err == ""

    class Terminal(io.StringIO):
        def isatty(self):
            return True

    terminal = Terminal()
    mode, every = progress_mode(True, terminal)
    bar = Progress(mode, every, total=4, stream=terminal)
    bar.update(2, {"loss": 0.5})
    bar.close()
    assert mode == "bar" and "2/4" in terminal.getvalue() and "loss=0.5" in terminal.getvalue()


def test_fit_does_not_invalidate_the_callers_params():
    net, params = setup()
    before = jax.tree.map(np.asarray, params)
    fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), blobs(n=16), epochs=2, progress=False)
    for a, b in zip(jax.tree.leaves(params), jax.tree.leaves(before)):
        np.testing.assert_array_equal(a, b)                 # still readable: not donated


@pytest.mark.parametrize("kwargs, message", [
    ({"batch_size": 0}, r"fit: batch_size must be a positive int or None \(full batch\), got 0"),
    ({"batch_size": 17}, r"fit: batch_size \(17\) is larger than the dataset \(16 examples\)"),
    ({"epochs": 0}, r"fit: epochs must be a positive int, got 0"),
    ({"early_stopping": fnn.EarlyStopping()}, r"early stopping monitors 'val_loss' but no validation_data"),
    ({"early_stopping": fnn.EarlyStopping(monitor="loss", mode="up")}, r"EarlyStopping: mode must be one of 'auto', 'min', 'max', got 'up'"),
])
def test_fit_rejects_bad_arguments(kwargs, message):
    net, params = setup()
    with pytest.raises(ValueError, match=message):
        fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), blobs(n=16), progress=False,
                **kwargs)


def test_fit_rejects_bad_data():
    net, params = setup()
    x, y = blobs(n=16)
    with pytest.raises(ValueError, match=r"same leading \(example\) axis, got shapes \[\(16, 2\), \(15,\)\]"):
        fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), (x, y[:15]), progress=False)
    with pytest.raises(ValueError, match=r"fit: data has 0 examples"):
        fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), (x[:0], y[:0]), progress=False)
    with pytest.raises(ValueError, match=r"supervised: l2 must be a finite number >= 0, got -1"):
        fnn.supervised(net, l2=-1)


def test_unrolled_epochs_give_the_same_training_up_to_rounding():
    net, params = setup()
    data = blobs(n=16)
    objective = fnn.supervised(net)
    plain = fnn.fit(objective, params, fnn.optim.adam(0.05), data, epochs=13, progress=False)
    unrolled = fnn.fit(objective, params, fnn.optim.adam(0.05), data, epochs=13, progress=False,
                       unroll=8)                             # 13 = one group of 8 and 5 more
    assert len(unrolled.history["loss"]) == 13
    np.testing.assert_allclose(unrolled.history["loss"], plain.history["loss"], rtol=1e-5)
    for a, b in zip(jax.tree.leaves(unrolled.params), jax.tree.leaves(plain.params)):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match=r"unroll=8 cannot be combined with checkpoint_dir"):
        fnn.fit(objective, params, fnn.optim.sgd(0.1), data, epochs=2, progress=False, unroll=8,
                checkpoint_dir="ckpt")
    with pytest.raises(ValueError, match=r"fit: unroll must be a positive int, got 0"):
        fnn.fit(objective, params, fnn.optim.sgd(0.1), data, epochs=2, progress=False, unroll=0)


def test_masked_sequences_train_through_fit_and_evaluate():
    """((x, mask), y) batches: what the padded steps hold changes nothing, bit for bit."""
    rng = np.random.RandomState(0)
    lengths = rng.randint(2, 7, 40)
    mask = np.asarray(fnn.sequence_mask(jnp.asarray(lengths), 6))
    x = rng.randn(40, 6, 3).astype(np.float32)
    y = ((x * mask[..., None]).sum(axis=(1, 2)) > 0).astype(np.int32)
    junk = np.where(mask[..., None], x, rng.randn(40, 6, 3).astype(np.float32) * 100)
    net = fnn.serial(fnn.Recurrent(fnn.LSTMCell(8), return_sequences=False), fnn.Dense(2))
    params, _ = net.init(jax.random.key(0), ((6, 3), (6,)))
    run = lambda x: fnn.fit(fnn.supervised(net), params, fnn.optim.adam(1e-2), ((x, mask), y),
                            epochs=4, batch_size=8, validation_data=((x, mask), y),
                            progress=False)
    clean, padded = run(x), run(junk)
    for a, b in zip(jax.tree.leaves(clean.params), jax.tree.leaves(padded.params)):
        assert np.array_equal(a, b)
    assert clean.history["loss"][-1] < clean.history["loss"][0]
    metrics = fnn.evaluate(fnn.supervised(net), clean.params, None, ((junk, mask), y))
    np.testing.assert_allclose(metrics["loss"], clean.history["val_loss"][-1], rtol=1e-5)


def test_a_stateful_network_without_its_state_and_a_network_as_objective_are_named():
    net = fnn.serial(fnn.Dense(4), fnn.BatchNorm(), fnn.Dense(2))
    params, state = net.init(KEY, (2,))
    data = blobs(n=16)
    with pytest.raises(ValueError, match=r"(?s)fit: the params and state do not fit serial.*"
                                         r"state\['batchnorm_0'\]: missing.*"
                                         r"fit\(..., model_state=state\)"):
        fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), data, progress=False)
    with pytest.raises(ValueError, match=r"evaluate: the params and state do not fit"):
        fnn.evaluate(fnn.supervised(net), params, None, data)
    with pytest.raises(TypeError, match=r"fit: got the network 'serial' where an objective "
                                        r"belongs; wrap it: fit\(fnn.supervised\(net, loss\)"):
        fnn.fit(net, params, fnn.optim.sgd(0.1), data, progress=False)


def test_streamed_fit_compiles_once_per_chunk_shape():
    import chex
    net, params = setup()
    objective = fnn.supervised(net)
    x, y = blobs(n=64)
    from fnn.train.programs import PROGRAMS
    PROGRAMS.clear()  # the same structure may have been compiled by an earlier test
    counted = lambda p, s, b, k, t: objective(p, s, b, k, t)
    stream = lambda start: ((x[i:i + 8], y[i:i + 8])
                            for i in itertools.cycle(range(start, 64 - 8, 8)))
    opt = fnn.optim.sgd(0.1)
    with Lowerings() as lowered:
        for start in range(3):         # 5 steps per epoch in chunks of 2 + 2 + 1: two programs
            fnn.fit(counted, params, opt, stream(start), epochs=2, steps_per_epoch=5,
                    stream_chunk=2, progress=False)
    assert sorted(lowered.names) == ["jit(fnn_last_steps)", "jit(fnn_steps)"]


def test_a_callback_reads_the_train_state_after_its_epoch():
    net, params = setup()
    data, opt = blobs(n=64), fnn.optim.adam(1e-2)
    seen = {}

    def every_two_epochs(epoch, metrics, state):    # e.g. save samples every few epochs
        if (epoch + 1) % 2 == 0:
            seen[epoch + 1] = (int(state.step), jax.device_get(state.params))

    fnn.fit(fnn.supervised(net), params, opt, data, epochs=4, batch_size=16, seed=1,
            callbacks=[every_two_epochs], progress=False)
    assert sorted(seen) == [2, 4] and seen[2][0] == 2 * 4 and seen[4][0] == 4 * 4
    two = fnn.fit(fnn.supervised(net), params, opt, data, epochs=2, batch_size=16, seed=1,
                  progress=False)
    jax.tree.map(np.testing.assert_array_equal, seen[2][1], jax.device_get(two.params))
