"""Rosenblatt's perceptron: one threshold unit and its learning rule."""
from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp

from fnn import activations, validation
from fnn.core import Layer, serial
from fnn.layers.dense import Dense

__all__ = ["Perceptron", "PerceptronRun", "perceptron_rule"]


def Perceptron(activation="step", name: str = "perceptron") -> Layer:
    """y = f(x . w + b) with one output unit; f = step (Heaviside) by default, or e.g. sigmoid
    for the notes' logic units h(x) = sigmoid(theta_0 + theta_1 x_1 + theta_2 x_2).

    Shapes: x (batch, n) -> (batch, 1); params ``{'dense_0': {'w': (n, 1), 'b': (1,)}}``.
    """
    return serial(Dense(1), activations.get(activation), name=name)


class PerceptronRun(NamedTuple):
    """Result of :func:`perceptron_rule`: final ``w`` (n,), ``b`` (), and the number of
    misclassified examples in each epoch, ``errors`` (epochs,)."""
    w: jax.Array
    b: jax.Array
    errors: jax.Array


def perceptron_rule(x, t, *, epochs: int = 20, learning_rate: float = 1.0,
                    w=None, b=None) -> PerceptronRun:
    """The perceptron learning rule, one example at a time, in order, for ``epochs`` epochs:

        y = step(x_i . w + b);   w <- w + lr (t_i - y) x_i;   b <- b + lr (t_i - y)

    Converges in finitely many updates when the classes are linearly separable (AND, OR);
    on XOR it never stops making mistakes. Shapes: x (N, n), t (N,) in {0, 1}.
    Runs as one compiled ``lax.scan`` over epochs and examples.
    """
    epochs = validation.positive_int("perceptron_rule", "epochs", epochs)
    validation.number("perceptron_rule", "learning_rate", learning_rate, low=0, low_open=True)
    x = jnp.asarray(x)
    t = jnp.asarray(t).astype(x.dtype)
    if x.ndim != 2 or t.shape != x.shape[:1]:
        raise ValueError(f"perceptron_rule: expected x (N, n) and t (N,), got {x.shape} and {t.shape}")
    w = jnp.zeros(x.shape[1], x.dtype) if w is None else jnp.asarray(w, x.dtype)
    b = jnp.zeros((), x.dtype) if b is None else jnp.asarray(b, x.dtype)

    def example(carry, xt):
        w, b = carry
        xi, ti = xt
        error = ti - activations.step(xi @ w + b)
        return (w + learning_rate * error * xi, b + learning_rate * error), jnp.abs(error)

    def epoch(carry, _):
        carry, mistakes = jax.lax.scan(example, carry, (x, t))
        return carry, jnp.sum(mistakes).astype(jnp.int32)

    (w, b), errors = jax.lax.scan(epoch, (w, b), None, length=epochs)
    return PerceptronRun(w, b, errors)
