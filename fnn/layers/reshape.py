"""Shape-only layers: Flatten and Reshape (the batch axis is always kept)."""
from __future__ import annotations

import math

from fnn.core import Layer
from fnn.validation import is_int

__all__ = ["Flatten", "Reshape"]


def Flatten(*, name: str = "flatten") -> Layer:
    """Flatten all but the batch axis: x (batch, d_1, ..., d_k) -> (batch, d_1*...*d_k).

    Row-major (C) order, channels last: an NHWC image flattens as (H, W, C), not PyTorch's
    (C, H, W) order, which matters when porting a Linear layer that follows a flatten.
    """
    return Layer(name, lambda key, shape: ((math.prod(shape),), {}, {}),
                 lambda params, state, x, key, train: (x.reshape(x.shape[0], -1), state))


def Reshape(shape, *, name: str = "reshape") -> Layer:
    """Reshape every example: x (batch, *in_shape) -> (batch, *shape), row-major order.

    ``shape`` excludes the batch axis; one entry may be -1 (inferred). The sizes must agree:
    prod(in_shape) == prod(shape).
    """
    if is_int(shape):
        shape = (shape,)
    if not (isinstance(shape, (tuple, list)) and all(is_int(d) and (d >= 1 or d == -1)
                                                     for d in shape)
            and list(shape).count(-1) <= 1):
        raise ValueError(f"{name}: shape must be a tuple of positive ints (batch axis excluded) "
                         f"with at most one -1, got {shape!r}")
    shape = tuple(int(d) for d in shape)

    def resolve(in_shape):
        size, known = math.prod(in_shape), math.prod(d for d in shape if d != -1)
        if size % known if -1 in shape else size != known:
            raise ValueError(f"{name}: cannot reshape examples of shape {tuple(in_shape)} "
                             f"({size} values) into {shape}")
        return tuple(size // known if d == -1 else d for d in shape)

    def apply_fn(params, state, x, key, train):
        return x.reshape(x.shape[0], *resolve(x.shape[1:])), state

    return Layer(name, lambda key, in_shape: (resolve(in_shape), {}, {}), apply_fn)
