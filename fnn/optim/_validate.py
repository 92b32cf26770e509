"""Construction-time argument checks of the optimizers (package-private), delegating to
:mod:`fnn.validation`, the one argument-check module: the same rule and message shape
(``{owner}: {name} must be a finite number >= 0, got {value!r}``) as every other part of fnn.

Python and NumPy numbers are checked; booleans, strings and other objects are refused (a
learning rate of ``True`` or ``"0.1"`` is a mistake, refused here rather than inside JAX at
the first update). Three kinds of value pass through unchecked: None ("not used"), callables
(schedules, checked by whoever builds them) and arrays, including jit tracers, so optimizers
can still be rebuilt inside ``jit`` with traced hyperparameters (``inject_hyperparams``).
"""

import numpy as np

from fnn import validation


def _unchecked(value) -> bool:
    """None, a schedule, or an array (a jax.Array, a tracer, an np.ndarray)."""
    if value is None or callable(value):
        return True
    return hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, np.generic)


def _check(owner, values: dict, **interval) -> None:
    for name, value in values.items():
        if not _unchecked(value):
            validation.number(owner, name, value, **interval)


def nonnegative(owner, **values):
    """Each value must be a finite number >= 0 (or pass unchecked: None, a schedule, an array)."""
    _check(owner, values, low=0)


def positive(owner, **values):
    """Each value must be a finite number > 0 (or pass unchecked: None, a schedule, an array)."""
    _check(owner, values, low=0, low_open=True)


def unit_interval(owner, **values):
    """Each value must lie in [0, 1) (decay rates of moving averages)."""
    _check(owner, values, low=0, high=1, high_open=True)


__all__ = ["nonnegative", "positive", "unit_interval"]
