"""Construction-time argument checks of the optimizers (package-private), delegating to
:func:`fnn.validation.number_or_array`, the one rule for hyperparameters: the same check
and message shape (``{owner}: {name} must be a finite number >= 0, got {value!r}``) as every
other part of fnn.

Python and NumPy numbers are checked; booleans, strings and other objects are refused (a
learning rate of ``True`` or ``"0.1"`` is a mistake, refused here rather than inside JAX at
the first update). None ("not used"), callables (schedules) and arrays, jit tracers included,
pass unchecked, so optimizers can be rebuilt inside ``jit`` with traced hyperparameters.
"""
from fnn.validation import number_or_array

__all__ = ["finite", "nonnegative", "positive", "unit_interval"]


def _check(owner, values: dict, **interval) -> None:
    for name, value in values.items():
        number_or_array(owner, name, value, **interval)


def finite(owner, **values):
    """Each value must be a finite number (any sign)."""
    _check(owner, values)


def nonnegative(owner, **values):
    """Each value must be a finite number >= 0."""
    _check(owner, values, low=0)


def positive(owner, **values):
    """Each value must be a finite number > 0."""
    _check(owner, values, low=0, low_open=True)


def unit_interval(owner, **values):
    """Each value must lie in [0, 1) (decay rates of moving averages)."""
    _check(owner, values, low=0, high=1, high_open=True)
