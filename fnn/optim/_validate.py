"""Construction-time argument checks (private).

Only plain numbers are checked. Arrays and tracers pass through unchecked, so optimizers can
still be rebuilt inside ``jit`` with traced hyperparameters (``inject_hyperparams``); callables
are schedules and are checked by whoever builds them.
"""
import math
import numbers


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def nonnegative(owner, **values):
    """Each value must be a finite number >= 0 (None means "not used" and is skipped)."""
    for name, value in values.items():
        if _is_number(value) and not (math.isfinite(value) and value >= 0):
            raise ValueError(f"{owner}: {name} must be a finite number >= 0, got {value}")


def positive(owner, **values):
    """Each value must be a finite number > 0."""
    for name, value in values.items():
        if _is_number(value) and not (math.isfinite(value) and value > 0):
            raise ValueError(f"{owner}: {name} must be a finite number > 0, got {value}")


def unit_interval(owner, **values):
    """Each value must lie in [0, 1) (decay rates of moving averages)."""
    for name, value in values.items():
        if _is_number(value) and not 0 <= value < 1:
            raise ValueError(f"{owner}: {name} must be in [0, 1), got {value}")
