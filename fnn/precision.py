"""Mixed precision: the dtypes parameters are stored, computed and returned in (a
:class:`Policy`, in the spirit of DeepMind's jmp), and dynamic loss scaling for float16.

    policy = fnn.precision.get_policy("params=float32,compute=bfloat16,output=float32")
    fnn.fit(objective, params, opt, data, precision=policy)     # or precision="compute=bfloat16"

What is cast where:

* **The train step** (``fit``, ``sweep``, ``train_step``) runs the objective through
  :func:`cast_objective`: the master params (``param_dtype``, float32) and the floating leaves
  of each batch are cast to ``compute_dtype`` first, so every layer computes in it. The
  gradient flows back through the casts, so it arrives in ``param_dtype``; the optimizer state
  is made from and updated with the params, so it stays float32 too.
* **A network** wrapped by :func:`cast_layer` casts at its boundary: params and float inputs to
  ``compute_dtype``, its output to ``output_dtype``.
* **Float32 islands**: BatchNorm and LayerNorm statistics, softmax / log_softmax, the losses
  and the penalties compute in float32 when handed narrower floats (:func:`at_least_float32`);
  BatchNorm's running statistics stay float32, and an objective under a policy returns its
  loss and metrics in float32.
* **float16** has a narrow range (largest 65504, smallest normal 6.1e-5), so small gradients
  underflow: a float16 policy scales the loss (:class:`DynamicLossScale`). The step
  differentiates ``scale * loss``, divides the gradient by ``scale``, and a step whose
  gradient overflows is skipped by the NaN guard's skip (``fit`` turns it on) while the scale
  halves. The scale is a field of the train state, so checkpoints carry it.
* :func:`fnn.gradcheck` runs in float64 whatever policy its function uses (:func:`suspended`).
"""
from __future__ import annotations

import contextlib
import contextvars
import copy
import dataclasses
import functools
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from fnn.core import Layer, as_layer
from fnn.optim.hyperparams import HyperparamFunction
from fnn.validation import floating_dtype, function, number, one_of, positive_int

__all__ = ["Policy", "get_policy", "DynamicLossScale", "LossScaleState", "cast_objective",
           "cast_layer", "at_least_float32", "suspended"]

_SUSPENDED = contextvars.ContextVar("fnn_precision_suspended", default=False)


@contextlib.contextmanager
def suspended():
    """Within the block every :class:`Policy` cast is the identity, so a function computes in
    the dtypes it is given (``gradcheck`` checks in float64 this way). Casts are decided when a
    function is traced: a jitted function keeps the casts of its first trace."""
    token = _SUSPENDED.set(True)
    try:
        yield
    finally:
        _SUSPENDED.reset(token)


def at_least_float32(x):
    """``x`` cast to float32 if it is a floating array narrower than 32 bits (float16,
    bfloat16); anything else (float32, float64, ints, bools, keys, non-arrays) unchanged."""
    dtype = getattr(x, "dtype", None)
    if dtype is not None and jnp.issubdtype(dtype, jnp.floating) and dtype.itemsize < 4:
        return x.astype(jnp.float32)
    return x


def _cast(tree, dtype):
    """The floating leaves of ``tree`` cast to ``dtype``; other leaves unchanged."""
    if _SUSPENDED.get():
        return tree

    def cast(x):
        old = getattr(x, "dtype", None)
        if old is None or old == dtype or not jnp.issubdtype(old, jnp.floating):
            return x
        return jnp.asarray(x).astype(dtype)

    return jax.tree.map(cast, tree)


def _keep_dtypes(new, old):
    """``new`` with every floating leaf cast back to the dtype of its twin in ``old``."""
    return jax.tree.map(lambda n, o: _cast(n, o.dtype) if hasattr(o, "dtype") else n, new, old)


