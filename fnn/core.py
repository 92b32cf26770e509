"""The layer protocol and the combinators that compose layers into networks.

A layer is a value holding two pure functions (as in ``jax.example_libraries.stax``)::

    params, state = layer.init(key, input_shape)        # input_shape excludes the batch axis
    y, state = layer.apply(params, state, x, *, key=None, train=False)

* ``params`` and ``state`` are nested dicts of arrays with readable names
  (``params['dense_0']['w']``); layers without parameters contribute nothing to the dict.
* ``state`` holds non-trained variables (BatchNorm statistics); ``apply`` returns the new
  state instead of mutating anything (as in Haiku's ``transform_with_state``).
* Randomness comes only from the keyword-only ``key``; combinators split one subkey per child.
* ``train`` is an apply-time flag, never a construction-time mode.

A stateless network is also a plain function: ``net(params, x)`` returns ``net.apply(params,
{}, x)[0]`` and raises for networks that carry state.
"""
from __future__ import annotations

import collections
import dataclasses
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp

Shape = tuple  # a shape tuple of ints, or (for multi-input/output layers) a tuple of shapes
Params = dict
State = dict

__all__ = [
    "Layer", "as_layer", "Lambda", "identity", "serial", "parallel", "fan_out", "fan_in_sum",
    "fan_in_concat", "residual", "summary", "check_shape", "split_key", "ParamsError",
    "require_params",
]


class ParamsError(ValueError):
    """The params given to ``apply`` do not fit the layer (missing or unexpected entries),
    typically because they were made by another network's ``init``."""


@dataclasses.dataclass(frozen=True)
class Layer:
    """A network building block: two pure functions and a name.

    Attributes:
      name: the base name combinators use for this layer's entry (``dense`` -> ``dense_0``).
      init_fn: ``(key, input_shape) -> (output_shape, params, state)``.
      apply_fn: ``(params, state, x, key, train) -> (y, state)``; ``key`` may be None.
      stateful: whether ``state`` can be non-empty (then ``net(params, x)`` is refused).
      children: ``((name, layer), ...)`` for combinators; used by :func:`summary`.
      sequential: children run one after another (``serial``); :func:`summary` expands them.
    """

    name: str
    init_fn: Callable[[jax.Array, Shape], tuple[Shape, Params, State]]
    apply_fn: Callable[..., tuple[Any, State]]
    stateful: bool = False
    children: tuple = ()
    sequential: bool = False

    def init(self, key: jax.Array, input_shape: Sequence[int]) -> tuple[Params, State]:
        """Create ``(params, state)`` for inputs of ``input_shape`` (no batch axis)."""
        _check_key(self.name, key)
        _, params, state = self.init_fn(key, _canonical_shape(input_shape, self.name))
        return params, state

    def output_shape(self, input_shape: Sequence[int]) -> Shape:
        """The output shape (no batch axis) for ``input_shape``, computed without any FLOPs."""
        return _abstract_init(self, _canonical_shape(input_shape, self.name))[0]

    def apply(self, params: Params, state: State, x, *, key: jax.Array | None = None,
              train: bool = False):
        """Run the layer on a batch ``x``; returns ``(y, new_state)``."""
        return self.apply_fn(params, state, x, key, train)

    def __call__(self, params: Params, x, *, key: jax.Array | None = None, train: bool = False):
        """``f(params, x)``: apply a stateless network and return only its output."""
        if self.stateful:
            raise TypeError(
                f"{self.name}: this network carries state (e.g. BatchNorm statistics); call "
                f"`y, state = net.apply(params, state, x, train=...)` instead of net(params, x)")
        return self.apply_fn(params, {}, x, key, train)[0]


# ----------------------------------------------------------------------------- helpers

def _canonical_shape(shape, name: str) -> Shape:
    """Turn an int or a (nested) sequence of ints into a tuple shape; reject anything else."""
    if isinstance(shape, int):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"{name}: input_shape must be a tuple of ints (without the batch axis), "
                        f"got {shape!r}")
    if shape and all(isinstance(s, (tuple, list)) for s in shape):
        return tuple(_canonical_shape(s, name) for s in shape)
    if not all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape):
        raise ValueError(f"{name}: input_shape must hold positive ints (without the batch "
                         f"axis), got {tuple(shape)!r}")
    return tuple(shape)


