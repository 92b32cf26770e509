"""Stochastic regularisers, active only in training: Dropout and GaussianNoise."""
from __future__ import annotations

import jax
import jax.numpy as jnp

from fnn.core import Layer, require_key
from fnn.validation import number

__all__ = ["Dropout", "GaussianNoise"]


def Dropout(rate: float, *, name: str = "dropout") -> Layer:
    """Inverted dropout: ``rate`` is the probability of DROPPING a unit (not keeping it).

    train:  m ~ Bernoulli(1 - rate) per element,  y = m * x / (1 - rate)
    eval:   y = x (no key needed)

    Kept units are scaled by 1/(1 - rate) in training, so E[y] = x and eval needs no
    rescaling. ``rate`` must be in [0, 1). Training needs a key:
    ``net.apply(params, state, x, key=jax.random.key(0), train=True)``.

    Shapes: any x -> y of the same shape; no params.
    """
    rate = number(name, "rate (the probability of dropping a unit)", rate, low=0, high=1,
                  high_open=True)

    def apply_fn(params, state, x, key, train):
        if not train:
            return x, state
        require_key(name, key)
        keep = jax.random.bernoulli(key, 1 - rate, x.shape)
        return jnp.where(keep, x / (1 - rate), jnp.zeros_like(x)), state

    return Layer(name, lambda key, shape: (shape, {}, {}), apply_fn)


def GaussianNoise(stddev: float, *, name: str = "gaussian_noise") -> Layer:
    """Additive Gaussian noise in training: y = x + stddev * N(0, 1); eval: y = x.

    Training needs a key (see :func:`Dropout`); ``stddev`` must be >= 0.
    Shapes: any x -> y of the same shape; no params.
    """
    stddev = number(name, "stddev", stddev, low=0)

    def apply_fn(params, state, x, key, train):
        if not train:
            return x, state
        require_key(name, key)
        return x + stddev * jax.random.normal(key, x.shape, x.dtype), state

    return Layer(name, lambda key, shape: (shape, {}, {}), apply_fn)
