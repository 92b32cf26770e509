"""fit's hooks (fnn/train/hooks.py): a Hook object sees the run's state and a compiled call's
metrics as arrays; rows are made only for hooks that ask."""
import sys

import jax
import numpy as np

import fnn
from fnn.train import hooks
from fnn.train.hooks import Hook


def _problem():
    rng = np.random.RandomState(0)
    x = rng.randn(64, 3).astype(np.float32)
    y = (x[:, 0] > 0).astype(np.int32)
    net = fnn.serial(fnn.Dense(4), fnn.tanh, fnn.Dense(2))
    params, _ = net.init(jax.random.key(0), (3,))
    return fnn.supervised(net), params, (x, y)


class Recorder(Hook):
    """Keeps what it is shown; stops after ``stop_at`` epochs."""

    def __init__(self, stop_at=None, every_epoch=False):
        self.calls, self.closed, self.stop_at, self.every_epoch = [], False, stop_at, every_epoch

    def after_epochs(self, run, metrics, rows):
        self.calls.append((run.epoch, {k: v.copy() for k, v in metrics.items()}, rows,
                           int(run.ts.step)))
        if self.stop_at is not None and run.epoch >= self.stop_at:
            run.stop = True

    def close(self):
        self.closed = True


def test_a_hook_sees_each_calls_metrics_as_arrays_and_the_state_without_rows():
    objective, params, data = _problem()
    hook = Recorder()
    res = fnn.fit(objective, params, fnn.optim.sgd(0.1), data, epochs=6, batch_size=16,
                  epochs_per_call=3, progress=False, callbacks=[hook])
    assert [c[0] for c in hook.calls] == [3, 6]          # after each compiled call
    assert [c[3] for c in hook.calls] == [12, 24]        # the state's step: 4 steps per epoch
    assert all(c[2] == [] for c in hook.calls)           # no rows asked, none made
    np.testing.assert_array_equal(np.concatenate([c[1]["loss"] for c in hook.calls]),
                                  res.history["loss"])
    assert hook.closed


def test_a_hook_can_stop_the_run_and_ask_for_every_epoch_and_the_same_result():
    objective, params, data = _problem()
    hook = Recorder(stop_at=2, every_epoch=True)
    res = fnn.fit(objective, params, fnn.optim.sgd(0.1), data, epochs=6, batch_size=16,
                  progress=False, callbacks=[hook])
    assert [c[0] for c in hook.calls] == [1, 2] and len(res.history["loss"]) == 2
    plain = fnn.fit(objective, params, fnn.optim.sgd(0.1), data, epochs=2, batch_size=16,
                    progress=False)
    np.testing.assert_array_equal(res.history["loss"], plain.history["loss"])
    for a, b in zip(jax.tree.leaves(res.params), jax.tree.leaves(plain.params)):
        np.testing.assert_array_equal(a, b)


def test_rows_are_made_only_for_hooks_that_ask(monkeypatch):
    objective, params, data = _problem()
    made = []
    real = hooks.make_rows
    fit_module = sys.modules["fnn.train.fit"]   # (fnn.train.fit is the function)
    monkeypatch.setattr(fit_module, "make_rows", lambda m: made.append(1) or real(m))
    fnn.fit(objective, params, fnn.optim.sgd(0.1), data, epochs=4, progress=False)
    assert made == []
    seen = []
    fnn.fit(objective, params, fnn.optim.sgd(0.1), data, epochs=4, progress=False,
            callbacks=[lambda epoch, m: seen.append((epoch, m["loss"]))])
    assert len(made) == 4 and [e for e, _ in seen] == [0, 1, 2, 3]
    assert all(isinstance(v, float) for _, v in seen)


def test_make_rows_gives_floats_or_a_row_of_steps():
    rows = hooks.make_rows({"loss": np.array([1.0, 2.0]), "d": np.arange(6.0).reshape(2, 3)})
    assert rows[1]["loss"] == 2.0 and isinstance(rows[1]["loss"], float)
    np.testing.assert_array_equal(rows[1]["d"], [3.0, 4.0, 5.0])