def _check_key(name: str, key) -> None:
    """``init`` needs a PRNG key: a typed key (``jax.random.key``) or a raw uint32 key."""
    dtype = getattr(key, "dtype", None)
    if dtype is not None and (jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)
                              or (dtype == jnp.uint32 and getattr(key, "ndim", 0) >= 1)):
        return
    raise TypeError(f"{name}: init needs a PRNG key such as jax.random.key(0) as its first "
                    f"argument, got {key!r}")


def require_params(name: str, params, keys: Sequence[str]) -> None:
    """Raise :class:`ParamsError` unless ``params`` is a dict holding every name in ``keys``."""
    if not isinstance(params, dict):
        raise ParamsError(f"{name}: params must be a dict of arrays (from init), got "
                          f"{type(params).__name__}")
    missing = [k for k in keys if k not in params]
    if missing:
        raise ParamsError(f"{name}: params lack {missing} (they hold {sorted(params)}); pass "
                          f"the params made by this network's init")


def _check_children(name: str, params, children) -> None:
    """``params`` of a combinator: a dict whose entries all name children."""
    if not isinstance(params, dict):
        raise ParamsError(f"{name}: params must be a dict (from {name}.init), got "
                          f"{type(params).__name__}")
    names = [n for n, _ in children]
    unknown = [k for k in params if k not in names]
    if unknown:
        raise ParamsError(f"{name}: params hold {unknown}, which match no child of this network "
                          f"(its children are {names}); were these params made by another "
                          f"network's init?")


def _apply_child(owner: str, cname: str, layer: Layer, params, state, x, key, train):
    """Apply child ``cname``; if its params are absent and it needed some, say so by name."""
    if cname in params:
        return layer.apply_fn(params[cname], state.get(cname, {}), x, key, train)
    try:
        return layer.apply_fn({}, state.get(cname, {}), x, key, train)
    except (ParamsError, KeyError) as err:
        raise ParamsError(f"{owner}: params hold no entry for child {cname!r} (they hold "
                          f"{sorted(params)}); were these params made by another network's "
                          f"init?") from err


def _abstract_init(layer: Layer, shape) -> tuple[Shape, Params, State]:
    """``layer.init_fn`` traced without FLOPs: the output shape and ShapeDtypeStruct trees."""
    shapes = []

    def init(key):
        out_shape, params, state = layer.init_fn(key, shape)
        shapes.append(out_shape)
        return params, state

    params, state = jax.eval_shape(init, jax.random.key(0))
    return shapes[0], params, state


def check_shape(name: str, x, expected: Shape, what: str = "input") -> None:
    """Raise ``ValueError`` unless ``x.shape[1:] == expected`` (the batch axis is free)."""
    if tuple(x.shape[1:]) != tuple(expected):
        raise ValueError(f"{name}: expected {what} of shape (batch, {', '.join(map(str, expected))}"
                         f"{',' if len(expected) == 1 else ''}), got {tuple(x.shape)}")


def split_key(key: jax.Array | None, n: int) -> list:
    """``n`` independent subkeys of ``key``, or ``n`` Nones when ``key`` is None."""
    return [None] * n if key is None else list(jax.random.split(key, n))


def _child_names(layers: Sequence[Layer]) -> list[str]:
    """``dense_0, relu_0, dense_1``: each base name gets its own counter."""
    counts: collections.Counter = collections.Counter()
    names = []
    for layer in layers:
        names.append(f"{layer.name}_{counts[layer.name]}")
        counts[layer.name] += 1
    return names


def as_layer(obj) -> Layer:
    """Return ``obj`` if it is a Layer; wrap a plain array function ``f(x)`` with :class:`Lambda`."""
    if isinstance(obj, Layer):
        return obj
    if callable(obj):
        return Lambda(obj)
    raise TypeError(f"expected a Layer or a function of arrays, got {type(obj).__name__}: {obj!r}")


def _compose_children(layers) -> tuple[tuple[str, Layer], ...]:
    layers = [as_layer(layer) for layer in layers]
    return tuple(zip(_child_names(layers), layers))


def _pack(children, values) -> dict:
    """Collect per-child dicts, leaving out children that hold nothing."""
    return {name: v for (name, _), v in zip(children, values) if v}


# ----------------------------------------------------------------------------- simple layers

