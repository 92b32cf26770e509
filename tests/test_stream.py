"""Streaming input: fit and evaluate on an iterable of host batches, bit-identical to the
in-memory path on the same batch order, with bounded read-ahead and clear errors."""
import itertools
import threading

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.data.batching import epochs as epoch_batches


def blobs(n, seed=0, features=4, classes=3):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, classes, n).astype(np.int32)
    x = (rng.randn(n, features) + 2.0 * np.eye(classes, features)[y]).astype(np.float32)
    return x, y


def in_fit_order(data, batch_size, num_epochs, seed):
    """The batches fit(data, batch_size=..., seed=seed) trains on, epoch after epoch, as a
    generator (``fnn.data.epochs`` documents that order)."""
    stacked = jax.tree.map(np.asarray, epoch_batches(data, batch_size, num_epochs, seed=seed))
    steps = jax.tree.leaves(stacked)[0].shape[1]
    for e in range(num_epochs):
        for t in range(steps):
            yield jax.tree.map(lambda a: a[e, t], stacked)


def assert_bit_identical(a, b):
    for name in ("params", "model_state", "opt_state"):
        for u, v in zip(jax.tree.leaves(getattr(a, name)), jax.tree.leaves(getattr(b, name))):
            assert np.array_equal(u, v), name
    assert sorted(a.history) == sorted(b.history)
    for k in a.history:
        if k.startswith("val_"):  # a stream's last chunk and the in-memory epoch loop are two
            # programs: XLA may round the validation pass's mean differently in the last bit
            np.testing.assert_array_max_ulp(a.history[k], b.history[k], maxulp=2)
        else:
            assert np.array_equal(a.history[k], b.history[k]), k


@pytest.mark.parametrize("chunk", [2, 16])
def test_a_stream_in_fit_order_trains_bit_identically_to_the_arrays(chunk):
    x, y = blobs(90)
    net = fnn.serial(fnn.Dense(12), fnn.relu, fnn.Dropout(0.2), fnn.Dense(3))
    params, _ = net.init(jax.random.key(0), (4,))
    objective, opt = fnn.supervised(net), fnn.optim.adam(1e-2)
    common = dict(epochs=3, seed=7, validation_data=(x[:30], y[:30]), progress=False)
    memory = fnn.fit(objective, params, opt, (x, y), batch_size=16, epochs_per_call=1, **common)
    stream = fnn.fit(objective, params, opt, in_fit_order((x, y), 16, 3, seed=7),
                     steps_per_epoch=90 // 16, stream_chunk=chunk, **common)
    assert_bit_identical(memory, stream)   # 5 steps per epoch: chunks of 2+2+1, or one of 5


def test_a_batchnorm_cnn_streams_bit_identically_with_the_nan_guard():
    rng = np.random.RandomState(1)
    x = rng.rand(48, 6, 6, 1).astype(np.float32)
    y = (x.mean(axis=(1, 2, 3)) > 0.5).astype(np.int32)
    net = fnn.serial(fnn.Conv2D(3, 3), fnn.BatchNorm(), fnn.relu, fnn.Flatten(), fnn.Dense(2))
    params, state = net.init(jax.random.key(1), (6, 6, 1))
    common = dict(model_state=state, epochs=2, seed=3, progress=False, on_nonfinite="skip")
    memory = fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), (x, y), batch_size=8,
                     **common)
    stream = fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1),
                     in_fit_order((x, y), 8, 2, seed=3), steps_per_epoch=6, stream_chunk=4,
                     **common)
    assert_bit_identical(memory, stream)


def test_the_next_chunk_is_pulled_while_one_runs_and_read_ahead_is_at_most_two_chunks():
    """A counting generator and a handshake: the first step of chunk 1 waits (on the device)
    until the generator has handed out the first batch of chunk 2, which only a prefetch
    running beside the device can do; and whenever batch i is pulled, every batch but the
    last 2K has finished."""
    x, y = blobs(64)
    net = fnn.serial(fnn.Dense(8), fnn.relu, fnn.Dense(3))
    params, _ = net.init(jax.random.key(2), (4,))
    k, executed, ahead, waited = 3, [], [], []
    chunk2_pulled = threading.Event()
    objective = fnn.supervised(net)

    def on_step():
        if len(executed) == k:                          # the first step of chunk 1
            waited.append(chunk2_pulled.wait(timeout=60))
        executed.append(1)

    def counting(p, s, batch, key, train):
        jax.debug.callback(on_step)
        return objective(p, s, batch, key, train)

    def generator():
        for i in itertools.count():
            ahead.append(i + 1 - len(executed))         # pulled (with this one) - finished
            if i == 2 * k:
                chunk2_pulled.set()
            yield x[(8 * i) % 64:][:8], y[(8 * i) % 64:][:8]

    fnn.fit(counting, params, fnn.optim.sgd(0.1), generator(), epochs=2, steps_per_epoch=10,
            stream_chunk=k, progress=False)
    assert waited == [True]                             # chunk 2 was pulled while 1 ran
    assert len(executed) == 20 and len(ahead) == 20     # nothing pulled past the last epoch
    assert max(ahead) <= 2 * k


