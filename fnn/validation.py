"""Argument checks shared by every part of fnn: one place that says what a valid int, number,
flag or choice is, and one message shape for the error::

    {who}: {what} must be {expectation}, got {value!r}

``who`` is the layer, function or object the user called (``"Dense"``, ``"fit"``), ``what``
the argument's name. ``bool`` is never accepted where an int or a number is expected
(``True`` is an ``int`` to Python, never a count or a rate to a user). Each check returns the
value in canonical form (a Python int or float), so callers can write
``units = positive_int("Dense", "units", units)``.
"""
from __future__ import annotations

import math
import numbers
from typing import Iterable

import numpy as np

from fnn._names import did_you_mean

__all__ = ["is_int", "is_number", "positive_int", "nonnegative_int", "integer", "number",
           "flag", "one_of", "function", "string", "floating_dtype", "num_examples", "finite_data",
           "local_values", "is_prng_key", "prng_key", "number_or_array"]


def is_int(value) -> bool:
    """A Python or NumPy integer, not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_number(value) -> bool:
    """A Python or NumPy real number (int or float), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _got(value) -> str:
    """``value!r``, plus a hint when an array stands where a setting belongs: the sign of a
    layer constructor passed uncalled (``serial(fnn.Dense)`` calls ``Dense(x)`` on data)."""
    if hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, np.generic):
        return (f"{value!r} (an array where a setting belongs: was a layer constructor passed "
                f"without calling it, e.g. fnn.Dense instead of fnn.Dense(units)?)")
    if isinstance(value, np.generic) and not isinstance(value, np.bool_):
        return repr(value.item())   # a NumPy scalar as the number it is: 1.5, not np.float32(1.5)
    return repr(value)


def positive_int(who: str, what: str, value, *, none_ok: bool = False):
    """``value`` as an int >= 1 (or None, when ``none_ok``)."""
    if value is None and none_ok:
        return None
    if not (is_int(value) and value >= 1):
        raise ValueError(f"{who}: {what} must be a positive int{' or None' if none_ok else ''}, "
                         f"got {_got(value)}")
    return int(value)


def nonnegative_int(who: str, what: str, value) -> int:
    """``value`` as an int >= 0."""
    return integer(who, what, value, low=0)


def integer(who: str, what: str, value, *, low: int | None = None, high: int | None = None,
            none_ok: bool = False):
    """``value`` as an int with ``low <= value < high`` (either bound may be None: unbounded),
    or None when ``none_ok``."""
    if value is None and none_ok:
        return None
    if not (is_int(value) and (low is None or value >= low) and (high is None or value < high)):
        bounds = ("" if low is None and high is None else f" >= {low}" if high is None
                  else f" < {high}" if low is None else f" in [{low}, {high})")
        raise ValueError(f"{who}: {what} must be an int{bounds}{' or None' if none_ok else ''}, "
                         f"got {_got(value)}")
    return int(value)


def number(who: str, what: str, value, *, low: float = -math.inf, high: float = math.inf,
           low_open: bool = False, high_open: bool = False, none_ok: bool = False):
    """``value`` as a finite float in the interval given by ``low``/``high`` (closed ends
    unless ``low_open``/``high_open``), or None when ``none_ok``."""
    if value is None and none_ok:
        return None
    ok = is_number(value) and math.isfinite(value)
    if ok:
        ok = (value > low if low_open else value >= low) and (
            value < high if high_open else value <= high)
    if not ok:
        raise ValueError(f"{who}: {what} must be a finite number{_interval(low, high, low_open, high_open)}"
                         f"{' or None' if none_ok else ''}, got {_got(value)}")
    return float(value)


