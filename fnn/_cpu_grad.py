"""``value_and_grad`` whose backward pass XLA:CPU runs on its fast kernels inside loops.

JAX differentiates a channels-last convolution into two convolutions with permuted dimension
numbers (``dx`` with the kernel's I/O swapped, ``dw`` with the batch and feature axes of ``x``
and ``g`` exchanged), and max pooling into a select-and-scatter. Outside a loop XLA:CPU
transposes the convolutions' operands back to (N, *spatial, C) x (*spatial, I, O) and calls
its fast (YNNPACK) kernels; inside a ``while`` loop - every ``lax.scan`` of training steps,
as in ``fnn.fit`` - it leaves them as they are and runs generic loop nests: a 3x3, 16 -> 32
channel ``dw`` of batch 128 takes 25 ms as a jitted call and 890 ms inside a scan, a 2x2
max-pool gradient 17 ms a step.

:func:`value_and_grad` is ``jax.value_and_grad`` with the gradient's jaxpr re-evaluated on the
CPU backend with (1) every convolution written in channels-last dimension numbers on
transposed operands and (2) the select-and-scatter of non-overlapping, unpadded max-pool
windows written as a reshape, an argmax and a one-hot. Both give the same sums and route a
tied window's gradient to the same (first) cell; the layers themselves stay plain ``lax``
(so ``jax.jvp``, ``jacfwd`` and ``hessian`` work through them as usual). fnn's train steps
differentiate with it.
"""
from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fnn._jaxpr_rewrite import eval_jaxpr

__all__ = ["value_and_grad", "canonical_conv", "tiled_max_grad"]


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
    per axis of x, the strides equal to it) for the output cotangent ``g``: each window's
    cotangent goes to its first (row-major) maximum, cells past the last whole window get 0."""
    kept = tuple((n // k) * k for n, k in zip(x.shape, window))
    split = x[tuple(slice(0, m) for m in kept)].reshape(
        tuple(d for m, k in zip(kept, window) for d in (m // k, k)))
    rank = x.ndim
    to_last = (*range(0, 2 * rank, 2), *range(1, 2 * rank, 2))  # window cells last
    cells = split.transpose(to_last).reshape(*g.shape, math.prod(window))
    first = jax.nn.one_hot(jnp.argmax(cells, axis=-1), cells.shape[-1], dtype=g.dtype)
    dx = (first * g[..., None]).reshape(*g.shape, *window)
    dx = dx.transpose(tuple(int(i) for i in np.argsort(to_last))).reshape(kept)
    return jnp.pad(dx, [(0, n - m) for n, m in zip(x.shape, kept)])


def _rewrite(eqn, invals):
    name = eqn.primitive.name
    if name == "conv_general_dilated":
        return [canonical_conv(*invals, **eqn.params)]
    p = eqn.params
    if (name == "select_and_scatter_add" and p["select_prim"] is lax.ge_p
            and tuple(p["window_dimensions"]) == tuple(p["window_strides"])
            and all(tuple(pad) == (0, 0) for pad in p["padding"])):
        return [tiled_max_grad(*invals, tuple(p["window_dimensions"]))]
    return None


def value_and_grad(fun, *, has_aux: bool = False):
    """``jax.value_and_grad(fun, has_aux=has_aux)`` (positional arguments, gradient with
    respect to the first) whose convolution and max-pool gradients run on XLA:CPU's fast
    paths inside loops; on other backends ``jax.value_and_grad`` itself."""
    plain = jax.value_and_grad(fun, has_aux=has_aux)

    def wrapped(*args):
        if jax.default_backend() != "cpu":
            return plain(*args)
        closed, shape = jax.make_jaxpr(plain, return_shape=True)(*args)
        outs = eval_jaxpr(closed.jaxpr, closed.consts, jax.tree.leaves(args), _rewrite)
        return jax.tree.unflatten(jax.tree.structure(shape), outs)

    return wrapped
