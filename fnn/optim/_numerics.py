"""Small numeric helpers shared by the optimizers (private).

fnn runs under ``jax_numpy_dtype_promotion="strict"``, so every place where two dtypes may
meet (optimizer state kept in ``mu_dtype``/``accumulator_dtype``, bfloat16 parameters with
float32 updates) promotes explicitly, by the standard JAX lattice, exactly as optax does
implicitly.
"""
import functools

import jax
import jax.numpy as jnp


def common_dtype(*values):
    """The dtype standard JAX promotion gives ``values`` (bfloat16, float32 -> float32;
    a Python number takes the other operand's dtype)."""
    with jax.numpy_dtype_promotion("standard"):
        return jnp.result_type(*values)


def add(x, y):
    """x + y, computed in the promoted dtype of x and y."""
    dtype = common_dtype(x, y)
    return x.astype(dtype) + y.astype(dtype)


def div(x, y):
    """x / y, computed in the promoted dtype of x and y."""
    dtype = common_dtype(x, y)
    return x.astype(dtype) / y.astype(dtype)


def ema(new, old, decay):
    """Exponential moving average: (1 - rate) * new + rate * old, for a
    ``hyperparams.Decay(rate, complement=1 - rate)``."""
    return add(decay.complement * new, decay.rate * old)


def increment(count):
    """count + 1, saturating at the integer maximum so a very long run never wraps around."""
    top = jnp.iinfo(count.dtype).max
    return jnp.where(count < top, count + 1, count)


def as_float(x):
    """x as a float array: Python and integer numbers become the default float dtype."""
    x = jnp.asarray(x)
    return x if jnp.issubdtype(x.dtype, jnp.floating) else x.astype(float)


@functools.partial(jax.jit, inline=True)
def debias(moments, decay, count):
    """Bias correction of zero-initialised moving averages: moment / (1 - decay^count),
    for every leaf of the ``moments`` tree.

    decay^count is computed once, in the default float precision (float32, or float64 with
    x64), then cast to each moment's dtype, so a bfloat16 moment stays bfloat16 without
    rounding decay^count to 1. Compiled as one unit (inlined under an outer jit), as optax
    does, so even op-by-op results agree with optax bit for bit.
    """
    correction = 1 - jax.lax.pow(as_float(decay), count)
    return jax.tree.map(lambda m: m / correction.astype(m.dtype), moments)


def canonical_dtype(dtype):
    """None, or the dtype JAX would actually use (float64 -> float32 unless x64 is on)."""
    return None if dtype is None else jax.dtypes.canonicalize_dtype(dtype)


def zeros_like(tree, dtype=None):
    """A tree of zeros shaped like ``tree`` (in ``dtype`` when given, else each leaf's)."""
    return jax.tree.map(lambda x: jnp.zeros_like(x, dtype=dtype), tree)


def full_like(tree, value):
    """A tree shaped like ``tree`` with every entry equal to ``value``."""
    return jax.tree.map(lambda x: jnp.full_like(x, value), tree)


def cast(tree, dtype):
    """``tree`` with every leaf cast to ``dtype``; unchanged when dtype is None."""
    return tree if dtype is None else jax.tree.map(lambda x: x.astype(dtype), tree)
