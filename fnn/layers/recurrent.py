"""Recurrent networks: the Elman RNN, LSTM and GRU cells, the layers that run them over time
(``Recurrent``, ``Bidirectional``), and conversion from PyTorch's ``nn.RNN/LSTM/GRU``.

A *cell* is one time step, a pure function of its parameters::

    cell = fnn.LSTMCell(64)
    params = cell.init_params(key, input_features)    # {'w_ih', 'w_hh', 'b'}
    carry = cell.initial_carry(batch)                 # zeros; LSTM: (h, c)
    carry, h_t = cell.step(params, carry, x_t)        # x_t (batch, features) -> h_t (batch, hidden)

A *layer* runs a cell over ``x`` of shape ``(batch, time, features)`` with one ``lax.scan``
(no Python loop over time); stack layers with ``fnn.serial``::

    net = fnn.serial(fnn.Recurrent(fnn.LSTMCell(64)),                    # (B, T, F) -> (B, T, 64)
                     fnn.Recurrent(fnn.GRUCell(32), return_sequences=False),  # -> (B, 32)
                     fnn.Dense(1))

Parameter layout (every cell): the gates are stacked side by side in PyTorch's order, so a
PyTorch weight converts by one transpose::

    w_ih (features, G*hidden)   w_hh (hidden, G*hidden)   b (G*hidden,)
    G = 1 (RNN), 4 (LSTM: i, f, g, o), 3 (GRU: r, z, n);  gate k is columns [k*H, (k+1)*H)

``b`` is PyTorch's ``b_ih + b_hh`` (the two always appear summed), except for the GRU's
candidate gate, whose hidden bias sits inside the reset product and is kept apart as ``b_hn``.

Variable-length sequences (masking): pass ``(x, mask)`` instead of ``x``, with ``mask``
``(batch, time)`` (bool, or 0/1 numbers; True = a real step). A masked step leaves the carry
unchanged and outputs zeros, so the last state is the state after each sequence's last real
step, and a reversed scan over right-padded sequences starts fresh at each sequence's end.
With ``return_sequences=True`` the layer returns ``(y, mask)``, so masked layers stack with
``fnn.serial``; with ``return_sequences=False`` it returns the last state only (the mask is
used up). :func:`sequence_mask` builds the mask from lengths. At ``init`` a masked input has
shape ``((time, features), (time,))``.

Initial state: zeros by default; ``initial_state='learned'`` makes it a parameter (``h0``,
and ``c0`` for the LSTM); :func:`scan_cell` takes any initial carry.
"""
from __future__ import annotations

import abc
import dataclasses
import math
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from fnn import initializers
from fnn.core import Layer, ParamsError, batch_hint, require_params
from fnn.validation import flag, nonnegative_int, number, one_of, positive_int

__all__ = ["SimpleRNNCell", "LSTMCell", "GRUCell", "Recurrent", "Bidirectional", "scan_cell",
           "sequence_mask", "torch_init"]


# ----------------------------------------------------------------------------- helpers

def _symmetric_uniform(bound: float):
    def init(key, shape, dtype=jnp.float32):
        return initializers.draw(jax.random.uniform, key, shape, dtype, -bound, bound)
    return init


def torch_init(hidden: int) -> dict:
    """PyTorch's initialisation for RNN/LSTM/GRU: every weight and bias ~ U(-k, k),
    k = 1/sqrt(hidden). Use as ``GRUCell(6, **torch_init(6))`` (for an LSTM also pass
    ``forget_bias=0.0`` to match PyTorch exactly; its b is the sum of two such draws)."""
    hidden = positive_int("torch_init", "hidden", hidden)
    u = _symmetric_uniform(1.0 / math.sqrt(hidden))
    return {"w_init": u, "w_hh_init": u, "b_init": u}


def _bias(b, ndim):
    """A (n,) bias ready to add to a (..., n) array without rank promotion."""
    return jnp.expand_dims(b, tuple(range(ndim - 1)))


# ----------------------------------------------------------------------------- cells