def test_a_reiterable_restarts_each_epoch_and_its_length_is_the_epoch():
    x, y = blobs(40)

    class Loader:                                       # like a data loader: re-iterable, sized
        def __init__(self):
            self.passes = 0

        def __len__(self):
            return 5

        def __iter__(self):
            self.passes += 1
            return ((x[i * 8:(i + 1) * 8], y[i * 8:(i + 1) * 8]) for i in range(5))

    loader = Loader()
    net = fnn.serial(fnn.Dense(8), fnn.relu, fnn.Dense(3))
    params, _ = net.init(jax.random.key(3), (4,))
    res = fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), loader, epochs=3,
                  progress=False)
    assert loader.passes == 3 and res.history["loss"].shape == (3,)
    assert res.history["loss"][-1] < res.history["loss"][0]
    unshuffled = fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), (x, y), epochs=1,
                         batch_size=8, progress=False)
    assert unshuffled.history["loss"].shape == (1,)    # (in-memory fit shuffles; the loader not)


def test_evaluate_and_validation_accept_streams():
    x, y = blobs(50)
    net = fnn.serial(fnn.Dense(8), fnn.relu, fnn.Dense(3))
    params, _ = net.init(jax.random.key(4), (4,))
    objective = fnn.supervised(net)
    sizes = [16, 16, 16, 2]                               # batches may differ in evaluation
    batches = lambda: (lambda s=np.cumsum([0] + sizes): (
        (x[a:b], y[a:b]) for a, b in zip(s[:-1], s[1:])))()
    streamed = fnn.evaluate(objective, params, {}, batches())
    whole = fnn.evaluate(objective, params, {}, (x, y))
    assert streamed.keys() == whole.keys()
    for k in whole:
        np.testing.assert_allclose(streamed[k], whole[k], rtol=1e-6)

    class Again:
        def __iter__(self):
            return batches()

    res = fnn.fit(objective, params, fnn.optim.sgd(0.1), (x, y), epochs=2, batch_size=10,
                  validation_data=Again(), progress=False)
    ref = fnn.fit(objective, params, fnn.optim.sgd(0.1), (x, y), epochs=2, batch_size=10,
                  validation_data=(x, y), progress=False)
    np.testing.assert_allclose(res.history["val_loss"], ref.history["val_loss"], rtol=1e-6)


@pytest.mark.parametrize("make, message", [
    (lambda x, y: iter([(x[:8], y[:8])] * 7),
     r"fit: the stream ended in epoch 1, which needs 5 batches \(steps_per_epoch=5\); batch 2 "
     r"of the epoch is missing \(the iterable stopped after 7 batches in all\)"),
    (lambda x, y: iter([(x[:8], y[:8])] * 3 + [(x[:7], y[:7])]),
     r"fit: batch 3 of the stream does not match batch 0: expected \(.*float32\[8, 4\].*\), got "
     r"\(.*float32\[7, 4\].*\)"),
    (lambda x, y: iter([(x[:8], y[:8]), (x[:8], y[:8].astype(np.int64))]),
     r"fit: batch 1 of the stream does not match batch 0"),
    (lambda x, y: iter([]), r"fit: the data stream is empty"),
])
def test_a_short_or_mismatched_stream_names_the_batch(make, message):
    x, y = blobs(16)
    net = fnn.serial(fnn.Dense(3))
    params, _ = net.init(jax.random.key(5), (4,))
    with pytest.raises(ValueError, match=message):
        fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), make(x, y), epochs=3,
                steps_per_epoch=5, progress=False)


def test_a_generator_needs_steps_per_epoch_and_arrays_refuse_it():
    x, y = blobs(16)
    net = fnn.serial(fnn.Dense(3))
    params, _ = net.init(jax.random.key(6), (4,))
    gen = ((x[:8], y[:8]) for _ in range(4))
    with pytest.raises(ValueError, match=r"fit: a stream of type generator has no length; pass "
                                         r"steps_per_epoch="):
        fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), gen, progress=False)
    with pytest.raises(ValueError, match=r"steps_per_epoch is for a stream of batches"):
        fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), (x, y), steps_per_epoch=2,
                progress=False)


def test_mnist1d_streams_through_fit():
    """The README's example: MNIST-1D generated on the fly, never the same example twice."""
    stream = fnn.data.mnist1d_stream(50, seed=0)
    x, y = next(fnn.data.mnist1d_stream(50, seed=0))
    assert x.shape == (50, 40) and x.dtype == np.float32 and y.dtype == np.int32
    assert abs(float(x.mean())) < 0.3 and 0.7 < float(x.std()) < 1.3   # benchmark scale
    net = fnn.MLP([64, 10])
    params, _ = net.init(jax.random.key(0), (40,))
    test = fnn.data.load_mnist1d()
    res = fnn.fit(fnn.supervised(net), params, fnn.optim.adam(3e-3), stream, epochs=3,
                  steps_per_epoch=40, validation_data=(test.x_test, test.y_test),
                  progress=False)
    assert res.history["loss"][-1] < res.history["loss"][0]
    assert res.history["val_accuracy"][-1] > 0.3          # chance is 0.1
