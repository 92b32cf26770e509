"""fnn.train.run: one training run as one pure function. It is the run fit makes (same
params, states and history, bit for bit), it jits and vmaps (a vmapped run equals the
individual runs to float rounding), and it checks its arguments."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.train import RunResult, TrainState, checked_step, run


def problem():
    """A 5-12-3 MLP with Dropout (per-step keys) on 110 blob examples: 90 train, 20 val."""
    rng = np.random.RandomState(0)
    y = rng.randint(0, 3, 110).astype(np.int32)
    x = (rng.randn(3, 5)[y] * 2 + rng.randn(110, 5)).astype(np.float32)
    net = fnn.serial(fnn.Dense(12), fnn.relu, fnn.Dropout(0.2), fnn.Dense(3))
    params, _ = net.init(jax.random.key(1), (5,))
    return fnn.supervised(net), params, (x[:90], y[:90]), (x[90:], y[90:])


def assert_equal_bits(a, b):
    chex.assert_trees_all_equal_structs(a, b)
    for u, v in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        np.testing.assert_array_equal(np.asarray(u), np.asarray(v))


@pytest.mark.parametrize("batch_size", [16, None], ids=["minibatch", "full_batch"])
def test_run_is_the_run_fit_makes_bit_for_bit(batch_size):
    objective, params, data, val = problem()
    opt = fnn.optim.adam(1e-2)
    res = fnn.fit(objective, params, opt, data, epochs=4, batch_size=batch_size, seed=3,
                  validation_data=val, progress=False)

    @jax.jit
    def train(params, data, val):
        return run(checked_step(objective, opt), TrainState.create(params, opt), data,
                   jax.random.key(3), epochs=4, batch_size=batch_size, objective=objective,
                   val_data=val)

    out = train(params, data, val)
    assert isinstance(out, RunResult) and out.guard is None
    assert_equal_bits((out.ts.params, out.ts.model_state, out.ts.opt_state),
                      (res.params, res.model_state, res.opt_state))
    assert int(out.ts.step) == 4 * (90 // (batch_size or 90))
    assert sorted(out.metrics) == sorted(res.history) == ["accuracy", "loss", "val_accuracy",
                                                          "val_loss"]
    assert_equal_bits({k: np.asarray(v) for k, v in out.metrics.items()}, res.history)


def test_per_step_metrics_and_the_skip_guard_are_fits():
    objective, params, (x, y), _ = problem()
    x = x.copy()
    x[[4, 50]] = np.nan                        # two poisoned minibatches per epoch at most
    opt = fnn.optim.sgd(0.1, momentum=0.9)
    res = fnn.fit(objective, params, opt, (x, y), epochs=3, batch_size=10, seed=1,
                  on_nonfinite="skip", step_metrics=True, progress=False)
    out = jax.jit(lambda p: run(checked_step(objective, opt), TrainState.create(p, opt), (x, y),
                                jax.random.key(1), epochs=3, batch_size=10, guard="skip",
                                per_step=True))(params)
    assert out.metrics["loss"].shape == (3, 9) and res.history["skipped"].sum() > 0
    assert_equal_bits(out.ts.params, res.params)
    assert_equal_bits({k: np.asarray(v) for k, v in out.metrics.items()}, res.history)


def test_the_raise_guard_reports_the_step_fit_reports():
    objective, params, (x, y), _ = problem()
    x = x.copy()
    x[33] = np.inf
    opt = fnn.optim.adam(1e-2)
    with pytest.raises(fnn.NonFiniteError) as err:
        fnn.fit(objective, params, opt, (x, y), epochs=3, batch_size=10, seed=2,
                on_nonfinite="raise", progress=False)
    out = jax.jit(lambda p: run(checked_step(objective, opt), TrainState.create(p, opt), (x, y),
                                jax.random.key(2), epochs=3, batch_size=10, guard="raise"))(params)
    assert int(out.guard.bad_step) == err.value.step >= 0
    assert_equal_bits(out.ts.params, err.value.params)   # frozen before the bad step


def test_vmapped_runs_equal_the_individual_runs():
    objective, params, data, val = problem()

    def train(lr, key):
        opt = fnn.optim.adam(lr)
        return run(checked_step(objective, opt), TrainState.create(params, opt), data, key,
                   epochs=3, batch_size=15, objective=objective, val_data=val)

    lrs = jnp.array([3e-2, 1e-2, 3e-3], jnp.float32)
    keys = jax.random.split(jax.random.key(9), 3)
    together = jax.jit(jax.vmap(train))(lrs, keys)
    assert together.metrics["loss"].shape == (3, 3)
    one = jax.jit(train)
    for i in range(3):
        alone = one(lrs[i], keys[i])
        chex.assert_trees_all_close(jax.tree.map(lambda a: a[i], together), alone,
                                    atol=1e-6, rtol=1e-6)
    assert not np.allclose(together.metrics["loss"][0], together.metrics["loss"][1])


def test_a_run_is_a_function_of_its_key():
    objective, params, data, _ = problem()
    opt = fnn.optim.sgd(0.05)
    train = jax.jit(lambda key: run(checked_step(objective, opt), TrainState.create(params, opt),
                                    data, key, epochs=2, batch_size=30))
    a, b, c = train(jax.random.key(0)), train(jax.random.key(0)), train(jax.random.key(1))
    assert_equal_bits(a, b)
    assert not np.array_equal(a.metrics["loss"], c.metrics["loss"])


@pytest.mark.parametrize("change, message", [
    ({"step": "sgd"}, r"run: step must be a function \(ts, batch, key\)"),
    ({"ts": "params"}, r"run: ts must be an fnn.train.TrainState, e.g. TrainState.create"),
    ({"key": 0}, r"run: key must be a PRNG key such as jax.random.key\(0\), got int 0"),
    ({"epochs": 0}, r"run: epochs must be a positive int, got"),
    ({"batch_size": 91}, r"run: batch_size \(91\) is larger than the dataset \(90 examples\)"),
    ({"guard": "nan"}, r"run: guard must be one of None, 'raise', 'skip', got 'nan'"),
    ({"per_step": 1}, r"run: per_step must be True or False, got 1"),
    ({"val_data": "val"}, r"run: val_data needs objective="),
    ({"shuffle_blocks": 4}, r"run: shuffle_blocks=4 needs the example count \(90\) and the "
                            r"batch size \(10\) to divide by 4"),
    ({"data": ((np.zeros((90, 5), np.float32), np.zeros(80, np.int32)))},
     r"run: every array in data needs the same leading \(example\) axis"),
])
def test_bad_arguments_are_named(change, message):
    objective, params, data, val = problem()
    opt = fnn.optim.sgd(0.1)
    args = {"step": checked_step(objective, opt), "ts": TrainState.create(params, opt),
            "data": data, "key": jax.random.key(0), "epochs": 2, "batch_size": 10}
    args.update(change)
    if args.get("val_data") == "val":
        args["val_data"] = val
    with pytest.raises((TypeError, ValueError), match=message):
        run(args.pop("step"), args.pop("ts"), args.pop("data"), args.pop("key"), **args)
