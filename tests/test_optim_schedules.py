"""Schedules: values against optax at every step, and inverse_time_decay (which optax lacks)
against its formula. (Schedules driving optimizers are in test_optim_equivalence.py.)"""
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn.optim as fo

TOLERANCE = {"float32": dict(rtol=1e-5, atol=1e-9), "float64": dict(rtol=1e-12, atol=1e-15)}

SCHEDULES = {
    "constant": lambda m: m.constant_schedule(0.3),
    "linear": lambda m: m.linear_schedule(1.0, 0.1, 100, transition_begin=50),
    "linear_increasing": lambda m: m.linear_schedule(0.0, 2.0, 30),
    "linear_no_transition": lambda m: m.linear_schedule(1.0, 0.1, 0),
    "polynomial": lambda m: m.polynomial_schedule(1.0, 0.01, 0.5, 200, transition_begin=-5),
    "exponential": lambda m: m.exponential_decay(1.0, 25, 0.5),
    "exponential_begin_staircase": lambda m: m.exponential_decay(1.0, 25, 0.5,
                                                                 transition_begin=40,
                                                                 staircase=True),
    "exponential_end_value": lambda m: m.exponential_decay(1.0, 10, 0.7, end_value=0.05),
    "exponential_growth": lambda m: m.exponential_decay(0.01, 10, 1.3, end_value=1.0),
    "exponential_zero_rate": lambda m: m.exponential_decay(1.0, 10, 0.0),
    "piecewise_constant": lambda m: m.piecewise_constant_schedule(
        1.0, {100: 0.1, 30: 0.5, 200: 2.0}),
    "piecewise_constant_empty": lambda m: m.piecewise_constant_schedule(0.5),
    "cosine": lambda m: m.cosine_decay_schedule(1.0, 200),
    "cosine_alpha_exponent": lambda m: m.cosine_decay_schedule(2.0, 150, alpha=0.1,
                                                               exponent=3.0),
    "warmup_cosine": lambda m: m.warmup_cosine_decay_schedule(0.0, 1.0, 50, 250,
                                                              end_value=1e-3),
    "warmup_cosine_zero_peak": lambda m: m.warmup_cosine_decay_schedule(0.0, 0.0, 10, 100),
    "join": lambda m: m.join_schedules(
        [m.linear_schedule(0.0, 1.0, 20), m.constant_schedule(1.0),
         m.cosine_decay_schedule(1.0, 100)], [20, 80]),
}


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("name", sorted(SCHEDULES))
def test_schedule_values_match_optax(name, dtype, request):
    if dtype == "float64":
        request.getfixturevalue("x64")
    counts = jnp.arange(301, dtype=jnp.int32)
    ours = SCHEDULES[name](fo)
    with jax.numpy_dtype_promotion("standard"):
        theirs = SCHEDULES[name](optax)
        expected = np.broadcast_to(theirs(counts), counts.shape)
        expected_at_7 = theirs(7)
    np.testing.assert_allclose(np.broadcast_to(ours(counts), counts.shape), expected,
                               **TOLERANCE[dtype])
    np.testing.assert_allclose(ours(7), expected_at_7, **TOLERANCE[dtype])  # a Python int


@pytest.mark.parametrize("decay_rate, decay_steps, staircase",
                         [(0.5, 1, False), (0.1, 10, False), (0.1, 10, True), (0.0, 3, True)])
def test_inverse_time_decay_formula(decay_rate, decay_steps, staircase, x64):
    t = np.arange(100)
    p = np.floor(t / decay_steps) if staircase else t / decay_steps
    expected = 0.2 / (1 + decay_rate * p)
    schedule = fo.inverse_time_decay(0.2, decay_rate, decay_steps, staircase)
    np.testing.assert_allclose(schedule(jnp.asarray(t, jnp.int32)), expected, rtol=1e-14)
    np.testing.assert_allclose(jax.jit(schedule)(jnp.int32(37)), expected[37], rtol=1e-14)


def test_inverse_time_decay_as_learning_rate(x64):
    """sgd with inverse_time_decay takes steps -lr_t * g with lr_t = lr / (1 + k t)."""
    params, grad = jnp.zeros(3), jnp.asarray([1.0, -2.0, 0.5])
    optimizer = fo.sgd(fo.inverse_time_decay(0.1, 0.5))
    state = optimizer.init(params)
    for t in range(5):
        updates, state = optimizer.update(grad, state, params)
        np.testing.assert_allclose(updates, -0.1 / (1 + 0.5 * t) * grad, rtol=1e-15)


def test_warmup_cosine_decay_refuses_a_decay_inside_the_warm_up():
    with pytest.raises(ValueError, match=r"warmup_cosine_decay_schedule: decay_steps must be > "
                                         r"warmup_steps .* got decay_steps=10, warmup_steps=10"):
        fo.warmup_cosine_decay_schedule(0.0, 1.0, warmup_steps=10, decay_steps=10)
