"""Learning-rate schedules: functions of the step count t = 0, 1, 2, ... returning a value.

Each works on a Python int or an int32 array (inside ``jit``), and can be passed wherever a
learning rate (or weight decay) is accepted. The arithmetic is optax's, dtype quirks included:
int32 count / int is float32 in JAX even with x64 on, so linear, polynomial and exponential
schedules are float32-precise there (the optimizer casts the value to each update's dtype).

Every schedule is a ``fnn.optim.HyperparamFunction``: its values (init_value, end_value,
decay_rate, alpha, the piecewise scales, ...) are runtime hyperparameters (see
``fnn.optim.hyperparams``); its step counts (transition_steps, boundaries, decay_steps), its
exponent and its flags (staircase) are structure. Differences computed from two values
(``init_value - end_value``, ``1 - alpha``) are leaves of their own, computed in Python.
"""
import jax
import jax.numpy as jnp

from fnn.optim import _validate
from fnn.optim._numerics import common_dtype
from fnn.optim.hyperparams import HyperparamFunction, composed


def constant_schedule(value):
    """lr(t) = value, for every step t.  Hyperparameters: ``{'value': value}``."""
    return HyperparamFunction(lambda h, count: h["value"], {"value": value})


def polynomial_schedule(init_value, end_value, power, transition_steps: int,
                        transition_begin: int = 0):
    """Polynomial decay from init_value to end_value over transition_steps steps.

    s = clip(t - transition_begin, 0, transition_steps)
    lr(t) = (init_value - end_value) * (1 - s / transition_steps)^power + end_value

    A non-positive transition_steps gives the constant init_value and a negative
    transition_begin counts as 0 (as in optax).

    Hyperparameters: ``span = init_value - end_value`` and ``end_value``.
    """
    if transition_steps <= 0:
        return constant_schedule(init_value)
    transition_begin = max(transition_begin, 0)

    def schedule(h, count):
        steps = jnp.clip(count - transition_begin, 0, transition_steps)
        fraction = 1 - steps / transition_steps
        return h["span"] * fraction ** power + h["end_value"]

    return HyperparamFunction(schedule, {"span": init_value - end_value, "end_value": end_value})


def linear_schedule(init_value, end_value, transition_steps: int, transition_begin: int = 0):
    """Linear interpolation from init_value (t <= transition_begin) to end_value
    (t >= transition_begin + transition_steps): ``polynomial_schedule`` with power 1."""
    return polynomial_schedule(init_value=init_value, end_value=end_value, power=1,
                               transition_steps=transition_steps,
                               transition_begin=transition_begin)


def exponential_decay(init_value, transition_steps: int, decay_rate: float,
                      transition_begin: int = 0, staircase: bool = False, end_value=None):
    """Exponential decay.

    p = (t - transition_begin) / transition_steps   (floor(p) if staircase)
    lr(t) = init_value                   for t <= transition_begin
    lr(t) = init_value * decay_rate^p    afterwards, bounded by end_value if given
            (a lower bound when decay_rate < 1, an upper bound when it is > 1)

    transition_steps <= 0 or decay_rate == 0 give the constant init_value and a negative
    transition_begin counts as 0 (as in optax).

    Hyperparameters: init_value, decay_rate and end_value when given; whether the value
    decays (decay_rate < 1) or grows is structure (it picks the bound).

    Differs from: Keras ExponentialDecay and torch ExponentialLR (gamma per epoch) have
    no transition_begin or end_value; with transition_steps=1 this is torch's rule.
    """
    if transition_steps <= 0 or decay_rate == 0:
        return constant_schedule(init_value)
    transition_begin = max(transition_begin, 0)
    bound = jnp.maximum if decay_rate < 1 else jnp.minimum

    def schedule(h, count):
        init_value, decay_rate = h["init_value"], h["decay_rate"]
        steps = count - transition_begin
        p = steps / transition_steps
        if staircase:
            p = jnp.floor(p)
        value = jnp.where(steps <= 0, init_value, init_value * jnp.power(decay_rate, p))
        return value if end_value is None else bound(value, h["end_value"])

    values = {"init_value": init_value, "decay_rate": decay_rate}
    if end_value is not None:
        values["end_value"] = end_value
    return HyperparamFunction(schedule, values)


def inverse_time_decay(init_value, decay_rate, decay_steps: int = 1, staircase: bool = False):
    """Inverse time decay: lr(t) = init_value / (1 + decay_rate * p), p = t / decay_steps
    (floor(t / decay_steps) if staircase).

    Args:
      init_value: lr(0).
      decay_rate: >= 0.
      decay_steps: > 0.
      staircase: decay in steps of decay_steps instead of continuously.

    Hyperparameters: init_value, decay_rate.

    Same rule as Keras InverseTimeDecay. With decay_steps=1 it is torch.optim.Adagrad's
    ``lr_decay``: ``adagrad(inverse_time_decay(lr, lr_decay))``. optax has no equivalent.
    """
    _validate.nonnegative("inverse_time_decay", decay_rate=decay_rate)
    _validate.positive("inverse_time_decay", decay_steps=decay_steps)

    def schedule(h, count):
        p = jnp.asarray(count).astype(float) / decay_steps  # default float precision
        if staircase:
            p = jnp.floor(p)
        return h["init_value"] / (1 + h["decay_rate"] * p)

    return HyperparamFunction(schedule, {"init_value": init_value, "decay_rate": decay_rate})


