"""``value_and_grad`` whose backward pass XLA:CPU runs on its fast kernels inside loops.

A workaround for jax-ml/jax#12868 (https://github.com/jax-ml/jax/issues/12868, XLA:CPU runs
convolutions slowly inside a ``while`` loop). JAX differentiates a channels-last convolution
into two convolutions with permuted dimension numbers (``dx`` with the kernel's I/O swapped,
``dw`` with the batch and feature axes of ``x`` and ``g`` exchanged), max pooling into a
select-and-scatter, and a 2-D matmul ``x @ w`` into a ``dw`` that contracts dimension 0 of
both operands (under ``vmap``, a batched dot contracting dimension 1). Outside a loop XLA:CPU
transposes such operands to the standard layouts and calls its fast kernels; inside a
``while`` loop - every ``lax.scan`` of training steps - it runs them as generic loop nests.

:func:`value_and_grad` is ``jax.value_and_grad`` with, when the computation runs on the CPU
(:func:`target_platform`; on GPU and TPU it is ``jax.value_and_grad`` itself):

1. every convolution of the gradient's jaxpr computed channels-last on transposed operands
   (:func:`canonical_conv`; the same sums, up to rounding);
2. every select-and-scatter of non-overlapping, unpadded max-pool windows written as a
   reshape and a one-hot (:func:`tiled_max_grad`), routing each window's cotangent to the
   very cell select-and-scatter picks, NaN and infinities included;
3. with ``canonical_matmuls=True``, every plain 2-D matmul of ``fun`` differentiated as
   standard matmuls on materialised transposes (:func:`canonical_matmul`; same values up to
   rounding), before ``fun`` is differentiated.

(1) and (2) reach into the bodies of ``scan``, ``cond``, ``while``, ``jax.checkpoint``,
``closed_call`` and ``custom_jvp``/``custom_vjp`` functions (:mod:`fnn._jaxpr_rewrite`);
anywhere else (``shard_map``, ...) a warning names what stays on the slow path. (3) rewrites
the matmuls of ``fun`` itself and of the ``jit`` calls in it, not those in loop bodies. The
layers stay plain ``lax``, so ``jax.jvp``, ``jacfwd`` and ``hessian`` work through them.

Delete this module (and call ``jax.value_and_grad``) when the ``cpu_grad`` row of
``scripts/bench.py`` shows plain JAX as fast as the rewrite.
"""
from __future__ import annotations

import contextlib
import contextvars
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jax.extend.core import primitives as prims

from fnn._jaxpr_rewrite import Rewriter
from fnn.validation import flag, function, string

__all__ = ["value_and_grad", "target_platform", "force_platform", "canonical_conv",
           "tiled_max_grad", "canonical_matmul"]

_FORCED = contextvars.ContextVar("fnn_cpu_grad_forced_platform", default=None)


# ----------------------------------------------------------------------------- the decision

@contextlib.contextmanager
def force_platform(platform: str):
    """Within the block, :func:`target_platform` answers ``platform`` unless a caller passes
    one explicitly: for tests, e.g. ``with force_platform("gpu"):`` on a CPU-only machine.
    Decisions are taken when a function is traced; a jitted function keeps the one of its
    first trace."""
    token = _FORCED.set(string("force_platform", "platform", platform))
    try:
        yield
    finally:
        _FORCED.reset(token)


def target_platform(args, platform: str | None = None) -> str:
    """The platform (``"cpu"``, ``"gpu"``, ``"tpu"``, ...) a computation on ``args`` runs on.

    In order: ``platform`` when given; the one :func:`force_platform` set; when every array
    leaf of ``args`` is concrete, the platform of their devices (the committed arrays', if
    any: they fix where jit runs); under a trace, where nothing says which backend the
    enclosing jit compiles for, the platform of ``jax.config.jax_default_device`` if set,
    else ``jax.default_backend()``."""
    if platform is not None:
        return platform
    forced = _FORCED.get()
    if forced is not None:
        return forced
    leaves = [a for a in jax.tree.leaves(args) if isinstance(a, jax.Array)]
    if leaves and not any(isinstance(a, jax.core.Tracer) for a in leaves):
        deciding = [a for a in leaves if a.committed] or leaves
        platforms = sorted({d.platform for a in deciding for d in a.devices()})
        if len(platforms) > 1:
            raise ValueError(f"value_and_grad: the arguments live on devices of several "
                             f"platforms ({', '.join(platforms)}); pass platform= to say where "
                             f"the computation runs")
        return platforms[0]
    device = jax.config.jax_default_device
    if device is not None:
        return getattr(device, "platform", device)  # a Device, or a platform name
    return jax.default_backend()


