"""Gradient checking by central differences, and pytree comparison helpers."""
from __future__ import annotations

from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np
from jax.flatten_util import ravel_pytree

from fnn.precision import suspended
from fnn.validation import number, positive_int

__all__ = ["GradientCheckError", "gradcheck", "tree_max_rel_diff", "path_name"]


class GradientCheckError(AssertionError):
    """``jax.grad`` and finite differences disagree beyond the tolerance."""


def path_name(path) -> str:
    """``params['dense_0']['w']`` for a pytree key path (``jax.tree_util.keystr`` form)."""
    return jax.tree_util.keystr(path) or "<root>"


def _rel_err(a, b, floor):
    """Elementwise |a - b| / max(|a|, |b|, floor)."""
    return np.abs(a - b) / np.maximum(np.maximum(np.abs(a), np.abs(b)), floor)


def _float64(a):
    """A floating ``a`` as a float64 device array (cast on the host: exact, and no program per
    shape); anything else as it is."""
    if not jnp.issubdtype(jnp.result_type(a), jnp.floating):
        return a
    return jax.device_put(np.asarray(a, np.float64))


def _ravel(params):
    """``ravel_pytree(params)``, its flat vector concatenated on the host (the same numbers, and
    no program per leaf shape); ``unravel``, which depends only on the leaves' sizes, shapes and
    dtypes, is taken from tracing ``ravel_pytree``."""
    unravels = []

    def flatten(tree):
        flat, unravel = ravel_pytree(tree)
        unravels.append(unravel)
        return flat

    spec = jax.eval_shape(flatten, params)
    leaves = [np.ravel(np.asarray(leaf)).astype(spec.dtype) for leaf in jax.tree.leaves(params)]
    flat = np.concatenate(leaves) if leaves else np.zeros(0, spec.dtype)
    return jax.device_put(flat), unravels[0]


def gradcheck(f: Callable, params, *args, eps: float = 1e-6, tol: float = 1e-6,
              floor: float = 1e-3, batch_size: int = 256) -> dict[str, float]:
    """Compare ``jax.grad(f)(params, *args)`` with central differences, in float64.

        g_num[i] = (f(p + eps e_i) - f(p - eps e_i)) / (2 eps)
        rel[i]   = |g_jax[i] - g_num[i]| / max(|g_jax[i]|, |g_num[i]|, floor)

    Central differences carry an absolute error of about 1e-10 |f| (round-off over 2 eps),
    so gradients smaller than ``floor`` are compared absolutely (error / floor).
    ``f(params, *args)`` must return a scalar. ``params`` and floating ``args`` are cast to
    float64 (x64 is switched on for the duration of the check), and so is every computation
    in ``f``: mixed-precision casts are suspended (:func:`fnn.precision.suspended`), whatever
    policy ``f`` uses. All 2n evaluations run vmapped, ``batch_size`` directions at a time.

    Returns ``{leaf path: worst relative error}``; raises :class:`GradientCheckError` naming the
    worst leaf when any error exceeds ``tol``.
    """
    number("gradcheck", "eps", eps, low=0, low_open=True)
    number("gradcheck", "tol", tol, low=0)
    number("gradcheck", "floor", floor, low=0, low_open=True)
    positive_int("gradcheck", "batch_size", batch_size)
    with jax.enable_x64(True), suspended():
        params = jax.tree.map(_float64, params)
        args = jax.tree.map(_float64, args)
        flat, unravel = _ravel(params)
        if flat.size == 0:
            raise ValueError("gradcheck: params has no floating-point leaves to check")
        fun = lambda v: f(unravel(v), *args)
        analytic = np.asarray(jax.jit(jax.grad(fun))(flat))  # one program, not one per op

        def central(direction):
            return (fun(flat + eps * direction) - fun(flat - eps * direction)) / (2 * eps)

        eye = jax.device_put(np.eye(flat.size, dtype=np.float64))
        numeric = np.asarray(jax.lax.map(central, eye, batch_size=min(batch_size, flat.size)))

        errors = _rel_err(analytic, numeric, floor)
        leaves = jax.tree_util.tree_flatten_with_path(params)[0]
        per_leaf = np.split(errors, np.cumsum([np.size(leaf) for _, leaf in leaves])[:-1])
        report = {path_name(p): float(np.max(e.astype(jnp.result_type(leaf)))) if e.size else 0.0
                  for (p, leaf), e in zip(leaves, per_leaf)}
    worst = max(report, key=report.get)
    if report[worst] > tol:
        raise GradientCheckError(
            f"gradcheck: jax.grad and central differences (eps={eps}) disagree at {worst}: "
            f"relative error {report[worst]:.3e} > tol {tol:.1e}; per leaf: "
            + ", ".join(f"{k}: {v:.1e}" for k, v in report.items()))
    return report


def tree_max_rel_diff(a, b, floor: float = 1e-12) -> float:
    """max over all leaves and elements of |a - b| / max(|a|, |b|, floor); trees must match."""
    number("tree_max_rel_diff", "floor", floor, low=0, low_open=True)
    sa, sb = jax.tree.structure(a), jax.tree.structure(b)
    if sa != sb:
        raise ValueError(f"tree_max_rel_diff: tree structures differ: {sa} vs {sb}")
    diffs = [float(np.max(_rel_err(np.asarray(x, np.float64), np.asarray(y, np.float64), floor)))
             if np.size(x) else 0.0 for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b))]
    return max(diffs, default=0.0)