@dataclasses.dataclass(frozen=True)
class DynamicLossScale:
    """Dynamic loss scaling (Micikevicius et al. 2018, "Mixed Precision Training"; jmp's
    ``DynamicLossScale``, PyTorch's ``GradScaler``): the settings, static and hashable. The
    scale itself is a :class:`LossScaleState` in the train state. After each step::

        gradient finite:  counter' = (counter + 1) mod period
                          scale'   = scale * factor   if counter + 1 == period   else scale
        overflow (skip):  counter' = 0,  scale' = max(scale / factor, minimum)

    Args: ``initial`` scale (> 0; 2**15, half of float16's largest value, as jmp and PyTorch);
    ``period``: finite steps between growths; ``factor`` (>= 1; 1 keeps a static scale);
    ``minimum`` (> 0): the scale never falls below it.
    """
    initial: float = 2.0 ** 15
    period: int = 2000
    factor: float = 2.0
    minimum: float = 1.0

    def __post_init__(self):
        set_ = lambda name, value: object.__setattr__(self, name, value)
        set_("initial", number("DynamicLossScale", "initial", self.initial, low=0, low_open=True))
        set_("period", positive_int("DynamicLossScale", "period", self.period))
        set_("factor", number("DynamicLossScale", "factor", self.factor, low=1))
        set_("minimum", number("DynamicLossScale", "minimum", self.minimum, low=0, low_open=True))

    def init(self) -> LossScaleState:
        """The starting state: ``scale = initial`` (float32 scalar), ``counter = 0`` (int32)."""
        return LossScaleState(jnp.asarray(self.initial, jnp.float32), jnp.zeros((), jnp.int32))

    def adjust(self, state: LossScaleState, finite) -> LossScaleState:
        """The state after a step whose gradient was finite (bool scalar ``finite``) or not."""
        due = state.counter + 1 >= self.period
        largest = jnp.finfo(jnp.float32).max
        grown = jnp.where(due, jnp.minimum(state.scale * self.factor, largest), state.scale)
        scale = jnp.where(finite, grown, jnp.maximum(state.scale / self.factor, self.minimum))
        counter = jnp.where(finite & ~due, state.counter + 1, jnp.zeros_like(state.counter))
        return LossScaleState(scale, counter)


class LossScaleState(NamedTuple):
    """The loss scale of a run (the train state's ``loss_scale``): ``scale`` (float32 scalar)
    and ``counter`` (int32 scalar: finite steps since the scale last changed)."""
    scale: jax.Array
    counter: jax.Array

    def scale_loss(self, loss):
        """``scale * loss`` (in the loss's dtype)."""
        return loss * self.scale.astype(loss.dtype)

    def unscale(self, grads):
        """``g / scale`` for every inexact leaf of ``grads`` (in its own dtype)."""
        return jax.tree.map(lambda g: g / self.scale.astype(g.dtype)
                            if jnp.issubdtype(g.dtype, jnp.inexact) else g, grads)


@dataclasses.dataclass(frozen=True)
class Policy:
    """Which dtype parameters are stored in (``param_dtype``), computed in
    (``compute_dtype``) and returned in (``output_dtype``), each a floating dtype or its name
    (default float32 for all three: full precision). ``loss_scale``: a
    :class:`DynamicLossScale` to scale the loss with; None (the default) means
    ``DynamicLossScale()`` for float16 compute and no scaling otherwise (bfloat16 has
    float32's range and needs none). See :attr:`loss_scaling`.

    The casts touch floating leaves only; ints, bools and PRNG keys pass unchanged.
    ``str(policy)`` is the form :func:`get_policy` reads.
    """
    param_dtype: Any = jnp.float32
    compute_dtype: Any = jnp.float32
    output_dtype: Any = jnp.float32
    loss_scale: DynamicLossScale | None = None

    def __post_init__(self):
        for name in ("param_dtype", "compute_dtype", "output_dtype"):
            object.__setattr__(self, name, floating_dtype("Policy", name, getattr(self, name)))
        if self.loss_scale is not None and not isinstance(self.loss_scale, DynamicLossScale):
            raise TypeError(f"Policy: loss_scale must be an fnn.precision.DynamicLossScale or "
                            f"None, got {self.loss_scale!r}")

    def cast_to_param(self, tree):
        """The floating leaves of ``tree`` in ``param_dtype``."""
        return _cast(tree, self.param_dtype)

    def cast_to_compute(self, tree):
        """The floating leaves of ``tree`` in ``compute_dtype``."""
        return _cast(tree, self.compute_dtype)

    def cast_to_output(self, tree):
        """The floating leaves of ``tree`` in ``output_dtype``."""
        return _cast(tree, self.output_dtype)

    @property
    def loss_scaling(self) -> DynamicLossScale | None:
        """The loss scaling the train step applies: ``loss_scale`` if given, else
        ``DynamicLossScale()`` for float16 compute, else None."""
        if self.loss_scale is not None:
            return self.loss_scale
        return DynamicLossScale() if self.compute_dtype == jnp.float16 else None

    def __str__(self) -> str:
        return (f"params={self.param_dtype.name},compute={self.compute_dtype.name},"
                f"output={self.output_dtype.name}")


