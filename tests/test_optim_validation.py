"""Bad hyperparameters fail at construction with a message naming the optimizer, the
argument, what was expected and what was given; good edge values are accepted."""
import math
import re

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn.optim as fo

BAD = [
    # (expected message, construction)
    ("sgd: learning_rate must be a finite number >= 0, got -0.1", lambda: fo.sgd(-0.1)),
    ("sgd: learning_rate must be a finite number >= 0, got nan", lambda: fo.sgd(math.nan)),
    ("sgd: learning_rate must be a finite number >= 0, got inf", lambda: fo.sgd(math.inf)),
    ("sgd: momentum must be a finite number >= 0, got -0.9", lambda: fo.sgd(0.1, momentum=-0.9)),
    ("trace: decay must be a finite number >= 0, got -0.5", lambda: fo.trace(-0.5)),
    ("adam: learning_rate must be a finite number >= 0, got -0.001", lambda: fo.adam(-1e-3)),
    ("adam: b1 must be a finite number in [0, 1), got 1.5", lambda: fo.adam(0.1, b1=1.5)),
    ("adam: b1 must be a finite number in [0, 1), got 1.0", lambda: fo.adam(0.1, b1=1.0)),
    ("adam: b2 must be a finite number in [0, 1), got -0.1", lambda: fo.adam(0.1, b2=-0.1)),
    ("adam: eps must be a finite number >= 0, got -1e-08", lambda: fo.adam(0.1, eps=-1e-8)),
    ("adam: eps_root must be a finite number >= 0, got -1.0", lambda: fo.adam(0.1, eps_root=-1.0)),
    ("nadam: b1 must be a finite number in [0, 1), got 2", lambda: fo.nadam(0.1, b1=2)),
    ("adamw: weight_decay must be a finite number >= 0, got -0.01",
     lambda: fo.adamw(0.1, weight_decay=-0.01)),
    ("adamw: b2 must be a finite number in [0, 1), got nan", lambda: fo.adamw(0.1, b2=math.nan)),
    ("amsgrad: b2 must be a finite number in [0, 1), got 1.01", lambda: fo.amsgrad(0.1, b2=1.01)),
    ("adamax: eps must be a finite number >= 0, got -1.0", lambda: fo.adamax(0.1, eps=-1.0)),
    ("lion: b1 must be a finite number in [0, 1), got 1.1", lambda: fo.lion(0.1, b1=1.1)),
    ("lion: weight_decay must be a finite number >= 0, got -1.0",
     lambda: fo.lion(0.1, weight_decay=-1.0)),
    ("adagrad: initial_accumulator_value must be a finite number >= 0, got -0.1",
     lambda: fo.adagrad(0.1, initial_accumulator_value=-0.1)),
    ("adagrad: eps must be a finite number >= 0, got -1e-07", lambda: fo.adagrad(0.1, eps=-1e-7)),
    ("rmsprop: decay must be a finite number in [0, 1), got 1.0", lambda: fo.rmsprop(0.1, decay=1.0)),
    ("rmsprop: momentum must be a finite number >= 0, got -0.5",
     lambda: fo.rmsprop(0.1, momentum=-0.5)),
    ("rmsprop: initial_scale must be a finite number >= 0, got -1.0",
     lambda: fo.rmsprop(0.1, initial_scale=-1.0)),
    ("adadelta: rho must be a finite number in [0, 1), got 1.0", lambda: fo.adadelta(rho=1.0)),
    ("adadelta: weight_decay must be a finite number >= 0, got -0.1",
     lambda: fo.adadelta(weight_decay=-0.1)),
    ("scale_by_adam: b1 must be a finite number in [0, 1), got -0.5", lambda: fo.scale_by_adam(b1=-0.5)),
    ("scale_by_rms: decay must be a finite number in [0, 1), got 1.5", lambda: fo.scale_by_rms(decay=1.5)),
    ("scale_by_stddev: eps must be a finite number >= 0, got -1.0",
     lambda: fo.scale_by_stddev(eps=-1.0)),
    ("scale_by_rss: eps must be a finite number >= 0, got -1.0", lambda: fo.scale_by_rss(eps=-1.0)),
    ("scale_by_adadelta: rho must be a finite number in [0, 1), got -0.1", lambda: fo.scale_by_adadelta(rho=-0.1)),
    ("scale_by_amsgrad: b2 must be a finite number in [0, 1), got 1.0", lambda: fo.scale_by_amsgrad(b2=1.0)),
    ("scale_by_adamax: b1 must be a finite number in [0, 1), got 1.0", lambda: fo.scale_by_adamax(b1=1.0)),
    ("scale_by_lion: b2 must be a finite number in [0, 1), got 1.0", lambda: fo.scale_by_lion(b2=1.0)),
    ("scale_by_lion: mode must be one of ['hard', 'refined', 'smooth'], got 'soft'",
     lambda: fo.scale_by_lion(mode="soft")),
    ("scale_by_learning_rate: learning_rate must be a finite number >= 0, got -1",
     lambda: fo.scale_by_learning_rate(-1)),
    ("add_decayed_weights: weight_decay must be a finite number >= 0, got -0.1",
     lambda: fo.add_decayed_weights(-0.1)),
    ("clip: max_delta must be a finite number >= 0, got -1.0", lambda: fo.clip(-1.0)),
    ("clip_by_global_norm: max_norm must be a finite number > 0, got 0.0",
     lambda: fo.clip_by_global_norm(0.0)),
    ("cosine_decay_schedule: decay_steps must be a finite number > 0, got 0",
     lambda: fo.cosine_decay_schedule(0.1, 0)),
    ("piecewise_constant_schedule: scales must be >= 0, got -0.5 at step 10",
     lambda: fo.piecewise_constant_schedule(0.1, {10: -0.5})),
    ("inverse_time_decay: decay_rate must be a finite number >= 0, got -0.5",
     lambda: fo.inverse_time_decay(0.1, -0.5)),
    ("inverse_time_decay: decay_steps must be a finite number > 0, got 0",
     lambda: fo.inverse_time_decay(0.1, 0.5, decay_steps=0)),
    ("inject_hyperparams: static_args ['nope'] are not parameters of adam",
     lambda: fo.inject_hyperparams(fo.adam, static_args="nope")),
    ("adam: b1 must be a finite number in [0, 1), got 1.5", lambda: fo.inject_hyperparams(fo.adam)(0.1, b1=1.5)),
]