def _interval(low, high, low_open, high_open) -> str:
    if low == -math.inf and high == math.inf:
        return ""
    if high == math.inf:
        return f" {'>' if low_open else '>='} {low:g}"
    if low == -math.inf:
        return f" {'<' if high_open else '<='} {high:g}"
    return f" in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def flag(who: str, what: str, value) -> bool:
    """``value`` as a bool (Python or NumPy bools only: 0 and 1 are not flags)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{who}: {what} must be True or False, got {value!r}")
    return bool(value)


def one_of(who: str, what: str, value, choices: Iterable):
    """``value`` if it is one of ``choices``; else a ``ValueError`` listing them (with the
    closest one when ``value`` looks like a misspelling)."""
    choices = tuple(choices)
    if value not in choices:
        named = [c for c in choices if isinstance(c, str)]
        raise ValueError(f"{who}: {what} must be one of {', '.join(map(repr, choices))}, got "
                         f"{value!r}{did_you_mean(value, named) if named else ''}")
    return value


def function(who: str, what: str, value, expected: str):
    """``value`` if it is callable; else a ``TypeError`` describing the expected signature,
    e.g. ``function("fit", "objective", obj, "(params, state, batch, key, train) -> ...")``."""
    if not callable(value):
        raise TypeError(f"{who}: {what} must be a function {expected}, got {value!r}")
    return value


def floating_dtype(who: str, what: str, value):
    """``value`` (a dtype, a scalar type such as ``jnp.bfloat16``, or a name such as
    ``'bfloat16'``) as a floating-point NumPy dtype (float16, bfloat16, float32, float64, ...)."""
    import jax.numpy as jnp  # local: keep this module importable without initialising JAX

    try:
        dtype = None if value is None else jnp.dtype(value)  # jnp.dtype(None) is float64
    except (TypeError, ValueError):
        dtype = None
    if dtype is None or not jnp.issubdtype(dtype, jnp.floating):
        raise TypeError(f"{who}: {what} must be a floating-point dtype such as 'bfloat16', "
                        f"'float16' or 'float32', got {_got(value)}")
    return dtype


def num_examples(who: str, data) -> int:
    """The common leading (example) length n >= 1 of every array in the pytree ``data``."""
    import jax  # local: keep this module importable without initialising JAX

    leaves = jax.tree.leaves(data)
    if not leaves:
        raise ValueError(f"{who}: data is empty (a pytree without arrays); expected e.g. (x, y)")
    shapes = [tuple(np.shape(a)) for a in leaves]
    if any(len(s) == 0 for s in shapes):
        raise ValueError(f"{who}: every array in data needs a leading example axis, got a "
                         f"scalar among shapes {shapes}")
    if len({s[0] for s in shapes}) != 1:
        raise ValueError(f"{who}: every array in data needs the same leading (example) axis, "
                         f"got shapes {shapes}")
    if shapes[0][0] == 0:
        raise ValueError(f"{who}: data has 0 examples (shapes {shapes})")
    return int(shapes[0][0])


def finite_data(who: str, data, where: str = "data") -> None:
    """Raise ``ValueError`` naming the first leaf of ``data`` that holds NaN or inf, how many
    values are bad and the index of the first (a host pass over the data)."""
    import jax

    for path, leaf in jax.tree_util.tree_flatten_with_path(data)[0]:
        array = local_values(leaf)
        if np.issubdtype(array.dtype, np.inexact):
            bad = ~np.isfinite(array)
            if bad.any():
                first = tuple(int(i) for i in np.argwhere(bad)[0])
                raise ValueError(f"{who}: {where}{jax.tree_util.keystr(path)} holds "
                                 f"{int(bad.sum())} non-finite value(s) (NaN or inf), the first "
                                 f"at index {first} ({array[first]}); clean or impute them "
                                 f"before training")


def local_values(array) -> np.ndarray:
    """The values of ``array`` this process holds, as NumPy: all of a host or fully
    addressable array; of a global array spread over several processes, its local shards
    (flattened and concatenated: enough for value checks, not for positions)."""
    if getattr(array, "is_fully_addressable", True):
        return np.asarray(array)
    return np.concatenate([np.asarray(s.data).ravel() for s in array.addressable_shards])
def string(who: str, what: str, value, *, none_ok: bool = False):
    """``value`` if it is a non-empty str (or None, when ``none_ok``)."""
    if value is None and none_ok:
        return None
    if not (isinstance(value, str) and value):
        raise TypeError(f"{who}: {what} must be a non-empty string{' or None' if none_ok else ''}"
                        f", got {value!r}")
    return value


def is_prng_key(value) -> bool:
    """A JAX PRNG key: a typed key (``jax.random.key``, any shape) or a raw ``uint32`` key
    (``jax.random.PRNGKey``: last axis 2). Tracers of either kind count."""
    dtype = getattr(value, "dtype", None)
    if dtype is None or isinstance(value, np.generic):
        return False
    import jax   # here, so that importing the checks stays cheap

    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return True
    shape = getattr(value, "shape", ())
    return dtype == np.uint32 and len(shape) >= 1 and shape[-1] == 2


def prng_key(who: str, what: str, value, *, hint: str = ""):
    """``value`` if it is a PRNG key (:func:`is_prng_key`); else a ``TypeError``
    ``{who}: {what} must be a PRNG key such as jax.random.key(0), got ...{hint}``."""
    if not is_prng_key(value):
        raise TypeError(f"{who}: {what} must be a PRNG key such as jax.random.key(0), got "
                        f"{type(value).__name__} {value!r}{hint}")
    return value


def number_or_array(who: str, what: str, value, **interval):
    """``value`` checked as :func:`number` (same keywords) unless it is None, a callable (a
    schedule) or an array, a jit tracer included: those pass unchecked, so hyperparameters can
    be traced (``inject_hyperparams``, ``vmap`` over a learning rate). Bools and strings are
    never numbers and never pass. Returns ``value`` unchanged (not converted to float)."""
    if value is None or callable(value):
        return value
    if hasattr(value, "shape") and hasattr(value, "dtype") and not isinstance(value, np.generic):
        return value
    number(who, what, value, **interval)
    return value