def piecewise_constant_schedule(init_value, boundaries_and_scales=None):
    """Piecewise constant: lr(t) = init_value * product of the scales whose boundary <= t.

    Args:
      init_value: lr(0).
      boundaries_and_scales: dict {boundary step: scale >= 0}; at each boundary the
        value is multiplied by its scale. For example {100: 0.1, 200: 0.1} divides the
        learning rate by 10 at steps 100 and 200 (torch MultiStepLR).

    Hyperparameters: init_value and the scales (a tuple, in the order of the boundaries);
    the boundaries are structure.
    """
    boundaries_and_scales = dict(boundaries_and_scales or {})
    for boundary, factor in boundaries_and_scales.items():
        if not factor >= 0:
            raise ValueError(f"piecewise_constant_schedule: scales must be >= 0, "
                             f"got {factor} at step {boundary}")
    boundaries = sorted(boundaries_and_scales)

    def schedule(h, count):
        value = h["init_value"]
        for boundary, factor in zip(boundaries, h["scales"]):
            value = jnp.where(count < boundary, value, factor * jnp.asarray(value))
        return value

    return HyperparamFunction(schedule, {
        "init_value": init_value, "scales": tuple(boundaries_and_scales[b] for b in boundaries)})


def cosine_decay_schedule(init_value, decay_steps: int, alpha=0.0, exponent=1.0):
    """Cosine decay (Loshchilov & Hutter, 2017, without restarts).

    s = min(t, decay_steps)
    lr(t) = init_value * ((1 - alpha) * (0.5 (1 + cos(pi s / decay_steps)))^exponent + alpha)

    Args:
      init_value: lr(0).
      decay_steps: > 0, steps until lr reaches alpha * init_value.
      alpha: final value as a fraction of init_value.
      exponent: power of the cosine factor (structure, not a runtime value).

    Hyperparameters: init_value, alpha and ``one_minus_alpha = 1 - alpha``.
    """
    _validate.positive("cosine_decay_schedule", decay_steps=decay_steps)

    def schedule(h, count):
        # The int count becomes a weakly typed float by standard promotion, as in optax: the
        # value then adopts the dtype of what it is combined with (see join_schedules).
        with jax.numpy_dtype_promotion("standard"):
            steps = jnp.minimum(count, float(decay_steps))
        cosine = 0.5 * (1 + jnp.cos(jnp.pi * steps / decay_steps))
        return h["init_value"] * (h["one_minus_alpha"] * cosine ** exponent + h["alpha"])

    return HyperparamFunction(schedule, {"init_value": init_value, "alpha": alpha,
                                         "one_minus_alpha": 1 - alpha})


def join_schedules(schedules, boundaries):
    """Run schedules one after another.

    lr(t) = schedules[0](t)                    for t < boundaries[0]
    lr(t) = schedules[i](t - boundaries[i-1])  for boundaries[i-1] <= t < boundaries[i]

    Args:
      schedules: the schedules, in order (each restarts its own count at 0).
      boundaries: increasing steps at which the next schedule takes over (one fewer).

    Hyperparameters: the tuple of the schedules' (``{}`` for a plain function).
    """

    def schedule(schedules, step):
        value = schedules[0](step)
        for boundary, following in zip(boundaries, schedules[1:]):
            later = following(step - boundary)
            dtype = common_dtype(value, later)  # schedules may differ in dtype
            value = jnp.where(step < boundary, jnp.asarray(value, dtype), jnp.asarray(later, dtype))
        return value

    return composed(schedule, schedules)


def warmup_cosine_decay_schedule(init_value, peak_value, warmup_steps: int, decay_steps: int,
                                 end_value=0.0, exponent=1.0):
    """Linear warm-up, then cosine decay.

    lr(t) = init_value + (peak_value - init_value) t / warmup_steps     for t < warmup_steps
    lr(t) = cosine_decay_schedule(peak_value, decay_steps - warmup_steps,
                                  alpha=end_value / peak_value, exponent)(t - warmup_steps)

    so lr reaches end_value at step decay_steps (which counts the warm-up too).
    """
    alpha = 0.0 if peak_value == 0.0 else end_value / peak_value
    return join_schedules(
        [linear_schedule(init_value=init_value, end_value=peak_value,
                         transition_steps=warmup_steps),
         cosine_decay_schedule(init_value=peak_value, decay_steps=decay_steps - warmup_steps,
                               alpha=alpha, exponent=exponent)],
        [warmup_steps])
