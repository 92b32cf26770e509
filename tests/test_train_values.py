"""fit's small values: the keyword-only configuration (:class:`fnn.train.config.FitConfig`),
the objective value cast once (:func:`fnn.train.objective.objective_value`) and the input
source made in one place (:func:`fnn.train.inputs.input_source`)."""
import dataclasses

import pytest

from fnn.train.config import FitConfig


def test_fit_config_is_keyword_only_and_checked():
    config = FitConfig(epochs=3, batch_size=8, seed=1)
    assert (config.epochs, config.batch_size, config.seed, config.keep) == (3, 8, 1, 3)
    with pytest.raises(TypeError, match="positional"):
        FitConfig(3, 8)
    with pytest.raises(ValueError, match="fit: epochs"):
        FitConfig(epochs=0)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.epochs = 4


# ---- the objective value -------------------------------------------------------------------

import jax
import jax.numpy as jnp
import numpy as np

import fnn
import fnn.train.objective as objective_module
from fnn.optim import hyperparams_of
from fnn.precision import get_policy
from fnn.train.objective import (SupervisedObjective, TrainObjective, no_data_check,
                                 objective_value)

BF16 = get_policy("params=float32,compute=bfloat16,output=float32")


def problem(n=32):
    net = fnn.serial(fnn.Dense(6), fnn.tanh, fnn.Dense(3))
    params, _ = net.init(jax.random.key(0), (4,))
    x = jax.random.normal(jax.random.key(1), (n, 4))
    return net, params, (x, jnp.arange(n) % 3)


def test_an_objective_without_a_data_check_gets_the_null_one():
    net, params, data = problem()

    def plain(params, state, batch, key, train):
        out, state = net.apply(params, state, batch[0])
        return fnn.losses.softmax_cross_entropy(out, batch[1]), (state, {})

    value = objective_value(plain)
    assert value.check_data is no_data_check and value.net is None
    assert value.cast is plain and value.policy is None and value.hyperparameters() == {}
    assert value.check_data(params, {}, "not even data", "fit") is None
    # the null check lets fit and evaluate through; the objective's own errors still surface
    result = fnn.fit(plain, params, fnn.optim.sgd(0.1), data, epochs=2, batch_size=8,
                     progress=False)
    assert result.history["loss"].shape == (2,)
    assert set(fnn.evaluate(plain, result.params, data)) == {"loss"}


def test_a_supervised_objective_brings_its_net_and_data_check_through_a_cast():
    net, params, data = problem()
    objective = fnn.supervised(net, l2=1e-3)
    value = objective_value(objective, BF16)
    assert isinstance(objective, SupervisedObjective)
    assert value.net is net and value.check_data is objective.check_data
    # the cast keeps the class, the attributes and the runtime hyperparameters
    assert isinstance(value.cast, SupervisedObjective) and value.cast is not objective
    assert hyperparams_of(value.cast) == {"l2": 1e-3} == value.hyperparameters()
    with pytest.raises(ValueError, match=r"fit: integer labels must lie in \[0, 3\)"):
        value.check_data(params, {}, (data[0], data[1] + 5), "fit")
    loss, (_, metrics) = value.cast(params, {}, data, None, False)
    assert loss.dtype == jnp.float32 and metrics["accuracy"].dtype == jnp.float32
    # computed in bfloat16: close to, not equal to, the float32 loss
    exact = objective(params, {}, data, None, False)[0]
    assert loss != exact and abs(float(loss) - float(exact)) < 2e-2


def test_the_objective_value_is_equal_by_function_and_policy_and_is_not_cast_twice():
    net, _, _ = problem()
    objective = fnn.supervised(net)
    a, b = objective_value(objective, BF16), objective_value(objective, str(BF16))
    assert a == b and hash(a) == hash(b) and a.cast is not b.cast
    assert a != objective_value(objective) and a != objective_value(fnn.supervised(net), BF16)
    assert objective_value(a) is a and objective_value(a, BF16) is a
    with pytest.raises(ValueError, match="objective_value: the objective runs under precision"):
        objective_value(a, "compute=float16")
    assert isinstance(a, TrainObjective)


@pytest.mark.parametrize("stream", [False, True])
def test_fit_casts_the_objective_once(monkeypatch, stream):
    net, params, (x, y) = problem(64)
    casts = []
    real = objective_module.cast_objective
    monkeypatch.setattr(objective_module, "cast_objective",
                        lambda objective, policy: casts.append(policy) or real(objective, policy))
    data = [(x[i:i + 16], y[i:i + 16]) for i in range(0, 48, 16)] if stream else (x[:48], y[:48])
    validation = [(x[48:], y[48:])] if stream else (x[48:], y[48:])
    result = fnn.fit(fnn.supervised(net, l2=1e-3), params, fnn.optim.adam(1e-2), data,
                     epochs=3, batch_size=None if stream else 16, seed=1, progress=False,
                     validation_data=validation, precision=BF16)
    assert casts == [BF16]
    assert result.history["val_loss"].shape == (3,) and np.all(np.isfinite(result.history["loss"]))


