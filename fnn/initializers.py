"""Weight initialisers: ``init(key, shape, dtype) -> array`` (dtype by default float32; for
the random ones JAX's default float, float64 under x64, as in ``jax.nn.initializers``).

Fan sizes follow the convention of ``jax.nn.initializers``: for a Dense kernel of shape
``(n_in, n_out)`` fan_in = n_in and fan_out = n_out; for a conv kernel ``(kh, kw, c_in, c_out)``
both are multiplied by the receptive field kh*kw. The variance-scaling schemes below draw
from a plain (untruncated) normal, so ``lecun_normal`` is exactly the notes' ``randn(n)/sqrt(n)``.

Each initialiser gives the very numbers of its ``jax.nn.initializers`` counterpart (the
variance-scaling ones ``variance_scaling(scale, mode, "normal" | "uniform")``;
tests/test_initializers.py compares them bit for bit) and the names the notes use. The
random numbers are drawn flat and reshaped (:func:`draw`): the same numbers, from one compiled
program per power of two rather than per shape (a net's first ``init`` is mostly those
compiles).
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.nn import initializers as jinit

from fnn._names import did_you_mean
from fnn.validation import number, one_of

__all__ = [
    "zeros", "ones", "constant", "normal", "small_random", "uniform", "lecun_normal",
    "lecun_uniform", "glorot_normal", "glorot_uniform", "xavier_normal", "xavier_uniform",
    "he_normal", "he_uniform", "kaiming_normal", "kaiming_uniform", "orthogonal", "get",
    "variance_scaling", "fans", "draw",
]


def zeros(key, shape, dtype=jnp.float32):
    """w = 0. (For weights this never breaks symmetry: every hidden unit stays identical.)"""
    return jnp.zeros(shape, dtype)


def ones(key, shape, dtype=jnp.float32):
    """w = 1."""
    return jnp.ones(shape, dtype)


def constant(value: float):
    """w = value everywhere."""
    return jinit.constant(value)


def _default_float(dtype):
    """``dtype``, or where None JAX's default float (float32; float64 with x64 enabled), as
    jax.nn.initializers' own default."""
    return jnp.result_type(float) if dtype is None else dtype


# Eager draws of up to this many numbers come from a power-of-two draw (below).
_POOLED_SIZES = 2 ** 16


def _pooled_size(key, size: int) -> int:
    """The size of the draw whose first ``size`` numbers are the ones wanted: the next power of
    two (>= 64) when the draw is eager, small and from JAX's partitionable threefry (where
    number i depends only on the key and i); ``size`` itself otherwise (JAX promises nothing
    of that kind for its other PRNGs), and for a key spread over several processes (whose draw
    the host cannot read whole)."""
    if (isinstance(key, jax.core.Tracer) or not 0 < size <= _POOLED_SIZES
            or not getattr(key, "is_fully_addressable", True)
            or not jax.config.jax_threefry_partitionable
            or str(jax.random.key_impl(key)) != "threefry2x32"):
        return size
    return max(64, 1 << (size - 1).bit_length())


def draw(sample, key, shape, dtype, *args, scale=None) -> jax.Array:
    """``sample(key, shape, dtype, *args)`` (``jax.random.normal`` or ``uniform``), the same
    numbers drawn flat: ``sample(key, (n,), dtype, *args)[:prod(shape)].reshape(shape)``.
    Threefry counts over the flat index, so the first numbers of a longer draw are those of a
    shorter one; an eager draw of up to 2**16 numbers takes n = the next power of two (>= 64),
    so a net's first ``init`` compiles one random program per power of two rather than one per
    weight shape (each ~0.2 s on a CPU), and cuts the numbers on the host. Under a
    trace (``jit``, ``vmap``), and for other PRNGs, n = prod(shape). ``scale`` (optional)
    multiplies the numbers, in the flat draw (one program per n, not per shape)."""
    size = math.prod(shape)
    n = _pooled_size(key, size)
    flat = sample(key, (n,), dtype, *args)
    if scale is not None:
        flat = flat * scale
    if n == size:
        return flat.reshape(shape)
    return _head(flat, size, shape)


def _head(flat: jax.Array, size: int, shape) -> jax.Array:
    """``flat[:size].reshape(shape)`` of an eager pooled draw, cut on the host (the same
    numbers, and no slice or reshape program per weight shape), placed as ``flat`` is: on its
    devices when committed to them, else uncommitted on the default device."""
    head = np.asarray(flat)[:size].reshape(shape)
    return jax.device_put(head, flat.sharding if flat.committed else None)


def _scaled(sample, factor: float):
    """``init(key, shape, dtype) = factor * sample(key, shape, dtype)``, a flat :func:`draw`."""

    def init(key, shape, dtype=None):
        dtype = _default_float(dtype)
        return draw(sample, key, shape, dtype, scale=jnp.array(factor, dtype))

    return init


def normal(stddev: float = 1.0):
    """w ~ N(0, stddev^2), i.e. ``stddev * randn(shape)``."""
    return _scaled(jax.random.normal, number("normal", "stddev", stddev, low=0, low_open=True))


def small_random(scale: float = 0.001):
    """The notes' small-random scheme ``w = 0.001 * randn(D, H)``: N(0, scale^2).

    Fine for shallow nets; in deep nets the activations shrink by ~scale*sqrt(n) per layer.
    """
    return normal(scale)