_KEYS = {"params": "param_dtype", "compute": "compute_dtype", "output": "output_dtype"}
_SHORT = {"bf16": "bfloat16", "f16": "float16", "half": "float16", "f32": "float32",
          "full": "float32", "f64": "float64"}


def get_policy(spec, *, who: str = "get_policy") -> Policy:
    """A :class:`Policy` from ``spec``: a Policy (returned as is) or a string of comma-separated
    ``key=dtype`` items, keys ``params``, ``compute``, ``output`` (an omitted one is float32),
    dtypes by name (``bfloat16``, ``float16``, ``float32``, ``float64``) or short name (``bf16``,
    ``f16``/``half``, ``f32``/``full``, ``f64``)::

        get_policy("params=float32,compute=bfloat16,output=float32")
        get_policy("compute=f16")        # float16 compute: dynamic loss scaling
    """
    if isinstance(spec, Policy):
        return spec
    if not isinstance(spec, str):
        raise TypeError(f"{who}: a precision policy must be an fnn.precision.Policy or a string "
                        f"such as 'params=float32,compute=bfloat16,output=float32', got {spec!r}")
    fields: dict = {}
    for item in spec.split(","):
        key, sep, value = (part.strip() for part in item.partition("="))
        if not sep:
            raise ValueError(f"{who}: expected 'key=dtype' items such as 'compute=bfloat16', "
                             f"got {item.strip()!r} in {spec!r}")
        one_of(who, "a policy key", key, tuple(_KEYS))
        if _KEYS[key] in fields:
            raise ValueError(f"{who}: {key!r} is given twice in {spec!r}")
        fields[_KEYS[key]] = _SHORT.get(value, value)
    return Policy(**fields)


def cast_objective(objective: Callable, policy) -> Callable:
    """``objective`` computed under ``policy`` (a :class:`Policy` or its string)::

        loss, (state', metrics) = objective(cast_to_compute(params), state,
                                            cast_to_compute(batch), key, train)

    returning the loss and metrics in (at least) float32 and ``state'`` in the dtypes of
    ``state`` (BatchNorm's running statistics stay float32). The gradient with respect to
    ``params`` comes back in the params' own dtype. An objective with runtime
    hyperparameters (a :class:`fnn.optim.HyperparamFunction`, e.g. ``fnn.supervised``'s)
    stays one, of the same class, with the same hyperparameters and attributes (``net``,
    ``check_data``): only its rule is wrapped; of another function the attributes are kept.
    The trainers cast once per run (:func:`fnn.train.objective.objective_value`).
    """
    function("cast_objective", "objective", objective,
             "(params, state, batch, key, train) -> (loss, (state, metrics))")
    policy = get_policy(policy, who="cast_objective")

    def computed(fn, params, state, batch, key, train):
        loss, (new_state, metrics) = fn(policy.cast_to_compute(params), state,
                                        policy.cast_to_compute(batch), key, train)
        return at_least_float32(loss), (_keep_dtypes(new_state, state),
                                        jax.tree.map(at_least_float32, metrics))

    if isinstance(objective, HyperparamFunction):
        rule = objective.rule

        @functools.wraps(rule)
        def cast_rule(hyperparams, params, state, batch, key, train):
            return computed(functools.partial(rule, hyperparams), params, state, batch, key,
                            train)

        cast = copy.copy(objective)
        cast.rule = cast_rule
        return cast

    @functools.wraps(objective)
    def cast(params, state, batch, key, train):
        return computed(objective, params, state, batch, key, train)

    return cast


def cast_layer(net, policy) -> Layer:
    """``net`` casting at its boundary under ``policy`` (a :class:`Policy` or its string):
    ``init`` makes its params in ``param_dtype``; ``apply`` computes
    ``cast_to_output(net(cast_to_compute(params), cast_to_compute(x)))`` and returns the state
    in the dtypes it came in. Same name, params and state as ``net``.
    """
    net = as_layer(net, "cast_layer", "net")
    policy = get_policy(policy, who="cast_layer")

    def init_fn(key, input_shape):
        shape, params, state = net.init_fn(key, input_shape)
        return shape, policy.cast_to_param(params), state

    def apply_fn(params, state, x, key, train):
        y, new_state = net.apply_fn(policy.cast_to_compute(params), state,
                                    policy.cast_to_compute(x), key, train)
        return policy.cast_to_output(y), _keep_dtypes(new_state, state)

    return dataclasses.replace(net, init_fn=init_fn, apply_fn=apply_fn)
