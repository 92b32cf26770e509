"""PyTorch weights -> fnn params: ``from_torch(kind, state_dict_arrays) -> (params, state)``.

Layouts (PyTorch is channels first, fnn channels last)::

    Linear           weight (out, in)              -> w (in, out)
    ConvNd           weight (out, in/g, *k)        -> w (*k, in/g, out)
    ConvTransposeNd  weight (in, out/g, *k)        -> w (*k, out/g, in)    (no flip)
    BatchNormNd      weight, bias                  -> scale, b;  running_mean/var -> state
    LayerNorm        weight, bias                  -> scale, b
    bias                                           -> b

PyTorch's ConvTranspose weight is the kernel of the convolution it is the gradient of, and
so is fnn's :func:`fnn.ConvTranspose` ``w``; both ConvNd and ConvTransposeNd therefore map by
the same transpose (move the two leading axes to the end, reversed). Inputs must be moved
channels last too (``x.transpose(0, 2, 3, 1)`` for NCHW). A Linear layer after a flatten
needs its input features permuted from torch's (C, H, W) order to fnn's (H, W, C) order.
"""
from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from fnn._names import did_you_mean
from fnn.layers.recurrent import TORCH_RNN_KINDS, rnn_from_torch

__all__ = ["from_torch", "TORCH_KINDS"]

# kind -> (spatial rank of the weight or None, required keys, optional keys)
TORCH_KINDS = {
    "Linear": (None, {"weight"}, {"bias"}),
    **{f"Conv{n}d": (n, {"weight"}, {"bias"}) for n in (1, 2, 3)},
    **{f"ConvTranspose{n}d": (n, {"weight"}, {"bias"}) for n in (1, 2, 3)},
    **{f"BatchNorm{n}d": (None, {"weight", "bias", "running_mean", "running_var"},
                          {"num_batches_tracked"}) for n in (1, 2, 3)},
    "LayerNorm": (None, {"weight", "bias"}, set()),
}


def _array(kind, key, value, ndim):
    a = jnp.asarray(np.asarray(value))
    if a.ndim != ndim:
        raise ValueError(f"from_torch({kind!r}): expected {key!r} with {ndim} dims, got shape "
                         f"{tuple(a.shape)}")
    return a


def from_torch(kind: str, tensors: dict) -> tuple[dict, dict]:
    """Convert one PyTorch layer's ``state_dict`` (as NumPy arrays) to fnn ``(params, state)``.

    Args:
      kind: the torch module class name, one of ``TORCH_KINDS`` ('Linear', 'Conv1d',
        'Conv2d', 'Conv3d', 'ConvTranspose1d/2d/3d', 'BatchNorm1d/2d/3d', 'LayerNorm') or of
        ``TORCH_RNN_KINDS`` ('RNN', 'LSTM', 'GRU' and their cells; see
        :func:`fnn.layers.recurrent.rnn_from_torch` for the gate orders).
      tensors: ``{name: array}``, e.g. ``{k: v.numpy() for k, v in m.state_dict().items()}``.

    Returns ``(params, state)`` for the matching fnn layer (Dense, Conv, ConvTranspose,
    BatchNorm, LayerNorm); ``state`` is ``{}`` except for BatchNorm (``mean``, ``var``).
    Raises ValueError for an unknown kind, a missing or unexpected key, or a wrong rank.
    LayerNorm must be over the last axis only (a 1-d ``weight``).
    """
    if kind in TORCH_RNN_KINDS:  # RNN, LSTM, GRU and their cells: gate layouts differ
        return rnn_from_torch(kind, tensors)
    if kind not in TORCH_KINDS:
        known = [*TORCH_KINDS, *TORCH_RNN_KINDS]
        raise ValueError(f"from_torch: unknown kind {kind!r}{did_you_mean(kind, known)}; "
                         f"expected one of {sorted(known)}")
    rank, required, optional = TORCH_KINDS[kind]
    given = set(tensors)
    if not required <= given or not given <= required | optional:
        raise ValueError(f"from_torch({kind!r}): expected keys {sorted(required)}"
                         f"{' (optionally ' + str(sorted(optional)) + ')' if optional else ''}, "
                         f"got {sorted(given)}")
    params, state = {}, {}
    if kind == "Linear":
        params["w"] = _array(kind, "weight", tensors["weight"], 2).T
    elif rank is not None:  # Conv / ConvTranspose: (a, b, *k) -> (*k, b, a)
        w = _array(kind, "weight", tensors["weight"], rank + 2)
        params["w"] = jnp.transpose(w, (*range(2, rank + 2), 1, 0))
    else:  # BatchNorm, LayerNorm
        params["scale"] = _array(kind, "weight", tensors["weight"], 1)
    if "bias" in tensors:
        params["b"] = _array(kind, "bias", tensors["bias"], 1)
    if kind.startswith("BatchNorm"):
        state = {"mean": _array(kind, "running_mean", tensors["running_mean"], 1),
                 "var": _array(kind, "running_var", tensors["running_var"], 1)}
    return params, state
