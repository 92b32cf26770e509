"""fnn.sweep: N vmapped runs equal the N corresponding fnn.fit runs."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.sweeps import SweepResult, sweep

NET = fnn.serial(fnn.Dense(16), fnn.relu, fnn.Dense(3))
OBJECTIVE = fnn.supervised(NET)
X = jax.random.normal(jax.random.key(9), (40, 5))
Y = (jnp.arange(40) % 3).astype(jnp.int32)
SEEDS = np.array([0, 3, 7])
LRS = np.array([0.1, 0.05, 0.2], np.float32)


def init(key):
    return NET.init(key, (5,))[0]


def leaf_rel(a, b) -> float:
    """max over leaves of max|a - b| / max|b| (relative to each leaf's scale)."""
    return max(float(np.max(np.abs(np.asarray(u) - np.asarray(v))) / np.max(np.abs(np.asarray(v))))
               for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)))


# full batch with sgd and minibatches with adam: each batching path and each optimizer once
# (minibatch sgd: test_sweep_validation_history_and_cache and the dropout test below)
@pytest.mark.parametrize("make_optimizer, batch_size", [(fnn.optim.sgd, None),
                                                        (fnn.optim.adam, 8)],
                         ids=["full_batch-sgd", "minibatch-adam"])
def test_sweep_equals_separate_fits(make_optimizer, batch_size):
    res = sweep(OBJECTIVE, init, make_optimizer, (X, Y), seeds=SEEDS,
                hparams={"learning_rate": LRS}, epochs=6, batch_size=batch_size)
    assert isinstance(res, SweepResult)
    assert res.params["dense_0"]["w"].shape == (3, 5, 16)
    assert set(res.history) == {"loss", "accuracy"}
    for i, (seed, lr) in enumerate(zip(SEEDS, LRS)):
        ref = fnn.fit(OBJECTIVE, init(jax.random.key(int(seed))), make_optimizer(float(lr)),
                      (X, Y), seed=int(seed), epochs=6, batch_size=batch_size, progress=False)
        run = res.run(i)
        assert leaf_rel(run["params"], ref.params) < 1e-5
        for k, v in ref.history.items():
            assert run["history"][k].shape == v.shape == (6,)
            np.testing.assert_allclose(run["history"][k], v, rtol=1e-5, atol=1e-6)


def test_sweep_weight_decay_and_shared_init():
    params = init(jax.random.key(1))
    decays = np.array([0.0, 0.1, 0.5], np.float32)
    res = sweep(OBJECTIVE, params, fnn.optim.adamw, (X, Y), seeds=5,
                hparams={"learning_rate": 0.05, "weight_decay": decays}, epochs=4, batch_size=10)
    assert res.seeds.tolist() == [5, 5, 5]
    for i, wd in enumerate(decays):
        ref = fnn.fit(OBJECTIVE, params, fnn.optim.adamw(0.05, weight_decay=float(wd)), (X, Y),
                      seed=5, epochs=4, batch_size=10, progress=False)
        assert leaf_rel(res.run(i)["params"], ref.params) < 1e-5
    # different decays give different weights
    w = np.asarray(res.params["dense_0"]["w"])
    assert np.abs(w[0] - w[2]).max() > 1e-3


def test_sweep_validation_history_and_cache():
    val = (X[:12], Y[:12])
    kwargs = dict(hparams={"learning_rate": LRS}, epochs=3, batch_size=8, validation_data=val)
    res = sweep(OBJECTIVE, init, fnn.optim.sgd, (X, Y), seeds=SEEDS, **kwargs)
    assert res.history["val_loss"].shape == (3, 3)
    ref = fnn.fit(OBJECTIVE, init(jax.random.key(3)), fnn.optim.sgd(float(LRS[1])), (X, Y),
                  seed=3, epochs=3, batch_size=8, validation_data=val, progress=False)
    np.testing.assert_allclose(res.history["val_loss"][1], ref.history["val_loss"], rtol=1e-5)
    traces = []

    def counting(p, s, batch, key, train):
        traces.append(train)
        return OBJECTIVE(p, s, batch, key, train)

    sweep(counting, init, fnn.optim.sgd, (X, Y), seeds=SEEDS, **kwargs)
    first = len(traces)
    sweep(counting, init, fnn.optim.sgd, (X, Y), seeds=SEEDS + 1, **kwargs)
    assert first > 0 and len(traces) == first  # new seeds, same program: no retrace


def test_sweep_bad_input():
    with pytest.raises(ValueError, match="same length N"):
        sweep(OBJECTIVE, init, fnn.optim.sgd, (X, Y), seeds=np.arange(3),
              hparams={"learning_rate": np.ones(2, np.float32)})
    with pytest.raises(TypeError, match="seeds must be an int"):
        sweep(OBJECTIVE, init, fnn.optim.sgd, (X, Y), seeds=[0.5, 1.5],
              hparams={"learning_rate": 0.1})
    with pytest.raises(TypeError, match="make_optimizer"):
        sweep(OBJECTIVE, init, fnn.optim.sgd, (X, Y), seeds=SEEDS, hparams={"lr": LRS})
    with pytest.raises(ValueError, match="learning_rate must be a finite number >= 0"):
        sweep(OBJECTIVE, init, fnn.optim.sgd, (X, Y), seeds=SEEDS,
              hparams={"learning_rate": np.array([-1.0, 0.1, 0.1], np.float32)})
    with pytest.raises(ValueError, match="epochs must be a positive int"):
        sweep(OBJECTIVE, init, fnn.optim.sgd, (X, Y), hparams={"learning_rate": 0.1}, epochs=0)
    with pytest.raises(ValueError, match=rf"sweep: shuffle_blocks=3 needs the example count "
                                         rf"\({len(X)}\) and the batch size \(8\) to divide by 3"):
        sweep(OBJECTIVE, init, fnn.optim.sgd, (X, Y), hparams={"learning_rate": 0.1},
              batch_size=8, shuffle_blocks=3)


def test_sweep_with_dropout_matches_fit_and_plain_matmuls():
    """Per-step keys reach the objective as in fit; canonical_matmuls only changes rounding."""
    net = fnn.serial(fnn.Dense(16), fnn.relu, fnn.Dropout(0.3), fnn.Dense(3))
    objective = fnn.supervised(net)
    init_fn = lambda key: net.init(key, (5,))[0]
    kwargs = dict(seeds=SEEDS[:2], hparams={"learning_rate": LRS[:2]}, epochs=3, batch_size=8)
    fast = sweep(objective, init_fn, fnn.optim.sgd, (X, Y), **kwargs)
    plain = sweep(objective, init_fn, fnn.optim.sgd, (X, Y), canonical_matmuls=False, **kwargs)
    assert leaf_rel(fast.params, plain.params) < 1e-5
    ref = fnn.fit(objective, init_fn(jax.random.key(3)), fnn.optim.sgd(float(LRS[1])), (X, Y),
                  seed=3, epochs=3, batch_size=8, progress=False)
    assert leaf_rel(fast.run(1)["params"], ref.params) < 1e-5
    np.testing.assert_allclose(fast.history["loss"][1], ref.history["loss"], rtol=1e-5)


def test_sweep_objective_errors_surface_unchanged():
    def broken(params, state, batch, key, train):
        raise RuntimeError("objective bug")

    with pytest.raises(RuntimeError, match="objective bug"):
        sweep(broken, init, fnn.optim.sgd, (X, Y), hparams={"learning_rate": 0.1})
