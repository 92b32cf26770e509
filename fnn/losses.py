"""Losses (scalar, averaged over the batch unless the name says otherwise) and penalties.

Shapes: predictions and targets are ``(batch, ...)``; class logits are ``(batch, classes)``
with integer labels ``(batch,)`` or one-hot/probability targets ``(batch, classes)``.

Mixed precision: float16/bfloat16 predictions, targets and parameters are cast to float32
first (:func:`fnn.precision.at_least_float32`), so every loss and penalty is computed and
returned in float32 (float64 stays float64).
"""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from fnn.precision import at_least_float32

__all__ = [
    "mse", "sum_of_halves", "mae", "softmax_cross_entropy", "binary_cross_entropy", "kl_divergence",
    "l1_penalty", "l2_penalty", "accuracy",
]


def _same_shape(name, a, b):
    if a.shape != b.shape:
        raise ValueError(f"{name}: predictions and targets must have the same shape, got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")


def mse(pred, target):
    """Mean squared error: mean((pred - target)^2) over every element."""
    _same_shape("mse", pred, target)
    pred, target = at_least_float32(pred), at_least_float32(target)
    return jnp.mean((pred - target) ** 2)


def sum_of_halves(pred, target):
    """The notes' E = sum 1/2 (target - output)^2, summed over every element (no mean)."""
    _same_shape("sum_of_halves", pred, target)
    pred, target = at_least_float32(pred), at_least_float32(target)
    return 0.5 * jnp.sum((target - pred) ** 2)


def mae(pred, target):
    """Mean absolute error: mean(|pred - target|)."""
    _same_shape("mae", pred, target)
    pred, target = at_least_float32(pred), at_least_float32(target)
    return jnp.mean(jnp.abs(pred - target))


def _class_targets(name, logits, labels):
    """One-hot/probability targets from integer labels (validated) or pass-through.

    Integer labels outside [0, classes) are rejected when their values are known (eager
    calls); under ``jit`` they cannot be inspected and would give an all-zero target row.
    """
    known = None if isinstance(labels, jax.core.Tracer) else np.asarray(labels)
    labels = jnp.asarray(labels)
    if logits.ndim != 2:
        raise ValueError(f"{name}: expected logits of shape (batch, classes), got {tuple(logits.shape)}")
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != logits.shape[:1]:
            raise ValueError(f"{name}: integer labels must have shape ({logits.shape[0]},) to match "
                             f"logits {tuple(logits.shape)}, got {tuple(labels.shape)}")
        if known is not None and known.size and (known.min() < 0 or known.max() >= logits.shape[1]):
            raise ValueError(f"{name}: integer labels must lie in [0, {logits.shape[1]}) for "
                             f"{logits.shape[1]} classes, got values from {known.min()} "
                             f"to {known.max()}")
        return jax.nn.one_hot(labels, logits.shape[1], dtype=logits.dtype)
    if labels.shape != logits.shape:
        raise ValueError(f"{name}: one-hot targets must have the logits' shape {tuple(logits.shape)}, "
                         f"got {tuple(labels.shape)} (integer labels must have an integer dtype)")
    return labels.astype(logits.dtype)


def softmax_cross_entropy(logits, labels):
    """Mean over the batch of -sum_c y_c log softmax(logits)_c, from logits.

    ``labels`` are integer classes (batch,) or one-hot/probabilities (batch, classes).
    Stable for logits of any magnitude (log-sum-exp shift). Gradient w.r.t. logits:
    (softmax(logits) - y) / batch.
    """
    logits = at_least_float32(logits)
    targets = _class_targets("softmax_cross_entropy", logits, labels)
    return -jnp.sum(targets * jax.nn.log_softmax(logits, axis=-1)) / logits.shape[0]


def binary_cross_entropy(logits, targets):
    """Mean of -[t log sigma(z) + (1 - t) log(1 - sigma(z))] from logits z, computed stably as
    softplus(z) - t z. Targets in [0, 1] of the logits' shape."""
    _same_shape("binary_cross_entropy", logits, targets)
    logits = at_least_float32(logits)
    targets = targets.astype(logits.dtype)
    return jnp.mean(jax.nn.softplus(logits) - targets * logits)


def kl_divergence(log_q, p):
    """KL(p || q) = sum_c p_c (log p_c - log q_c), averaged over the batch.

    ``log_q`` are log-probabilities (e.g. ``log_softmax`` output), ``p`` probabilities; both
    (batch, classes). Terms with p_c = 0 contribute 0.
    """
    _same_shape("kl_divergence", log_q, p)
    log_q = at_least_float32(log_q)
    p = p.astype(log_q.dtype)
    log_p = jnp.where(p > 0, jnp.log(jnp.where(p > 0, p, 1.0)), 0.0)
    return jnp.sum(p * (log_p - log_q)) / log_q.shape[0]


def _weights(params, include_biases: bool):
    """The leaves of ``params``, without those named ``b`` unless ``include_biases``."""
    leaves = jax.tree_util.tree_flatten_with_path(params)[0]
    return [at_least_float32(leaf) for path, leaf in leaves
            if include_biases or getattr(path[-1], "key", None) != "b"]


def l2_penalty(params, *, include_biases: bool = False):
    """1/2 sum_w w^2 over the weights (biases ``b`` skipped by default); its gradient is w,
    so ``loss + reg * l2_penalty(params)`` is the notes' ``dW += reg * W``."""
    return 0.5 * sum(jnp.sum(w ** 2) for w in _weights(params, include_biases))


def l1_penalty(params, *, include_biases: bool = False):
    """sum_w |w| over the weights (biases ``b`` skipped by default); drives weights to zero."""
    return sum(jnp.sum(jnp.abs(w)) for w in _weights(params, include_biases))


def accuracy(logits, labels):
    """Fraction of rows whose argmax matches the integer label (or the one-hot target's argmax)."""
    if labels.ndim == logits.ndim:
        labels = jnp.argmax(labels, axis=-1)
    predicted = jnp.argmax(logits, axis=-1).astype(labels.dtype)  # int32 labels under x64 too
    return jnp.mean((predicted == labels).astype(jnp.float32))