def Lambda(fn: Callable, name: str | None = None) -> Layer:
    """A parameter-free layer ``y = fn(x)`` from any array function (e.g. ``fnn.relu``).

    The output shape is found by tracing ``fn`` on a batch of one (no FLOPs are spent).
    """
    name = name or getattr(fn, "__name__", "lambda").strip("<>")

    def init_fn(key, input_shape):
        out = jax.eval_shape(fn, jax.ShapeDtypeStruct((1, *input_shape), jnp.float32))
        return tuple(out.shape[1:]), {}, {}

    def apply_fn(params, state, x, key, train):
        return fn(x), state

    return Layer(name, init_fn, apply_fn)


def identity() -> Layer:
    """The layer ``y = x``."""
    return Layer("identity", lambda key, s: (s, {}, {}), lambda p, s, x, k, t: (x, s))


# ----------------------------------------------------------------------------- combinators

def serial(*layers, name: str = "serial") -> Layer:
    """Compose layers in sequence: ``y = f_n(...f_2(f_1(x)))``.

    Shapes are threaded through ``init``; ``params`` maps child names (``dense_0``, ``relu_0``,
    ``dense_1``...) to each child's params; one subkey is split per child at init and apply.
    Plain functions are accepted and wrapped with :class:`Lambda`.
    """
    if not layers:
        raise ValueError(f"{name}: needs at least one layer, got none")
    children = _compose_children(layers)

    def init_fn(key, shape):
        params, state = [], []
        for (_, layer), k in zip(children, jax.random.split(key, len(children))):
            shape, p, s = layer.init_fn(k, shape)
            params.append(p)
            state.append(s)
        return shape, _pack(children, params), _pack(children, state)

    def apply_fn(params, state, x, key, train):
        _check_children(name, params, children)
        new_state = []
        for (cname, layer), k in zip(children, split_key(key, len(children))):
            x, s = _apply_child(name, cname, layer, params, state, x, k, train)
            new_state.append(s)
        return x, _pack(children, new_state)

    return Layer(name, init_fn, apply_fn, any(l.stateful for _, l in children), children,
                 sequential=True)


def parallel(*layers, name: str = "parallel") -> Layer:
    """Apply layer i to input i: ``(x_1, ..., x_n) -> (f_1(x_1), ..., f_n(x_n))``.

    The input shape is a tuple of n shapes; so is the output shape.
    """
    children = _compose_children(layers)

    def init_fn(key, shapes):
        if not (isinstance(shapes, tuple) and len(shapes) == len(children)
                and all(isinstance(s, tuple) for s in shapes)):
            raise ValueError(f"{name}: expected a tuple of {len(children)} input shapes, "
                             f"got {shapes!r}")
        outs = [layer.init_fn(k, s) for (_, layer), k, s
                in zip(children, jax.random.split(key, len(children)), shapes)]
        return (tuple(o[0] for o in outs), _pack(children, [o[1] for o in outs]),
                _pack(children, [o[2] for o in outs]))

    def apply_fn(params, state, xs, key, train):
        if not isinstance(xs, (tuple, list)) or len(xs) != len(children):
            raise ValueError(f"{name}: expected a tuple of {len(children)} inputs, got "
                             f"{len(xs) if isinstance(xs, (tuple, list)) else type(xs).__name__}")
        _check_children(name, params, children)
        outs = [_apply_child(name, n, layer, params, state, x, k, train)
                for (n, layer), x, k in zip(children, xs, split_key(key, len(children)))]
        return tuple(o[0] for o in outs), _pack(children, [o[1] for o in outs])

    return Layer(name, init_fn, apply_fn, any(l.stateful for _, l in children), children)


def fan_out(n: int) -> Layer:
    """Copy the input n times: ``x -> (x, ..., x)``."""
    if not (isinstance(n, int) and n >= 1):
        raise ValueError(f"fan_out: n must be a positive int, got {n!r}")
    return Layer("fan_out", lambda key, s: ((s,) * n, {}, {}),
                 lambda p, s, x, k, t: ((x,) * n, s))


def _require_tuple_of_shapes(name, shapes):
    if not (isinstance(shapes, tuple) and shapes and all(isinstance(s, tuple) for s in shapes)):
        raise ValueError(f"{name}: expected a tuple of input shapes, got {shapes!r}")