# ----------------------------------------------------------------------------- the rewrites

def _channels_last(n: int) -> lax.ConvDimensionNumbers:
    """x (N, *spatial, C), kernel (*spatial, I, O), y (N, *spatial, C)."""
    io = (0, n + 1, *range(1, n + 1))
    return lax.ConvDimensionNumbers(io, (n + 1, n, *range(n)), io)


def canonical_conv(lhs, rhs, *, dimension_numbers: lax.ConvDimensionNumbers, **params):
    """``lax.conv_general_dilated`` (any dimension numbers, all other ``params`` as there)
    computed on operands transposed to channels-last, the result transposed back."""
    lhs_spec, rhs_spec, out_spec = dimension_numbers
    y = lax.conv_general_dilated(
        lhs.transpose((lhs_spec[0], *lhs_spec[2:], lhs_spec[1])),
        rhs.transpose((*rhs_spec[2:], rhs_spec[1], rhs_spec[0])),
        dimension_numbers=_channels_last(len(lhs_spec) - 2), **params)
    wanted = (out_spec[0], *out_spec[2:], out_spec[1])  # where y's axis i goes in the output
    return y.transpose(tuple(int(i) for i in np.argsort(wanted)))


def tiled_max_grad(g, x, window):
    """The gradient of max pooling ``x`` over non-overlapping, unpadded windows (``window``
    per axis of x, the strides equal to it) for the output cotangent ``g`` (x's shape with
    each axis n -> n // k): cells past the last whole window get 0, and each window's cotangent
    goes to one cell, the one XLA's select-and-scatter with ``ge`` picks. It scans the window's
    cells c_0, c_1, ... in row-major order and moves the choice s to c_i unless s >= c_i:
    without NaN, the first maximum (ties stay with the earlier cell); a NaN takes the choice
    and hands it on to the next cell, so a window is routed as if it began after its last
    NaN (to the NaN itself when that is the last cell)."""
    kept = tuple((n // k) * k for n, k in zip(x.shape, window))
    split = x[tuple(slice(0, m) for m in kept)].reshape(
        tuple(d for m, k in zip(kept, window) for d in (m // k, k)))
    rank = x.ndim
    to_last = (*range(0, 2 * rank, 2), *range(1, 2 * rank, 2))  # window cells last
    cells = split.transpose(to_last).reshape(*g.shape, math.prod(window))
    best, chosen = cells[..., 0], jnp.zeros(g.shape, jnp.int32)
    for i in range(1, cells.shape[-1]):
        move = ~(best >= cells[..., i])
        best, chosen = jnp.where(move, cells[..., i], best), jnp.where(move, i, chosen)
    one_hot = jax.nn.one_hot(chosen, cells.shape[-1], dtype=jnp.bool_)
    dx = jnp.where(one_hot, g[..., None], jnp.zeros((), g.dtype)).reshape(*g.shape, *window)
    dx = dx.transpose(tuple(int(i) for i in np.argsort(to_last))).reshape(kept)
    return jnp.pad(dx, [(0, n - m) for n, m in zip(x.shape, kept)])


def _materialize(a):
    return a + jnp.zeros((), a.dtype)  # a separate buffer, so XLA cannot fold the transpose


@jax.custom_vjp
def canonical_matmul(x, w):
    """``x @ w`` for x (n, k), w (k, m), differentiated as ``dx = g @ w^T``, ``dw = x^T @ g``
    on materialised transposes: standard (batched, under vmap) matmuls, where JAX's own ``dw``
    contracts the leading axis of both operands."""
    return x @ w


def _matmul_fwd(x, w):
    return x @ w, (x, w)


def _matmul_bwd(residuals, g):
    x, w = residuals
    return g @ _materialize(w.T), _materialize(x.T) @ g


canonical_matmul.defvjp(_matmul_fwd, _matmul_bwd)


def _gradient_rule(eqn):
    """Convolutions -> canonical_conv; tiled max-pool select-and-scatters -> tiled_max_grad."""
    p = eqn.params
    if eqn.primitive is prims.conv_general_dilated_p:
        sharding = p.get("out_sharding")  # an explicit output sharding names axes of y's layout
        if sharding is None or all(axis is None for axis in sharding.spec):
            return lambda lhs, rhs: [canonical_conv(lhs, rhs, **p)]
        return None
    if (eqn.primitive is prims.select_and_scatter_add_p and p["select_prim"] is lax.ge_p
            and tuple(p["window_dimensions"]) == tuple(p["window_strides"])
            and all(tuple(pad) == (0, 0) for pad in p["padding"])):
        return lambda g, x: [tiled_max_grad(g, x, tuple(p["window_dimensions"]))]
    return None


def _matmul_rule(eqn):
    """``x @ w`` of two 2-D arrays of one float dtype, default precision and output dtype ->
    canonical_matmul."""
    if eqn.primitive is not prims.dot_general_p or len(eqn.invars) != 2:
        return None
    x, w = (v.aval for v in eqn.invars)
    p = eqn.params
    plain = (p["dimension_numbers"] == (((1,), (0,)), ((), ())) and x.ndim == 2
             and w.ndim == 2 and x.dtype == w.dtype and jnp.issubdtype(x.dtype, jnp.floating)
             and p.get("precision") is None
             and p.get("preferred_element_type") in (None, x.dtype))
    return (lambda x, w: [canonical_matmul(x, w)]) if plain else None


# ----------------------------------------------------------------------------- the entry point

def _rewritten(f, rule, *, nested: bool):
    """``f`` (positional arguments) traced to a jaxpr and re-evaluated with ``rule``."""

    def wrapped(*args):
        closed, shape = jax.make_jaxpr(f, return_shape=True)(*args)
        rewriter = Rewriter(rule, nested=nested)
        outs = rewriter(closed.jaxpr, closed.consts, jax.tree.leaves(args))
        if rewriter.kept:
            warnings.warn(f"value_and_grad: convolutions or max-pool gradients inside "
                          f"{', '.join(sorted(rewriter.kept))} stay on XLA:CPU's slow path "
                          f"(jax-ml/jax#12868): fnn rewrites them only inside the scan, cond, "
                          f"while, checkpoint, closed_call, custom_jvp and custom_vjp bodies "
                          f"it can re-trace", stacklevel=3)
        return jax.tree.unflatten(jax.tree.structure(shape), outs)

    return wrapped


def value_and_grad(fun, *, has_aux: bool = False, canonical_matmuls: bool = False,
                   platform: str | None = None):
    """``jax.value_and_grad(fun, has_aux=has_aux)`` (positional arguments, the gradient with
    respect to the first) whose gradient XLA:CPU runs on its fast kernels inside loops.

    Args:
      fun: ``(*args) -> value`` (a float scalar), or ``-> (value, aux)`` with ``has_aux``.
      has_aux: as in ``jax.value_and_grad``.
      canonical_matmuls: on the CPU, differentiate ``fun``'s plain 2-D matmuls as
        :func:`canonical_matmul` (worth it under ``vmap``, as in ``fnn.sweep``).
      platform: where the computation runs (``"cpu"``, ``"gpu"``, ...), e.g. the platform of
        the devices the caller trains on; None: :func:`target_platform` decides at each call
        (from the arguments' devices when they are concrete arrays, else, under a trace, from
        JAX's default device).

    Returns ``grad_fn(*args) -> (value, grads)`` (``((value, aux), grads)`` with has_aux).
    On the CPU: the gradient's jaxpr re-evaluated with convolutions and tiled max-pool
    gradients rewritten (see the module docstring); elsewhere ``jax.value_and_grad``'s own.
    """
    function("value_and_grad", "fun", fun, "(*args) -> value (or (value, aux) with has_aux)")
    has_aux = flag("value_and_grad", "has_aux", has_aux)
    canonical_matmuls = flag("value_and_grad", "canonical_matmuls", canonical_matmuls)
    platform = string("value_and_grad", "platform", platform, none_ok=True)
    plain = jax.value_and_grad(fun, has_aux=has_aux)

    def grad_fn(*args):
        if target_platform(args, platform) != "cpu":
            return plain(*args)
        f = _rewritten(fun, _matmul_rule, nested=False) if canonical_matmuls else fun
        return _rewritten(jax.value_and_grad(f, has_aux=has_aux), _gradient_rule,
                          nested=True)(*args)

    return grad_fn