@dataclasses.dataclass(frozen=True)
class _Cell(abc.ABC):
    """Shared machinery; subclasses set ``gates``, ``kind`` and ``recur``."""

    hidden: int
    w_init: Any = dataclasses.field(default=initializers.glorot_uniform(), kw_only=True)
    w_hh_init: Any = dataclasses.field(default=initializers.orthogonal(), kw_only=True)
    b_init: Any = dataclasses.field(default=initializers.zeros, kw_only=True)
    dtype: Any = dataclasses.field(default=jnp.float32, kw_only=True)

    gates = 1
    kind = "cell"

    def __post_init__(self):
        positive_int(type(self).__name__, "hidden", self.hidden)
        for field in ("w_init", "w_hh_init", "b_init"):
            object.__setattr__(self, field, initializers.get(getattr(self, field)))

    # -- parameters
    def init_params(self, key: jax.Array, input_features: int) -> dict:
        """Parameters for inputs with ``input_features`` features (a cell is one time step,
        not a layer: it has params but no state, and :class:`Recurrent` runs it).

        ``w_init`` is applied to each gate's (features, hidden) block of ``w_ih``,
        ``w_hh_init`` to each gate's (hidden, hidden) block of ``w_hh`` (default: orthogonal
        blocks), ``b_init`` to ``b`` (default zeros).
        """
        positive_int(type(self).__name__, "input_features", input_features)
        h, g = self.hidden, self.gates
        k_ih, k_hh, k_b, k_extra = jax.random.split(key, 4)
        w_ih = jnp.concatenate([self.w_init(k, (input_features, h), self.dtype)
                                for k in jax.random.split(k_ih, g)], axis=1)
        w_hh = jnp.concatenate([self.w_hh_init(k, (h, h), self.dtype)
                                for k in jax.random.split(k_hh, g)], axis=1)
        params = {"w_ih": w_ih, "w_hh": w_hh, "b": self.b_init(k_b, (g * h,), self.dtype)}
        return self._extra_params(params, k_extra)

    def _extra_params(self, params, key):
        return params

    def input_features(self, params) -> int:
        return params["w_ih"].shape[0]

    # -- carry
    def initial_carry(self, batch: int, dtype=jnp.float32):
        """The zero state: h (batch, hidden)."""
        return jnp.zeros((batch, self.hidden), dtype)

    carry_names = ("h0",)

    def carry_from_vectors(self, vectors: dict, batch: int):
        """Broadcast learned initial-state vectors ``{'h0': (hidden,)}`` to a batch carry."""
        return jnp.broadcast_to(vectors["h0"][None], (batch, self.hidden))

    @staticmethod
    def output(carry):
        """The hidden state h in ``carry``."""
        return carry

    # -- computation
    def project(self, params, x):
        """The input part of every gate: x W_ih + b, x (..., features) -> (..., G*hidden)."""
        y = x @ params["w_ih"]
        return y + _bias(params["b"], y.ndim)

    @abc.abstractmethod
    def recur(self, params, carry, xp_t):
        """The step given the projected input xp_t = x_t W_ih + b (batch, G*hidden)."""

    def step(self, params, carry, x_t):
        """One time step: x_t (batch, features) -> (new carry, h_t (batch, hidden))."""
        return self.recur(params, carry, self.project(params, x_t))

    param_names = ("w_ih", "w_hh", "b")

    def check_params(self, name, params) -> None:
        """Raise :class:`~fnn.core.ParamsError` unless ``params`` fit this cell:
        w_ih (F, G*H), w_hh (H, G*H), b (G*H,) for its hidden size H and G gates."""
        require_params(name, params, self.param_names)
        gh, h = self.gates * self.hidden, self.hidden
        w_ih, w_hh, b = params["w_ih"], params["w_hh"], params["b"]
        if w_ih.ndim != 2 or w_ih.shape[1] != gh or w_hh.shape != (h, gh) or b.shape != (gh,):
            raise ParamsError(f"{name}: params hold w_ih {tuple(w_ih.shape)}, w_hh "
                              f"{tuple(w_hh.shape)}, b {tuple(b.shape)}, but this "
                              f"{type(self).__name__}({h}) expects w_ih (F, {gh}), w_hh ({h}, "
                              f"{gh}), b ({gh},); were they made by another network's init?")

    def _check_input(self, name, params, x):
        self.check_params(name, params)
        f = self.input_features(params)
        if x.ndim != 3 or x.shape[-1] != f:
            raise ValueError(f"{name}: expected input of shape (batch, time, {f}), got "
                             f"{tuple(x.shape)}{batch_hint(x, 3)}")


