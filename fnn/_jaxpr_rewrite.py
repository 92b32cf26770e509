"""Re-evaluate a jaxpr with some equations replaced: the tool behind fnn's XLA:CPU layout fixes
(``fnn.sweep``'s canonical matmuls, the conv layers' canonical backward convolutions)."""
from __future__ import annotations

from typing import Callable

from jax.extend import core as jcore

# rewrite(eqn, invals) -> list of outputs, or None to bind the equation unchanged
Rewrite = Callable[[object, list], "list | None"]


def eval_jaxpr(jaxpr, consts, args, rewrite: Rewrite) -> list:
    """Evaluate ``jaxpr`` on ``args``, inlining nested jit calls and giving every equation to
    ``rewrite`` first; equations it declines (None) are bound as they are."""
    env = {}
    read = lambda v: v.val if isinstance(v, jcore.Literal) else env[v]
    env.update(zip(jaxpr.constvars, consts))
    env.update(zip(jaxpr.invars, args))
    for eqn in jaxpr.eqns:
        invals = [read(v) for v in eqn.invars]
        outs = rewrite(eqn, invals)
        if outs is None and eqn.primitive.name in ("pjit", "jit") and "jaxpr" in eqn.params:
            inner = eqn.params["jaxpr"]
            outs = eval_jaxpr(inner.jaxpr, inner.consts, invals, rewrite)
        elif outs is None:
            with eqn.ctx.manager:
                outs = eqn.primitive.bind(*invals, **eqn.primitive.get_bind_params(eqn.params))
            if not eqn.primitive.multiple_results:
                outs = [outs]
        for v, x in zip(eqn.outvars, outs):
            if not isinstance(v, jcore.DropVar):
                env[v] = x
    return [read(v) for v in jaxpr.outvars]