def uniform(scale: float = 1e-2):
    """w ~ U[0, scale) (as jax.nn.initializers.uniform)."""
    return _scaled(jax.random.uniform, number("uniform", "scale", scale, low=0, low_open=True))


def fans(shape) -> tuple[float, float]:
    """``(fan_in, fan_out) = (shape[-2] * r, shape[-1] * r)``, r = the receptive field
    ``prod(shape[:-2])`` (1 for a Dense kernel), computed as jax.nn.initializers does."""
    if len(shape) < 2:
        raise ValueError(f"fans: a weight of shape {tuple(shape)} has no fan_in and fan_out; "
                         f"expected at least 2 dimensions (n_in, n_out)")
    receptive = math.prod(shape) / shape[-2] / shape[-1]
    return shape[-2] * receptive, shape[-1] * receptive


def variance_scaling(scale: float, mode: str, distribution: str):
    """``jax.nn.initializers.variance_scaling(scale, mode, distribution)`` for ``mode`` in
    ``'fan_in'``, ``'fan_avg'`` and an untruncated ``distribution``: variance v = scale / n
    (n = fan_in or (fan_in + fan_out) / 2), w = sqrt(v) * randn or sqrt(3 v) * U(-1, 1)."""
    scale = number("variance_scaling", "scale", scale, low=0, low_open=True)
    mode = one_of("variance_scaling", "mode", mode, ("fan_in", "fan_avg"))
    distribution = one_of("variance_scaling", "distribution", distribution, ("normal", "uniform"))

    def variance_scaling_init(key, shape, dtype=None):
        dtype = _default_float(dtype)
        fan_in, fan_out = fans(shape)
        variance = jnp.array(scale / (fan_in if mode == "fan_in" else (fan_in + fan_out) / 2),
                             dtype=dtype)
        if distribution == "normal":
            return draw(jax.random.normal, key, shape, dtype, scale=jnp.sqrt(variance))
        return draw(jax.random.uniform, key, shape, dtype, -1, scale=jnp.sqrt(3 * variance))

    return variance_scaling_init


def lecun_normal():
    """Fan-in scaling: w ~ N(0, 1/fan_in) = randn/sqrt(fan_in); keeps Var(w.x) = Var(x)."""
    return variance_scaling(1.0, "fan_in", "normal")


def lecun_uniform():
    """w ~ U(-a, a), a = sqrt(3/fan_in) (variance 1/fan_in)."""
    return variance_scaling(1.0, "fan_in", "uniform")


def glorot_normal():
    """Glorot/Xavier: w ~ N(0, 2/(fan_in + fan_out))."""
    return variance_scaling(1.0, "fan_avg", "normal")


def glorot_uniform():
    """Glorot/Xavier: w ~ U(-a, a), a = sqrt(6/(fan_in + fan_out))."""
    return variance_scaling(1.0, "fan_avg", "uniform")


def he_normal():
    """He/Kaiming for ReLU: w ~ N(0, 2/fan_in) (ReLU halves the variance, the 2 restores it)."""
    return variance_scaling(2.0, "fan_in", "normal")


def he_uniform():
    """He/Kaiming: w ~ U(-a, a), a = sqrt(6/fan_in)."""
    return variance_scaling(2.0, "fan_in", "uniform")


def orthogonal(scale: float = 1.0):
    """A (semi-)orthogonal matrix times ``scale`` (QR of a Gaussian matrix): W^T W = scale^2 I
    when n_in >= n_out (tall), W W^T = scale^2 I when wide. The QR runs in float32 (LAPACK has
    no bfloat16/float16 QR) or float64, then the result is cast to ``dtype``."""
    init = jinit.orthogonal(scale)

    def orthogonal_init(key, shape, dtype=jnp.float32):
        work = jnp.float64 if jnp.dtype(dtype) == jnp.float64 else jnp.float32
        return init(key, shape, work).astype(dtype)

    return orthogonal_init


xavier_normal, xavier_uniform = glorot_normal, glorot_uniform
kaiming_normal, kaiming_uniform = he_normal, he_uniform

_BY_NAME = {
    "zeros": zeros, "ones": ones, "normal": normal(), "small_random": small_random(),
    "uniform": uniform(), "lecun_normal": lecun_normal(), "lecun_uniform": lecun_uniform(),
    "glorot_normal": glorot_normal(), "glorot_uniform": glorot_uniform(),
    "xavier_normal": glorot_normal(), "xavier_uniform": glorot_uniform(),
    "he_normal": he_normal(), "he_uniform": he_uniform(), "kaiming_normal": he_normal(),
    "kaiming_uniform": he_uniform(), "orthogonal": orthogonal(),
}


_FACTORIES = {normal, small_random, uniform, lecun_normal, lecun_uniform, glorot_normal,
              glorot_uniform, he_normal, he_uniform, orthogonal}


def get(init) -> callable:
    """An initialiser from a callable ``init(key, shape, dtype)`` or a name like ``'he_normal'``."""
    if init in _FACTORIES:
        raise ValueError(f"{init.__name__} makes an initializer: pass {init.__name__}() "
                         f"(with parentheses) or the name {init.__name__!r}")
    if callable(init):
        return init
    if isinstance(init, str) and init in _BY_NAME:
        return _BY_NAME[init]
    raise ValueError(f"unknown initializer {init!r}{did_you_mean(init, _BY_NAME)}; "
                     f"expected one of {sorted(_BY_NAME)} or a function (key, shape, dtype)")