@pytest.mark.parametrize("message, build", BAD, ids=[message for message, _ in BAD])
def test_bad_hyperparameter_raises(message, build):
    with pytest.raises(ValueError, match="^" + re.escape(message)):
        build()


def test_numpy_scalars_are_checked_too():
    with pytest.raises(ValueError, match=r"^adam: b1 must be a finite number in \[0, 1\), got 1.5$"):
        fo.adam(0.1, b1=np.float32(1.5))


@pytest.mark.parametrize("build", [
    lambda: fo.sgd(0.0, momentum=0.0),
    lambda: fo.adam(0, b1=0, b2=0.0, eps=0.0),
    lambda: fo.adamw(0.1, weight_decay=0),
    lambda: fo.rmsprop(0.1, decay=0.0, eps=0.0, momentum=0.0),
    lambda: fo.adagrad(0.1, initial_accumulator_value=0.0, eps=0.0),
    lambda: fo.clip(0.0),
    lambda: fo.adam(fo.constant_schedule(-1.0)),  # a schedule is the caller's business
], ids=["sgd", "adam", "adamw", "rmsprop", "adagrad", "clip", "schedule"])
def test_edge_values_are_accepted(build):
    build()


def test_traced_hyperparameters_pass_through_unchecked():
    """Arrays (here, jit tracers) are not checked, so optimizers can be rebuilt inside jit."""

    @jax.jit
    def step(b1, grads):
        optimizer = fo.adam(0.1, b1=b1)
        return optimizer.update(grads, optimizer.init(grads))[0]

    assert step(jnp.float32(0.5), jnp.ones(3)).shape == (3,)


def test_add_decayed_weights_needs_params():
    transform = fo.add_decayed_weights(0.1)
    with pytest.raises(ValueError, match="^add_decayed_weights: update needs the parameters"):
        transform.update(jnp.ones(2), transform.init(jnp.ones(2)))


def test_chain_rejects_a_state_of_the_wrong_length():
    optimizer = fo.chain(fo.clip(1.0), fo.sgd(0.1))
    with pytest.raises(ValueError, match=r"^chain: state must have one entry per transform \(2\), "
                                         r"got 1"):
        optimizer.update(jnp.ones(2), (fo.EmptyState(),))


@pytest.mark.parametrize("value", [True, False, "0.1", [0.1], None])
def test_booleans_strings_and_other_objects_are_refused_at_the_call(value):
    """#23: ``sgd(True)`` and ``sgd("0.1")`` used to be accepted; ``sgd("0.1")`` then failed
    inside ``update`` with a JAX indexing error. The one rule (fnn.validation) refuses them."""
    if value is None:   # None is "not used" for momentum, but a learning rate is required
        fo.sgd(0.1, momentum=None)
        return
    with pytest.raises(ValueError, match=r"^sgd: learning_rate must be a finite number >= 0, "
                                         r"got " + re.escape(repr(value))):
        fo.sgd(value)
    with pytest.raises(ValueError, match=r"^adam: b1 must be a finite number in \[0, 1\)"):
        fo.adam(0.1, b1=value)


def test_arrays_and_schedules_still_pass_unchecked():
    fo.sgd(jnp.float32(0.1))
    fo.adam(np.asarray(0.1))
    fo.sgd(fo.linear_schedule(0.1, 0.0, 10))