@dataclasses.dataclass(frozen=True)
class SimpleRNNCell(_Cell):
    """The Elman RNN: h_t = f(x_t W_ih + h_{t-1} W_hh + b), f = tanh or relu.

    Args:
      hidden: size of h.
      activation: 'tanh' (default) or 'relu' (PyTorch's ``nonlinearity``).
      w_init, w_hh_init, b_init: initialisers (default glorot-uniform, orthogonal, zeros).
      dtype: parameter dtype.

    Shapes: params w_ih (features, hidden), w_hh (hidden, hidden), b (hidden,);
    carry h (batch, hidden); step x_t (batch, features) -> h_t (batch, hidden).
    """

    activation: str = "tanh"
    kind = "rnn"

    def __post_init__(self):
        super().__post_init__()
        one_of("SimpleRNNCell", "activation", self.activation, ("tanh", "relu"))

    def recur(self, params, h, xp_t):
        a = xp_t + h @ params["w_hh"]
        h = jnp.tanh(a) if self.activation == "tanh" else jax.nn.relu(a)
        return h, h


@dataclasses.dataclass(frozen=True)
class LSTMCell(_Cell):
    """Long short-term memory (Hochreiter & Schmidhuber 1997), PyTorch's gate order i, f, g, o:

        [i f g o] = x_t W_ih + h_{t-1} W_hh + b
        i, f, o = sigmoid(.),  g = tanh(.)
        c_t = f * c_{t-1} + i * g,   h_t = o * tanh(c_t)

    Args:
      hidden: size of h and c.
      forget_bias: added to the forget gate's bias block b[H:2H] at init (default 1.0, so
        the cell starts by remembering: sigmoid(1) = 0.73; Jozefowicz et al. 2015).
      w_init, w_hh_init, b_init, dtype: as :class:`SimpleRNNCell`.

    Shapes: params w_ih (features, 4H), w_hh (H, 4H), b (4H,); carry (h, c), each (batch, H).
    """

    forget_bias: float = 1.0
    gates = 4
    kind = "lstm"
    carry_names = ("h0", "c0")

    def __post_init__(self):
        super().__post_init__()
        number("LSTMCell", "forget_bias", self.forget_bias)

    def _extra_params(self, params, key):
        h = self.hidden
        params["b"] = params["b"].at[h:2 * h].add(jnp.asarray(self.forget_bias, self.dtype))
        return params

    def initial_carry(self, batch: int, dtype=jnp.float32):
        """The zero state: (h, c), each (batch, hidden)."""
        z = jnp.zeros((batch, self.hidden), dtype)
        return z, z

    def carry_from_vectors(self, vectors, batch):
        shape = (batch, self.hidden)
        return (jnp.broadcast_to(vectors["h0"][None], shape),
                jnp.broadcast_to(vectors["c0"][None], shape))

    @staticmethod
    def output(carry):
        return carry[0]

    def recur(self, params, carry, xp_t):
        h, c = carry
        z = xp_t + h @ params["w_hh"]
        i, f, g, o = jnp.split(z, 4, axis=-1)
        c = jax.nn.sigmoid(f) * c + jax.nn.sigmoid(i) * jnp.tanh(g)
        h = jax.nn.sigmoid(o) * jnp.tanh(c)
        return (h, c), h