# ---- the input source -----------------------------------------------------------------------

from fnn.sharding import SINGLE_DEVICE
from fnn.train.sources import ArraySource, StreamSource, input_source


def test_arrays_and_streams_are_one_kind_of_source():
    _, _, (x, y) = problem(48)
    checked = []
    check = lambda batch, where: checked.append(where)
    arrays = input_source(FitConfig(batch_size=16), (x, y), None, {}, check)
    assert isinstance(arrays, ArraySource) and arrays.parallel is SINGLE_DEVICE
    assert (arrays.n, arrays.batch_size, arrays.steps_per_epoch, arrays.per_epoch) == (48, 16, 3,
                                                                                        False)
    assert arrays.example is arrays.data and arrays.example[0].shape == (48, 4)
    assert arrays.shuffle_blocks(None) == 1 and arrays.shuffle_blocks(4) == 4
    assert arrays.sizes(1) == {"batch_size": 16, "num_examples": 48, "shuffle_blocks": 1}
    assert arrays.platform == jax.devices()[0].platform
    full = input_source(FitConfig(), (x, y), None, {}, check)
    assert full.batch_size == 48 and full.steps_per_epoch == 1 and full.shuffle_blocks(4) == 1

    batches = [(np.asarray(x[i:i + 16]), np.asarray(y[i:i + 16])) for i in range(0, 48, 16)]
    stream = input_source(FitConfig(stream_chunk=2), batches, None, {}, check)
    assert isinstance(stream, StreamSource) and stream.parallel is SINGLE_DEVICE
    assert (stream.n, stream.batch_size, stream.steps_per_epoch, stream.per_epoch) == (None, 16, 3,
                                                                                        True)
    np.testing.assert_array_equal(stream.example[0], batches[0][0])
    assert stream.shuffle_blocks(4) == 1 and stream.chunk == 2 and not stream.keep_input
    assert stream.sizes(1) == {"batch_size": 16, "num_examples": None, "steps_per_epoch": 3}
    # later batches go through the data check, named by their place in the stream
    stream.batches.take(3, lambda got: "ended")
    assert checked == ["fit (batch 1 of the stream)", "fit (batch 2 of the stream)"]


def test_each_source_refuses_the_other_kinds_options_as_before():
    _, _, (x, y) = problem(48)
    none = lambda batch, where: None
    with pytest.raises(ValueError, match="fit: steps_per_epoch is for a stream of batches"):
        input_source(FitConfig(steps_per_epoch=3), (x, y), None, {}, none)
    batches = iter([(np.asarray(x[:16]), np.asarray(y[:16]))])
    with pytest.raises(ValueError, match="fit: a stream of type list_iterator has no length"):
        input_source(FitConfig(), batches, None, {}, none)
    with pytest.raises(ValueError, match="validation_data is a one-shot iterator"):
        input_source(FitConfig(), (x, y), iter([(x, y)]), {}, none)
    with pytest.raises(ValueError, match="fit: shuffle_blocks=5 needs the example count"):
        input_source(FitConfig(batch_size=16), (x, y), None, {}, none).shuffle_blocks(5)


def test_multi_step_is_a_step_value_and_an_objective_value_is_not_a_step():
    from fnn.train.multi_step import MultiStep, is_engine_step
    loss = lambda trees, state, batch, key, train: (jnp.sum(trees["a"] ** 2), (state, {}))
    step = fnn.multi_step({"a": loss}, {"a": fnn.optim.sgd(0.25)})
    assert isinstance(step, MultiStep) and is_engine_step(step) and step.names == ("a",)
    assert repr(step) == "multi_step(a; order='sequential')"
    assert not is_engine_step(objective_value(loss))
    trees = {"a": jnp.array([2.0])}
    new, _, metrics = jax.jit(step)(trees, step.init(trees), None, jax.random.key(0))
    assert float(new["a"][0]) == 1.0 and float(metrics["a_loss"]) == 4.0   # 2 - 0.25 * 4


def test_substituting_hyperparameters_after_the_cast_computes_what_before_it_did():
    net, params, data = problem()
    objective = fnn.supervised(net, l2=1e-2, l1=1e-3)
    value = objective_value(objective, BF16)
    h = jax.tree.map(jnp.asarray, {"l2": 0.5, "l1": 0.25})
    grad = lambda f: jax.value_and_grad(lambda p: f(p, {}, data, None, True)[0])(params)
    after = jax.jit(lambda h: grad(value.with_hyperparameters(h).cast))(h)
    before = jax.jit(lambda h: grad(fnn.precision.cast_objective(
        fnn.optim.with_hyperparams(objective, h), BF16)))(h)
    for a, b in zip(jax.tree.leaves(after), jax.tree.leaves(before)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert value.with_hyperparameters({}) is value
