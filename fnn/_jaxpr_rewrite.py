"""Re-evaluate a jaxpr with some equations replaced: the tool behind fnn's XLA:CPU gradient
rewrites (:mod:`fnn._cpu_grad`).

A *rule* looks at one equation and returns the function that computes it instead (called with
the equation's input values, returning the list of its outputs), or None to keep it::

    rule(eqn) -> None | (lambda *invals: [out, ...])

:class:`Rewriter` evaluates a jaxpr under the current trace, giving every equation to the rule
first. Nested ``jit`` calls are always inlined. With ``nested=True`` it also rewrites inside
the sub-jaxprs of ``scan``, ``cond``, ``while``, ``remat`` (``jax.checkpoint``),
``closed_call`` and ``custom_jvp_call``/``custom_vjp_call``: each sub-jaxpr the rule would
change is re-traced through the rewriter and the primitive bound with the new one (a custom
derivative keeps its own rule: only its primal computation is rewritten). Any other primitive
whose sub-jaxprs hold an equation the rule wants (``shard_map``, ``custom_linear_solve``, ...)
is bound unchanged and its name recorded in ``Rewriter.kept``, for the caller to report.
"""
from __future__ import annotations

from typing import Callable

import jax
from jax.extend import core as jcore
from jax.extend.core import primitives as prims

# rule(eqn) -> None (keep the equation) or replacement(*invals) -> list of outputs
Rule = Callable[[jcore.JaxprEqn], "Callable[..., list] | None"]

RETRACEABLE = frozenset({prims.scan_p, prims.cond_p, prims.while_p, prims.remat_p,
                         prims.closed_call_p, prims.custom_jvp_call_p, prims.custom_vjp_call_p})


def wanted(jaxpr: jcore.Jaxpr, rule: Rule) -> bool:
    """Whether ``rule`` takes an equation of ``jaxpr`` or of any jaxpr nested in it."""
    return any(rule(eqn) is not None
               or any(wanted(sub, rule) for sub in jcore.jaxprs_in_params(eqn.params))
               for eqn in jaxpr.eqns)


class Rewriter:
    """``Rewriter(rule, nested=...)(jaxpr, consts, args)``: the outputs of ``jaxpr`` on
    ``args`` (flat lists), with the equations ``rule`` takes computed its way.

    ``kept``: names of the primitives whose sub-jaxprs held an equation the rule takes but
    that could not be rewritten (only with ``nested=True``; empty when all were)."""

    def __init__(self, rule: Rule, *, nested: bool):
        self.rule, self.nested, self.kept = rule, nested, set()

    def __call__(self, jaxpr: jcore.Jaxpr, consts, args) -> list:
        env = {}
        read = lambda v: v.val if isinstance(v, jcore.Literal) else env[v]
        env.update(zip(jaxpr.constvars, consts))
        env.update(zip(jaxpr.invars, args))
        for eqn in jaxpr.eqns:
            outs = self._equation(eqn, [read(v) for v in eqn.invars])
            for v, x in zip(eqn.outvars, outs):
                if not isinstance(v, jcore.DropVar):
                    env[v] = x
        return [read(v) for v in jaxpr.outvars]

    def _equation(self, eqn, invals) -> list:
        replacement = self.rule(eqn)
        if replacement is not None:
            return replacement(*invals)
        if eqn.primitive is prims.jit_p:
            inner = eqn.params["jaxpr"]
            return self(inner.jaxpr, inner.consts, invals)
        params = self._params(eqn) if self.nested else eqn.params
        with eqn.ctx.manager:
            outs = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(params))
        return outs if eqn.primitive.multiple_results else [outs]

    def _params(self, eqn) -> dict:
        """``eqn.params`` with every sub-jaxpr the rule would change re-traced through the
        rewriter; ``eqn.params`` itself when none would, or when they cannot be."""
        if not any(wanted(sub, self.rule) for sub in jcore.jaxprs_in_params(eqn.params)):
            return eqn.params
        new = {}
        if eqn.primitive in RETRACEABLE:
            for name, value in eqn.params.items():
                if isinstance(value, tuple) and any(isinstance(v, jcore.ClosedJaxpr) for v in value):
                    new[name] = tuple(self._retrace(v) for v in value)
                elif isinstance(value, (jcore.ClosedJaxpr, jcore.Jaxpr)):
                    new[name] = self._retrace(value)
        if not new or any(v is None or (isinstance(v, tuple) and None in v)
                          for v in new.values()):
            self.kept.add(eqn.primitive.name)
            return eqn.params
        return {**eqn.params, **new}

    def _retrace(self, sub):
        """``sub`` (a ClosedJaxpr, or an open Jaxpr) re-traced through the rewriter, with the
        same input and output types; None if that cannot be done."""
        closed = sub if isinstance(sub, jcore.ClosedJaxpr) else jcore.ClosedJaxpr(sub, ())
        if not all(hasattr(a, "shape") and hasattr(a, "dtype") for a in closed.in_avals):
            return None  # tokens and other non-array inputs
        specs = [jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type)
                 for a in closed.in_avals]
        new = jax.make_jaxpr(lambda *args: self(closed.jaxpr, closed.consts, args))(*specs)
        same_types = (new.in_avals == closed.in_avals and new.out_avals == closed.out_avals)
        if not same_types or (isinstance(sub, jcore.Jaxpr) and new.consts):
            return None
        return new if isinstance(sub, jcore.ClosedJaxpr) else new.jaxpr