@dataclasses.dataclass(frozen=True)
class GRUCell(_Cell):
    """Gated recurrent unit (Cho et al. 2014), PyTorch's variant and gate order r, z, n:

        r = sigmoid(x W_ir + h W_hr + b_r)
        z = sigmoid(x W_iz + h W_hz + b_z)
        n = tanh(x W_in + b_n + r * (h W_hn + b_hn))      # b_hn inside the reset product
        h_t = (1 - z) * n + z * h_{t-1}

    Args: ``hidden``, ``w_init``, ``w_hh_init``, ``b_init``, ``dtype`` as :class:`SimpleRNNCell`.

    Shapes: params w_ih (features, 3H), w_hh (H, 3H), b (3H,) = [b_r, b_z, b_n], b_hn (H,);
    carry h (batch, H). (PyTorch: b_r = b_ir + b_hr, b_z = b_iz + b_hz, b_n = b_in, and b_hn
    is its own; they cannot be merged because r multiplies b_hn.)
    """

    gates = 3
    kind = "gru"
    param_names = ("w_ih", "w_hh", "b", "b_hn")

    def _extra_params(self, params, key):
        params["b_hn"] = self.b_init(key, (self.hidden,), self.dtype)
        return params

    def recur(self, params, h, xp_t):
        hh = h @ params["w_hh"]
        x_r, x_z, x_n = jnp.split(xp_t, 3, axis=-1)
        h_r, h_z, h_n = jnp.split(hh, 3, axis=-1)
        r = jax.nn.sigmoid(x_r + h_r)
        z = jax.nn.sigmoid(x_z + h_z)
        n = jnp.tanh(x_n + r * (h_n + _bias(params["b_hn"], h_n.ndim)))
        h = (1 - z) * n + z * h
        return h, h


def _check_cell(name, cell):
    if isinstance(cell, type) and issubclass(cell, _Cell):
        raise TypeError(f"{name}: got the class {cell.__name__}, not a cell; did you mean "
                        f"{cell.__name__}(hidden)?")
    if not isinstance(cell, _Cell):
        raise TypeError(f"{name}: expected a cell (fnn.SimpleRNNCell, fnn.LSTMCell or "
                        f"fnn.GRUCell), got {type(cell).__name__}: {cell!r}")


# ----------------------------------------------------------------------------- scanning

def sequence_mask(lengths, time: int) -> jax.Array:
    """mask[b, t] = t < lengths[b]: lengths (batch,) ints -> bool mask (batch, time)."""
    time = nonnegative_int("sequence_mask", "time", time)
    lengths = jnp.asarray(lengths)
    if lengths.ndim != 1 or not jnp.issubdtype(lengths.dtype, jnp.integer):
        raise ValueError(f"sequence_mask: expected integer lengths of shape (batch,), got "
                         f"{lengths.dtype} {tuple(lengths.shape)}")
    return jnp.arange(time)[None, :] < lengths[:, None]


def scan_cell(cell, params, x, *, carry=None, mask=None, reverse: bool = False,
              return_sequences: bool = True):
    """Run ``cell`` over time with one ``lax.scan``:

        carry_t, h_t = cell.step(params, carry_{t-1}, x[:, t])     t = 0..T-1 (T-1..0 if reverse)

    where a step with ``mask[:, t]`` False keeps the carry and outputs h_t = 0.

    Args:
      cell: a SimpleRNNCell, LSTMCell or GRUCell; params: its parameters.
      x: (batch, time, features).
      carry: the initial carry (default ``cell.initial_carry(batch)``, zeros).
      mask: optional (batch, time), True (or nonzero) for real steps.
      reverse: scan from the last step to the first; outputs stay aligned with x's time axis.
      return_sequences: collect every h_t; False returns ``ys=None`` (cheaper: nothing is
        stored per step but what the backward pass needs).

    Returns ``(final_carry, ys)``, ys (batch, time, hidden) or None.

    The input projection x_t W_ih runs inside the scan, step by step, rather than as one big
    matmul hoisted out of the loop, whose (time, batch, G*hidden) result and gradient would go
    through memory (measured on the ``lstm`` workload of scripts/bench.py; see the README's
    Performance section).
    """
    _check_cell("scan_cell", cell)
    batch, time = x.shape[0], x.shape[1]
    xs = jnp.swapaxes(x, 0, 1)                                   # (T, B, F)
    if carry is None:
        carry = cell.initial_carry(batch, x.dtype)
    if mask is None:
        def body(c, x_t):
            c, h = cell.step(params, c, x_t)
            return c, (h if return_sequences else None)
        carry, ys = lax.scan(body, carry, xs, reverse=reverse)
    else:
        mask = jnp.asarray(mask)
        if mask.shape != (batch, time):
            raise ValueError(f"{cell.kind}: expected a mask of shape (batch, time) = "
                             f"({batch}, {time}), got {tuple(mask.shape)}")
        m = jnp.swapaxes(mask if mask.dtype == jnp.bool_ else mask != 0, 0, 1)[..., None]

        def body(c, inputs):
            x_t, m_t = inputs
            new, h = cell.step(params, c, x_t)
            new = jax.tree.map(lambda n, o: jnp.where(m_t, n, o), new, c)
            return new, (jnp.where(m_t, h, jnp.zeros_like(h)) if return_sequences else None)

        carry, ys = lax.scan(body, carry, (xs, m), reverse=reverse)
    return carry, (jnp.swapaxes(ys, 0, 1) if return_sequences else None)


