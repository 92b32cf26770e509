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

import re

import jax
import jax.numpy as jnp
import numpy as np

from fnn._names import did_you_mean
from fnn.layers.recurrent import GRUCell, LSTMCell, SimpleRNNCell

__all__ = ["from_torch", "TORCH_KINDS", "rnn_from_torch", "TORCH_RNN_KINDS"]

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
        :func:`rnn_from_torch` below for the gate orders).
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

# ----------------------------------------------------------------------------- recurrent layers

TORCH_RNN_KINDS = {"RNN": SimpleRNNCell, "LSTM": LSTMCell, "GRU": GRUCell,
                   "RNNCell": SimpleRNNCell, "LSTMCell": LSTMCell, "GRUCell": GRUCell}
_KEY = re.compile(r"^(weight|bias)_(ih|hh)(?:_l(\d+)(_reverse)?)?$")


def _as_array(v):
    return v if isinstance(v, jax.Array) else jnp.asarray(np.asarray(v))


def _convert_one(kind, cls, t, suffix):
    """One direction of one layer: torch weight_ih (G*H, F), weight_hh (G*H, H), bias_ih,
    bias_hh (G*H,) -> fnn {w_ih (F, G*H), w_hh (H, G*H), b (G*H,)[, b_hn (H,)]}."""
    g = cls.gates
    w_ih, w_hh = _as_array(t[f"weight_ih{suffix}"]), _as_array(t[f"weight_hh{suffix}"])
    if w_ih.ndim != 2 or w_hh.ndim != 2 or w_ih.shape[0] % g or w_hh.shape[0] != w_ih.shape[0]:
        raise ValueError(f"rnn_from_torch({kind!r}): expected weight_ih{suffix} ({g}*hidden, "
                         f"features) and weight_hh{suffix} ({g}*hidden, hidden), got "
                         f"{tuple(w_ih.shape)} and {tuple(w_hh.shape)}")
    h = w_ih.shape[0] // g
    if w_hh.shape[1] != h:
        raise ValueError(f"rnn_from_torch({kind!r}): weight_hh{suffix} must be ({g * h}, {h}) "
                         f"for hidden={h}, got {tuple(w_hh.shape)}")
    zero = jnp.zeros((g * h,), w_ih.dtype)
    b_ih = _as_array(t[f"bias_ih{suffix}"]) if f"bias_ih{suffix}" in t else zero
    b_hh = _as_array(t[f"bias_hh{suffix}"]) if f"bias_hh{suffix}" in t else zero
    for key, b in ((f"bias_ih{suffix}", b_ih), (f"bias_hh{suffix}", b_hh)):
        if b.shape != (g * h,):
            raise ValueError(f"rnn_from_torch({kind!r}): expected {key} of shape ({g * h},), "
                             f"got {tuple(b.shape)}")
    params = {"w_ih": w_ih.T, "w_hh": w_hh.T}
    if cls is GRUCell:
        params["b"] = b_ih + jnp.concatenate([b_hh[:2 * h], jnp.zeros((h,), b_hh.dtype)])
        params["b_hn"] = b_hh[2 * h:]
    else:
        params["b"] = b_ih + b_hh
    return params


def rnn_from_torch(kind: str, tensors: dict) -> tuple[dict, dict]:
    """Convert a PyTorch ``nn.RNN/LSTM/GRU`` (or ``nn.RNNCell/LSTMCell/GRUCell``) ``state_dict``
    to fnn ``(params, {})``.

    Per layer l and direction (``_reverse`` = backward)::

        w_ih = weight_ih_l{l}^T,  w_hh = weight_hh_l{l}^T    (gate order kept: i,f,g,o / r,z,n)
        RNN, LSTM: b = bias_ih + bias_hh
        GRU:       b = bias_ih + [b_hr, b_hz, 0],  b_hn = bias_hh[2H:]  (inside r * (.))

    Missing biases (``bias=False``) become zeros. The result's layout matches:

        one layer, one direction     the cell's params (Recurrent(cell) / a cell's step)
        one layer, bidirectional     {'forward', 'backward'}              (Bidirectional)
        L layers                     {'<name>_0', ..., '<name>_{L-1}'}, name = 'rnn' | 'lstm'
                                     | 'gru' | 'bidirectional' (fnn.serial of those layers)

    e.g. ``nn.LSTM(F, H, num_layers=2, bidirectional=True, batch_first=True)`` is
    ``fnn.serial(Bidirectional(LSTMCell(H)), Bidirectional(LSTMCell(H)))``. fnn is batch
    first: feed x (batch, time, features) (torch's default layout is (time, batch, ...)).
    RNN's nonlinearity is not in the state dict: build ``SimpleRNNCell(H, activation=...)``
    to match. Inter-layer dropout is ignored (evaluation); LSTM ``proj_size`` is refused.
    Only jnp operations are used, so gradients flow through the conversion.
    """
    if kind not in TORCH_RNN_KINDS:
        raise ValueError(f"rnn_from_torch: unknown kind {kind!r}"
                         f"{did_you_mean(kind, TORCH_RNN_KINDS)}; expected one of "
                         f"{sorted(TORCH_RNN_KINDS)}")
    cls = TORCH_RNN_KINDS[kind]
    layers: dict[int, set] = {}
    for key in tensors:
        match = _KEY.match(key)
        is_cell = kind.endswith("Cell")
        if not match or (match.group(3) is None) != is_cell:
            if key.startswith("weight_hr"):
                raise ValueError(f"rnn_from_torch({kind!r}): LSTM proj_size (weight_hr) is not "
                                 f"supported")
            expected = ("weight_ih, weight_hh, bias_ih, bias_hh" if is_cell else
                        "weight_ih_l{k}, weight_hh_l{k}, bias_ih_l{k}, bias_hh_l{k} "
                        "(and *_reverse)")
            raise ValueError(f"rnn_from_torch({kind!r}): unexpected key {key!r}; expected "
                             f"{expected}")
        layers.setdefault(int(match.group(3) or 0), set()).add(match.group(4) or "")
    if not layers:
        raise ValueError(f"rnn_from_torch({kind!r}): no tensors given")
    if sorted(layers) != list(range(len(layers))):
        raise ValueError(f"rnn_from_torch({kind!r}): layers must be numbered 0..L-1, got "
                         f"{sorted(layers)}")
    bidirectional = any("_reverse" in d for d in layers.values())
    converted = []
    for l in range(len(layers)):
        base = "" if kind.endswith("Cell") else f"_l{l}"
        directions = ["", "_reverse"] if bidirectional else [""]
        for d in directions:
            for w in ("weight_ih", "weight_hh"):
                if f"{w}{base}{d}" not in tensors:
                    raise ValueError(f"rnn_from_torch({kind!r}): missing {w}{base}{d}")
        one = {("forward", "backward")[i]: _convert_one(kind, cls, tensors, base + d)
               for i, d in enumerate(directions)}
        converted.append(one if bidirectional else one["forward"])
    if len(converted) == 1:
        return converted[0], {}
    name = "bidirectional" if bidirectional else cls.kind
    return {f"{name}_{l}": p for l, p in enumerate(converted)}, {}