def fan_in_sum() -> Layer:
    """Sum a tuple of equally shaped inputs: ``(x_1, ..., x_n) -> x_1 + ... + x_n``."""

    def init_fn(key, shapes):
        _require_tuple_of_shapes("fan_in_sum", shapes)
        if len(set(shapes)) != 1:
            raise ValueError(f"fan_in_sum: all inputs must have the same shape, got {shapes}")
        return shapes[0], {}, {}

    return Layer("fan_in_sum", init_fn, lambda p, s, xs, k, t: (sum(xs[1:], xs[0]), s))


def fan_in_concat(axis: int = -1) -> Layer:
    """Concatenate a tuple of inputs along ``axis`` (counted without the batch axis if >= 0)."""

    def init_fn(key, shapes):
        _require_tuple_of_shapes("fan_in_concat", shapes)
        rank = len(shapes[0])
        ax = axis % rank
        if any(len(s) != rank or s[:ax] + s[ax + 1:] != shapes[0][:ax] + shapes[0][ax + 1:]
               for s in shapes):
            raise ValueError(f"fan_in_concat: inputs must agree on all axes but {axis}, got {shapes}")
        return shapes[0][:ax] + (sum(s[ax] for s in shapes),) + shapes[0][ax + 1:], {}, {}

    def apply_fn(params, state, xs, key, train):
        ax = axis + 1 if axis >= 0 else axis  # skip the batch axis
        return jnp.concatenate(xs, axis=ax), state

    return Layer("fan_in_concat", init_fn, apply_fn)


def residual(block, projection=None, name: str = "residual") -> Layer:
    """A skip connection: ``y = f(x) + x``, or ``y = f(x) + P(x)`` with a projection layer P.

    ``params = {'block': ..., 'projection': ...}``. Without a projection, ``f`` must keep the
    shape of ``x``; with one (e.g. a 1x1 convolution or a Dense), both branches must agree.
    """
    children = (("block", as_layer(block)),)
    if projection is not None:
        children += (("projection", as_layer(projection)),)

    def init_fn(key, shape):
        keys = jax.random.split(key, len(children))
        outs = [layer.init_fn(k, shape) for (_, layer), k in zip(children, keys)]
        skip_shape = outs[1][0] if projection is not None else shape
        if outs[0][0] != skip_shape:
            raise ValueError(f"{name}: the block maps {shape} to {outs[0][0]} but the skip path "
                             f"gives {skip_shape}; add a projection that maps {shape} to "
                             f"{outs[0][0]}")
        return (outs[0][0], _pack(children, [o[1] for o in outs]),
                _pack(children, [o[2] for o in outs]))

    def apply_fn(params, state, x, key, train):
        _check_children(name, params, children)
        outs = [_apply_child(name, n, layer, params, state, x, k, train)
                for (n, layer), k in zip(children, split_key(key, len(children)))]
        skip = outs[1][0] if projection is not None else x
        return outs[0][0] + skip, _pack(children, [o[1] for o in outs])

    return Layer(name, init_fn, apply_fn, any(l.stateful for _, l in children), children)


# ----------------------------------------------------------------------------- summary

def _count(tree) -> int:
    return sum(int(a.size) for a in jax.tree.leaves(tree))


def summary(net: Layer, input_shape, *, print_fn: Callable[[str], None] | None = print) -> str:
    """Print (and return) a table of each layer's name, output shape and parameter count.

    Serial networks are expanded one row per child (nested serials are indented); other
    combinators are one row each. The last line gives the total parameter count.
    Nothing is computed: shapes come from ``jax.eval_shape``.
    """
    rows = []

    def visit(layer: Layer, path: str, shape, depth: int):
        if layer.sequential:
            if depth >= 0:
                rows.append(("  " * depth + path, "", ""))
            for cname, child in layer.children:
                shape = visit(child, cname, shape, depth + 1)
            return shape
        out, params, _ = _abstract_init(layer, shape)
        rows.append(("  " * depth + path, str(out), _count(params)))
        return out

    shape = _canonical_shape(input_shape, net.name)
    visit(net, net.name, shape, -1)
    total = _count(_abstract_init(net, shape)[1])
    header = ("layer", "output shape", "params")
    body = [(a, b, f"{c:,}" if c != "" else "") for a, b, c in rows]
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(3)]
    line = lambda r: f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}"
    rule = "-" * (sum(widths) + 4)
    text = "\n".join([line(header), rule, *map(line, body), rule,
                      f"total params: {total:,}  (input {shape})"])
    if print_fn is not None:
        print_fn(text)
    return text