def _split_input(name, x):
    """``x`` or ``(x, mask)`` -> (x, mask or None)."""
    if isinstance(x, (tuple, list)):
        if len(x) != 2:
            raise ValueError(f"{name}: expected x (batch, time, features) or a pair (x, mask), "
                             f"got a {type(x).__name__} of {len(x)}")
        return x[0], x[1]
    return x, None


def _split_shape(name, shape):
    """``(T, F)`` or ``((T, F), (T,))`` -> ((T, F), masked?)."""
    if shape and isinstance(shape[0], tuple):
        if len(shape) != 2 or len(shape[0]) != 2 or shape[1] != shape[0][:1]:
            raise ValueError(f"{name}: a masked input has shape ((time, features), (time,)), "
                             f"got {shape}")
        return shape[0], True
    if len(shape) != 2:
        raise ValueError(f"{name}: expected input_shape (time, features) (the batch axis "
                         f"excluded), got {shape}")
    return shape, False


_INITIAL_STATES = ("zeros", "learned")


def _check_flags(name, return_sequences, reverse, initial_state):
    flag(name, "return_sequences", return_sequences)
    flag(name, "reverse", reverse)
    one_of(name, "initial_state", initial_state, _INITIAL_STATES)


def _run(cell, params, x, mask, reverse, learned, name, return_sequences):
    cell._check_input(name, params, x)
    carry = None
    if learned:
        require_params(name, params, cell.carry_names)
        carry = cell.carry_from_vectors(params, x.shape[0])
    return scan_cell(cell, params, x, carry=carry, mask=mask, reverse=reverse,
                     return_sequences=return_sequences)


def Recurrent(cell, *, return_sequences: bool = True, reverse: bool = False,
              initial_state: str = "zeros", name: str | None = None) -> Layer:
    """Run ``cell`` over a sequence (one ``lax.scan``; no Python loop over time).

        h_t = cell(h_{t-1}, x_t),  t = 1..T   (t = T..1 when ``reverse``)

    Args:
      cell: a :class:`SimpleRNNCell`, :class:`LSTMCell` or :class:`GRUCell`.
      return_sequences: return every h_t, y (batch, time, hidden); else the last state
        h_T (batch, hidden) (with ``reverse``, the state after step 1).
      reverse: run backwards in time; the output sequence stays aligned with the input.
      initial_state: 'zeros' (default) or 'learned' (params gain ``h0`` (hidden,), and ``c0``
        for the LSTM, shared by the batch).
      name: default the cell's kind: 'rnn', 'lstm', 'gru' (so serial names are ``lstm_0``).

    Input x (batch, time, features), or ``(x, mask)`` with mask (batch, time) (see the module
    docstring; then a sequence output is ``(y, mask)``). Params: the cell's (``w_ih``,
    ``w_hh``, ``b``, GRU ``b_hn``). Any number of time steps is accepted at apply.
    """
    _check_cell("Recurrent", cell)
    name = name or cell.kind
    _check_flags(name, return_sequences, reverse, initial_state)
    learned = initial_state == "learned"

    def init_fn(key, input_shape):
        (time, features), masked = _split_shape(name, input_shape)
        params = cell.init_params(key, features)
        if learned:
            params.update({n: jnp.zeros((cell.hidden,), cell.dtype) for n in cell.carry_names})
        out = (time, cell.hidden) if return_sequences else (cell.hidden,)
        if masked and return_sequences:
            out = (out, (time,))
        return out, params, {}

    def apply_fn(params, state, x, key, train):
        x, mask = _split_input(name, x)
        carry, ys = _run(cell, params, x, mask, reverse, learned, name, return_sequences)
        if not return_sequences:
            return cell.output(carry), state
        return (ys if mask is None else (ys, mask)), state

    return Layer(name, init_fn, apply_fn)


