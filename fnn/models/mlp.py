"""The multilayer perceptron."""
from __future__ import annotations

from typing import Sequence

from fnn import activations
from fnn.core import Layer, serial
from fnn.layers.dense import Dense

__all__ = ["MLP"]


def MLP(sizes: Sequence[int], activation="relu", *, output_activation=None, w_init=None,
        name: str = "mlp") -> Layer:
    """Dense layers of ``sizes`` (hidden sizes, then the output size) with ``activation``
    between them: h_l = f(h_{l-1} W_l + b_l), output = g(h_{L-1} W_L + b_L), g = identity
    unless ``output_activation`` is given.

    Params: ``{'dense_0': {'w', 'b'}, ..., 'dense_{L-1}': ...}`` (activations hold none).
    Shapes: x (batch, n_in) -> (batch, sizes[-1]).
    """
    sizes = list(sizes)
    if not sizes:
        raise ValueError(f"{name}: sizes must list at least the output size, got {sizes}")
    act = activations.get(activation)
    kwargs = {} if w_init is None else {"w_init": w_init}
    layers = []
    for i, units in enumerate(sizes):
        layers.append(Dense(units, **kwargs))
        if i < len(sizes) - 1:
            layers.append(act)
    if output_activation is not None:
        layers.append(activations.get(output_activation))
    return serial(*layers, name=name)