_MERGES = ("concat", "sum", "mean")


def Bidirectional(cell_fw, cell_bw=None, *, merge: str = "concat",
                  return_sequences: bool = True, initial_state: str = "zeros",
                  name: str = "bidirectional") -> Layer:
    """Two recurrent passes, forwards with ``cell_fw`` and backwards with ``cell_bw`` (default:
    a copy of ``cell_fw``'s configuration with its own parameters), merged per time step:

        y_t = merge(h_t^fw, h_t^bw),  merge = concat [h^fw, h^bw] | sum | mean

    With ``return_sequences=False`` it merges the two last states: h_T^fw and the backward
    pass's state after step 1 (PyTorch's ``h_n``). Masks work as in :class:`Recurrent`; for
    right-padded sequences the backward pass starts at each sequence's last real step.

    Shapes: x (batch, time, features) -> (batch, time, M) or (batch, M), M = hidden_fw +
    hidden_bw for 'concat', else hidden (the two must then be equal). Params
    ``{'forward': ..., 'backward': ...}`` (PyTorch's ``*_l0`` and ``*_l0_reverse``).
    """
    _check_cell(name, cell_fw)
    cell_bw = cell_fw if cell_bw is None else cell_bw
    _check_cell(name, cell_bw)
    _check_flags(name, return_sequences, False, initial_state)
    one_of(name, "merge", merge, _MERGES)
    if merge != "concat" and cell_fw.hidden != cell_bw.hidden:
        raise ValueError(f"{name}: merge={merge!r} needs equal hidden sizes, got "
                         f"{cell_fw.hidden} (forward) and {cell_bw.hidden} (backward)")
    learned = initial_state == "learned"
    size = cell_fw.hidden + cell_bw.hidden if merge == "concat" else cell_fw.hidden

    def combine(a, b):
        if merge == "concat":
            return jnp.concatenate([a, b], axis=-1)
        return a + b if merge == "sum" else (a + b) / 2

    def init_fn(key, input_shape):
        (time, features), masked = _split_shape(name, input_shape)
        params = {}
        for direction, cell, k in zip(("forward", "backward"), (cell_fw, cell_bw),
                                      jax.random.split(key)):
            params[direction] = cell.init_params(k, features)
            if learned:
                params[direction].update({n: jnp.zeros((cell.hidden,), cell.dtype)
                                          for n in cell.carry_names})
        out = (time, size) if return_sequences else (size,)
        if masked and return_sequences:
            out = (out, (time,))
        return out, params, {}

    def apply_fn(params, state, x, key, train):
        x, mask = _split_input(name, x)
        c_fw, y_fw = _run(cell_fw, params["forward"], x, mask, False, learned, name,
                          return_sequences)
        c_bw, y_bw = _run(cell_bw, params["backward"], x, mask, True, learned, name,
                          return_sequences)
        if not return_sequences:
            return combine(cell_fw.output(c_fw), cell_bw.output(c_bw)), state
        y = combine(y_fw, y_bw)
        return (y if mask is None else (y, mask)), state

    return Layer(name, init_fn, apply_fn)


def __getattr__(name):
    if name in ("rnn_from_torch", "TORCH_RNN_KINDS"):  # moved in #23; say where
        raise ImportError(f"fnn.layers.recurrent.{name} moved to fnn.interop.{name}")
    raise AttributeError(f"module 'fnn.layers.recurrent' has no attribute {name!r}")
