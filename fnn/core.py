"""The layer protocol, the combinators that compose layers into networks, and the tools that
check params against a network and tabulate it.

A layer is a value holding two pure functions (as in ``jax.example_libraries.stax``)::

    params, state = layer.init(key, input_shape)        # input_shape excludes the batch axis
    y, state = layer.apply(params, state, x, *, key=None, train=False)

* ``params`` and ``state`` are nested dicts of arrays with readable names
  (``params['dense_0']['w']``); layers without parameters contribute nothing to the dict.
* ``state`` holds non-trained variables (BatchNorm statistics); ``apply`` returns the new
  state instead of mutating anything (as in Haiku's ``transform_with_state``). ``state=None``
  stands for ``{}`` on a stateless network.
* Randomness comes only from the keyword-only ``key``; combinators split one subkey per child.
* ``train`` is an apply-time flag, never a construction-time mode.
* Inputs carry a batch axis; :func:`per_example` makes a network take one example, for
  ``jax.vmap`` over examples (per-example gradients).

A stateless network is also a plain function: ``net(params, x)`` returns ``net.apply(params,
{}, x)[0]`` and raises for networks that carry state.

Layers with named children (``serial``, ``residual``, autoencoders, the VAE, the GAN) are all
built by :func:`composite`: it names the children's entries in params and state, splits the
keys, threads the state and says which child's params do not fit.
"""
from __future__ import annotations

import collections
import contextlib
import dataclasses
import typing
from typing import Any, Callable, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from fnn import validation
from fnn.validation import flag, function, is_int, positive_int

Shape = tuple  # a shape tuple of ints, or (for multi-input/output layers) a tuple of shapes
Params = dict
State = dict

__all__ = [
    "Layer", "as_layer", "Lambda", "identity", "composite", "InitContext", "ApplyContext",
    "serial", "parallel", "fan_out", "fan_in_sum", "fan_in_concat", "residual", "per_example",
    "check_params", "summary", "Summary", "ParamsError", "check_shape", "split_key",
    "require_params", "require_state", "require_key", "check_train_flag",
]


class ParamsError(ValueError):
    """Params or state that do not fit the network: missing, unexpected or misshapen entries
    (typically made by another network's ``init``), or a stateful network run without its state.

    ``path`` holds the child names from the outermost network down to the layer that raised,
    and the message starts with it: ``at ['block']['dense_0']: dense: ...``.
    """

    def __init__(self, message: str, path: Sequence[str] = ()):
        super().__init__(message)
        self.message, self.path = message, tuple(path)

    def __str__(self) -> str:
        if not self.path:
            return self.message
        return f"at {''.join(f'[{p!r}]' for p in self.path)}: {self.message}"


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

    def apply(self, params: Params, state: State | None, x, *, key: jax.Array | None = None,
              train: bool = False):
        """Run the layer on a batch ``x``; returns ``(y, new_state)``. ``state=None`` stands
        for ``{}`` and is refused by a network that carries state."""
        if state is None:
            if self.stateful:
                raise ParamsError(
                    f"{self.name}: state is None, but this network carries state (e.g. BatchNorm "
                    f"running statistics); pass the state that init returned: `params, state = "
                    f"net.init(key, input_shape)`, then `net.apply(params, state, x)`")
            state = {}
        check_train_flag(self.name, train)
        return self.apply_fn(params, state, x, key, train)

    def __call__(self, params: Params, x, *, key: jax.Array | None = None, train: bool = False):
        """``f(params, x)``: apply a stateless network and return only its output."""
        if self.stateful:
            raise TypeError(
                f"{self.name}: this network carries state (e.g. BatchNorm statistics); call "
                f"`y, state = net.apply(params, state, x, train=...)` instead of net(params, x)")
        check_train_flag(self.name, train)
        return self.apply_fn(params, {}, x, key, train)[0]


# ----------------------------------------------------------------------------- helpers

def _canonical_shape(shape, name: str) -> Shape:
    """Turn an int or a (nested) sequence of ints into a tuple shape; reject anything else."""
    if is_int(shape):
        shape = (shape,)
    if not isinstance(shape, (tuple, list)):
        raise TypeError(f"{name}: input_shape must be a tuple of ints (without the batch axis), "
                        f"got {shape!r}")
    if shape and all(isinstance(s, (tuple, list)) for s in shape):
        return tuple(_canonical_shape(s, name) for s in shape)
    if not all(is_int(s) and s > 0 for s in shape):
        raise ValueError(f"{name}: input_shape must hold positive ints (without the batch "
                         f"axis), got {tuple(shape)!r}")
    return tuple(int(s) for s in shape)


def _check_key(name: str, key) -> None:
    """``init`` needs a PRNG key (the one rule: :func:`fnn.validation.is_prng_key`)."""
    if not validation.is_prng_key(key):
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


def require_state(name: str, state, keys: Sequence[str], what: str = "running statistics") -> None:
    """Raise :class:`ParamsError` unless ``state`` is a dict holding every name in ``keys``:
    a stateful layer given no state (or another layer's) says to pass the state from init."""
    held = sorted(state) if isinstance(state, dict) else type(state).__name__
    missing = [k for k in keys if not (isinstance(state, dict) and k in state)]
    if missing:
        raise ParamsError(f"{name}: state lacks {missing} (it holds {held}); this layer keeps "
                          f"{what} in the model state: pass the state that init returned "
                          f"(`params, state = net.init(key, input_shape)`; `net.apply(params, "
                          f"state, x)`; `fit(..., model_state=state)`)")


def check_train_flag(name: str, train) -> None:
    """``train`` must be a Python (or NumPy) bool, known when the program is traced: it picks
    which computation runs (dropout or not, batch or running statistics)."""
    if isinstance(train, jax.core.Tracer):
        raise TypeError(
            f"{name}: train must be a Python bool, got a traced value ({train.aval}); it picks "
            f"the computation, so it cannot be a jit argument: mark it static, "
            f"`jax.jit(net.apply, static_argnames='train')`, or close over it")


def require_key(name: str, key, why: str = "training draws random noise") -> None:
    """Raise ``ValueError`` showing the right call when a random draw has no key."""
    if key is None:
        raise ValueError(f"{name}: {why} and needs a key; call net.apply(params, state, x, "
                         f"key=jax.random.key(0), train=True)")


def batch_hint(x, ndim: int) -> str:
    """A hint for an input with one axis less than the ``ndim`` a layer expects: a single
    example, where fnn's layers take a batch (empty string otherwise)."""
    if getattr(x, "ndim", None) != ndim - 1:
        return ""
    return ("; is it a single example? Layers take a batch: add the batch axis (x[None]), or "
            "apply fnn.per_example(net) under jax.vmap")


def check_shape(name: str, x, expected: Shape, what: str = "input") -> None:
    """Raise ``ValueError`` unless ``x.shape[1:] == expected`` (the batch axis is free)."""
    if tuple(x.shape[1:]) != tuple(expected):
        raise ValueError(f"{name}: expected {what} of shape (batch, {', '.join(map(str, expected))}"
                         f"{',' if len(expected) == 1 else ''}), got {tuple(x.shape)}"
                         f"{batch_hint(x, len(expected) + 1)}")


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


def _makes_layers(obj) -> bool:
    """Whether ``obj`` is a function annotated to return a Layer: a layer constructor such as
    ``fnn.Dense``, passed where the layer it makes belongs."""
    # Annotations are best effort: a callable whose hints cannot be read is no constructor.
    with contextlib.suppress(Exception):
        hint = typing.get_type_hints(obj).get("return")
        return isinstance(hint, type) and issubclass(hint, Layer)
    return False


def as_layer(obj, who: str = "as_layer", what: str = "the argument") -> Layer:
    """Return ``obj`` if it is a Layer; wrap a plain array function ``f(x)`` with :class:`Lambda`.

    A layer constructor passed uncalled (``fnn.Dense`` for ``fnn.Dense(units)``) or a class
    raises ``TypeError`` naming ``who`` and ``what`` (``"serial"``, ``"child 0"``).
    """
    if isinstance(obj, Layer):
        return obj
    label = getattr(obj, "__qualname__", None) or getattr(obj, "__name__", repr(obj))
    if _makes_layers(obj):
        raise TypeError(f"{who}: {what} is the layer constructor {label}, not a layer; did you "
                        f"mean {label}(...) with its arguments?")
    if isinstance(obj, type):
        raise TypeError(f"{who}: {what} is the class {label}, not a layer; pass a Layer or a "
                        f"function of arrays")
    if callable(obj):
        return Lambda(obj)
    raise TypeError(f"{who}: {what}: expected a Layer or a function of arrays, got "
                    f"{type(obj).__name__}: {obj!r}")


def _pack(names, values) -> dict:
    """Collect per-child dicts, leaving out children that hold nothing."""
    return {name: v for name, v in zip(names, values) if v}


def _abstract_init(layer: Layer, shape) -> tuple[Shape, Params, State]:
    """``layer.init_fn`` traced without FLOPs: the output shape and ShapeDtypeStruct trees."""
    shapes = []

    def init(key):
        out_shape, params, state = layer.init_fn(key, shape)
        shapes.append(out_shape)
        return params, state

    params, state = jax.eval_shape(init, jax.random.key(0))
    return shapes[0], params, state


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


# ----------------------------------------------------------------------------- named children

def _children_dict(owner: str, children) -> dict:
    """``{name: Layer}`` from a dict or ``(name, layer)`` pairs (functions become Lambdas)."""
    pairs = children.items() if isinstance(children, dict) else children
    out = {}
    for cname, layer in pairs:
        if not isinstance(cname, str) or cname in out:
            raise ValueError(f"{owner}: child names must be distinct strings, got {cname!r}")
        out[cname] = as_layer(layer, owner, f"child {cname!r}")
    return out


def _check_entries(owner: str, what: str, tree, names) -> None:
    """``tree`` (params or state of a composite): a dict whose entries all name children."""
    if not isinstance(tree, dict):
        raise ParamsError(f"{owner}: {what} must be a dict (from {owner}.init), got "
                          f"{type(tree).__name__}")
    unknown = [k for k in tree if k not in names]
    if unknown:
        raise ParamsError(f"{owner}: {what} hold {unknown}, which match no child of this network "
                          f"(its children are {list(names)}); were these {what} made by another "
                          f"network's init?")


class InitContext:
    """What a :func:`composite`'s ``init`` sees: ``c(name, input_shape) -> output_shape``
    initialises child ``name`` for inputs of ``input_shape`` (no batch axis).

    Keys: child i (in the children's order) gets the i-th of ``split(key, n)``, whatever the
    order of the calls. Each child is initialised exactly once.
    """

    def __init__(self, owner: str, children: dict, key):
        self.owner, self._children = owner, children
        self._keys = dict(zip(children, jax.random.split(key, len(children))))
        self._params: dict = {}
        self._state: dict = {}

    def __call__(self, name: str, input_shape) -> Shape:
        if name not in self._children:
            raise ValueError(f"{self.owner}: no child {name!r} (its children are "
                             f"{list(self._children)})")
        if name in self._params:
            raise ValueError(f"{self.owner}: child {name!r} is initialised twice; a child has "
                             f"one set of params (apply it as often as needed)")
        out, self._params[name], self._state[name] = self._children[name].init_fn(
            self._keys[name], input_shape)
        return out

    def collected(self) -> tuple[Params, State]:
        """The children's params and state, each under its child's name."""
        missing = [n for n in self._children if n not in self._params]
        if missing:
            raise ValueError(f"{self.owner}: init never initialised the child(ren) {missing}")
        names = list(self._children)
        return (_pack(names, [self._params[n] for n in names]),
                _pack(names, [self._state[n] for n in names]))


class ApplyContext:
    """What a :func:`composite`'s ``apply`` sees: ``c(name, x) -> y`` applies child ``name``
    with its params, its latest state (what it returned last, else the incoming state) and its
    key, in ``c.train`` mode; ``c.state`` is the new state, ``c.key`` the composite's own key.

    Keys, from ``split(key, n + own_key)``: the first is ``c.key`` when ``own_key`` (else
    ``c.key`` is None), the others go to the n children in order; a child's k-th application
    after its first (k = 1, 2, ...) gets ``fold_in(its key, k)``. Without a key, all are None.

    Models that are not layers build one directly (the GAN's objectives):
    ``c = ApplyContext(net.name, net.children, params, state, key, train)``.
    """

    def __init__(self, owner: str, children, params, state, key, train: bool, *,
                 own_key: bool = False):
        self.owner, self.train = owner, train
        self._children = dict(children)
        state = {} if state is None else state
        _check_entries(owner, "params", params, self._children)
        _check_entries(owner, "state", state, self._children)
        self._params, self._state = params, dict(state)
        keys = split_key(key, len(self._children) + int(own_key))
        self.key = keys[0] if own_key else None
        self._keys = dict(zip(self._children, keys[int(own_key):]))
        self._calls: collections.Counter = collections.Counter()

    def __call__(self, name: str, x):
        if name not in self._children:
            raise ValueError(f"{self.owner}: no child {name!r} (its children are "
                             f"{list(self._children)})")
        layer, key, calls = self._children[name], self._keys[name], self._calls[name]
        if key is not None and calls:
            key = jax.random.fold_in(key, calls)
        self._calls[name] += 1
        state = self._state.get(name, {})
        if name not in self._params:
            y, self._state[name] = self._apply_unlisted(name, layer, state, x, key)
            return y
        try:
            y, self._state[name] = layer.apply_fn(self._params[name], state, x, key, self.train)
        except ParamsError as err:
            err.path = (name, *err.path)
            raise
        return y

    def _apply_unlisted(self, name, layer, state, x, key):
        """A child without a params entry: fine if it needs none, else say which is missing."""
        try:
            return layer.apply_fn({}, state, x, key, self.train)
        except (ParamsError, KeyError) as err:
            raise ParamsError(f"{self.owner}: params hold no entry for child {name!r} (they hold "
                              f"{sorted(self._params)}); were these params made by another "
                              f"network's init?") from err

    @property
    def state(self) -> State:
        """The children's latest state, each under its child's name (empty ones left out)."""
        names = list(self._children)
        return _pack(names, [self._state.get(n, {}) for n in names])


def composite(name: str, children, init: Callable, apply: Callable, *, own_key: bool = False,
              layer_class: type = Layer, **fields) -> Layer:
    """A layer with named children, wired by two functions of yours::

        init(c: InitContext, input_shape) -> output_shape     # c(child, shape) -> shape
        apply(c: ApplyContext, x) -> y                         # c(child, x) -> y

    ``children`` maps names to layers (a dict or ``(name, layer)`` pairs; plain functions
    become :class:`Lambda` layers). Params and state hold one entry per child, under its name
    (children that hold nothing add none); ``composite`` splits the keys (see
    :class:`InitContext`, :class:`ApplyContext`; ``own_key=True`` reserves ``c.key`` for the
    composite's own draws), threads each child's state, checks that params and state name
    only children, and prefixes a child's :class:`ParamsError` with the child's name.
    ``serial``, ``parallel``, ``residual`` and the models' composites are built with it.

    Example, an encoder-decoder whose apply returns the code too::

        def init(c, shape):
            code = c("encoder", shape)
            return (c("decoder", code), code)

        def apply(c, x):
            z = c("encoder", x)
            return c("decoder", z), z

        net = fnn.composite("ae", {"encoder": enc, "decoder": dec}, init, apply)

    ``layer_class`` and ``fields`` build a :class:`Layer` subclass with extra fields
    (``AutoencoderLayer(..., encoder=..., decoder=...)``).
    """
    children = _children_dict(name, children)
    function(name, "init", init, "(c, input_shape) -> output_shape")
    function(name, "apply", apply, "(c, x) -> y")
    own_key = flag(name, "own_key", own_key)

    def init_fn(key, input_shape):
        c = InitContext(name, children, key)
        out = init(c, input_shape)
        return (out, *c.collected())

    def apply_fn(params, state, x, key, train):
        c = ApplyContext(name, children, params, state, key, train, own_key=own_key)
        y = apply(c, x)
        return y, c.state

    return layer_class(name, init_fn, apply_fn, any(l.stateful for l in children.values()),
                       tuple(children.items()), **fields)


# ----------------------------------------------------------------------------- combinators

def _numbered(who: str, layers) -> dict:
    """Positional children named by kind with a per-kind counter: ``dense_0, relu_0, ...``."""
    layers = [as_layer(layer, who, f"child {i}") for i, layer in enumerate(layers)]
    return dict(zip(_child_names(layers), layers))


def serial(*layers, name: str = "serial") -> Layer:
    """Compose layers in sequence: ``y = f_n(...f_2(f_1(x)))``.

    Shapes are threaded through ``init``; ``params`` maps child names (``dense_0``, ``relu_0``,
    ``dense_1``...) to each child's params; one subkey is split per child at init and apply.
    Plain functions are accepted and wrapped with :class:`Lambda`.
    """
    if not layers:
        raise ValueError(f"{name}: needs at least one layer, got none")
    children = _numbered(name, layers)

    def init(c, shape):
        for cname in children:
            shape = c(cname, shape)
        return shape

    def apply(c, x):
        for cname in children:
            x = c(cname, x)
        return x

    return composite(name, children, init, apply, sequential=True)


def parallel(*layers, name: str = "parallel") -> Layer:
    """Apply layer i to input i: ``(x_1, ..., x_n) -> (f_1(x_1), ..., f_n(x_n))``.

    The input shape is a tuple of n shapes; so is the output shape.
    """
    children = _numbered(name, layers)
    n = len(children)

    def init(c, shapes):
        if not (isinstance(shapes, tuple) and len(shapes) == n
                and all(isinstance(s, tuple) for s in shapes)):
            raise ValueError(f"{name}: expected a tuple of {n} input shapes, got {shapes!r}")
        return tuple(c(cname, s) for cname, s in zip(children, shapes))

    def apply(c, xs):
        if not isinstance(xs, (tuple, list)) or len(xs) != n:
            raise ValueError(f"{name}: expected a tuple of {n} inputs, got "
                             f"{len(xs) if isinstance(xs, (tuple, list)) else type(xs).__name__}")
        return tuple(c(cname, x) for cname, x in zip(children, xs))

    return composite(name, children, init, apply)


def fan_out(n: int) -> Layer:
    """Copy the input n times: ``x -> (x, ..., x)``."""
    n = positive_int("fan_out", "n", n)
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
    validation.integer("fan_in_concat", "axis", axis)

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
    children = {"block": block} if projection is None else {"block": block,
                                                            "projection": projection}

    def init(c, shape):
        out = c("block", shape)
        skip_shape = shape if projection is None else c("projection", shape)
        if out != skip_shape:
            raise ValueError(f"{name}: the block maps {shape} to {out} but the skip path "
                             f"gives {skip_shape}; add a projection that maps {shape} to {out}")
        return out

    def apply(c, x):
        y = c("block", x)
        return y + (x if projection is None else c("projection", x))

    return composite(name, children, init, apply)


# ----------------------------------------------------------------------------- one example

def per_example(net: Layer) -> Layer:
    """``net`` on one example at a time, for ``jax.vmap`` over the examples of a batch::

        y_i = net(x_i[None])[0]        x_i (*input_shape) -> y_i (*output_shape)

    Same params and state as ``net``. fnn's layers take batches (one convention for every
    layer: a rank-agnostic Conv or Flatten could not tell an example from a batch), so this is
    how per-example gradients, Jacobians or clipping are written::

        one = fnn.per_example(net)
        loss = lambda p, xi, yi: fnn.losses.softmax_cross_entropy(one(p, xi)[None], yi[None])
        grads = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))(params, x, y)   # leaves (B, ...)

    Dropout under vmap: give each example its own key (``in_axes`` over
    ``jax.random.split(key, B)``); one shared key would draw the same mask for every example.
    A network with state (BatchNorm) works in evaluation (running statistics) and is refused in
    training, where its batch statistics need the whole batch. Pytree inputs and outputs (a
    masked sequence ``(x, mask)``, the VAE's triple) gain and lose the axis leaf by leaf.
    """
    if not isinstance(net, Layer):
        raise TypeError(f"per_example: expected an fnn Layer, got {type(net).__name__}")

    def apply_fn(params, state, x, key, train):
        if train and net.stateful:
            raise ValueError(f"per_example({net.name}): in training this network's batch "
                             f"statistics (BatchNorm) need the whole batch, not one example; "
                             f"use train=False (running statistics), or LayerNorm")
        y, state = net.apply_fn(params, state, jax.tree.map(lambda a: a[None], x), key, train)
        return jax.tree.map(lambda a: a[0], y), state

    return Layer(net.name, net.init_fn, apply_fn, net.stateful, net.children, net.sequential)


# ----------------------------------------------------------------------------- params check

def _is_array(x) -> bool:
    """An array, a ShapeDtypeStruct or a Python number: a leaf with a shape and a dtype."""
    return hasattr(x, "shape") and hasattr(x, "dtype") or isinstance(x, (int, float, complex))


def _dtype_of(x):
    return x.dtype if hasattr(x, "dtype") else np.result_type(x)


def _describe(tree) -> str:
    """``float32[2,50]`` for an array (or ShapeDtypeStruct), ``{'w': ..., 'b': ...}`` for a dict."""
    if isinstance(tree, dict):
        text = "{" + ", ".join(f"{k!r}: {_describe(v)}" for k, v in tree.items()) + "}"
        return text if len(text) <= 80 else text[:76] + " ...}"
    if not _is_array(tree):
        return repr(tree) if tree is None else type(tree).__name__
    return f"{_dtype_of(tree)}[{','.join(map(str, np.shape(tree)))}]"


def _dtype_kind(dtype) -> str:
    if jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key):
        return "key"
    for kind, base in (("float", jnp.floating), ("complex", jnp.complexfloating),
                       ("int", jnp.integer), ("bool", jnp.bool_)):
        if jnp.issubdtype(dtype, base):
            return kind
    return str(dtype)


def _tree_problems(path: str, expected, got) -> list[str]:
    """Where ``got`` departs from ``expected`` (a tree of ShapeDtypeStructs): one line each."""
    if isinstance(expected, dict):
        if not isinstance(got, dict):
            return [f"{path}: expected {_describe(expected)}, got {_describe(got)}"]
        out = []
        for k, sub in expected.items():
            if k in got:
                out += _tree_problems(f"{path}[{k!r}]", sub, got[k])
            else:
                out.append(f"{path}[{k!r}]: missing (expected {_describe(sub)})")
        return out + [f"{path}[{k!r}]: unexpected entry {_describe(v)} (the network has none "
                      f"there)" for k, v in got.items()
                      if k not in expected and not (isinstance(v, dict) and not v)]
    if isinstance(expected, (tuple, list)):
        if not (isinstance(got, (tuple, list)) and len(got) == len(expected)):
            return [f"{path}: expected a sequence of {len(expected)}, got {_describe(got)}"]
        return [p for i, (e, g) in enumerate(zip(expected, got))
                for p in _tree_problems(f"{path}[{i}]", e, g)]
    if (not _is_array(got) or np.shape(got) != expected.shape
            or _dtype_kind(_dtype_of(got)) != _dtype_kind(expected.dtype)):
        return [f"{path}: expected {_describe(expected)}, got {_describe(got)}"]
    return []


def _check_trees(who: str, net: Layer, input_shape, params, state, *, with_state: bool) -> Shape:
    """:func:`check_params`, optionally leaving the state out; returns the canonical shape."""
    shape = _canonical_shape(input_shape, who)
    _, expected_params, expected_state = _abstract_init(net, shape)
    problems = _tree_problems("params", expected_params, params)
    if with_state:
        problems += _tree_problems("state", expected_state, {} if state is None else state)
    if not problems:
        return shape
    lines = problems[:12] + ([f"... and {len(problems) - 12} more"] if len(problems) > 12 else [])
    hint = ("were they made by another network's init, or for another input shape? "
            "Pass what net.init(key, input_shape) returned")
    if any(p.startswith("state") and ": missing" in p for p in problems):
        hint = ("this network carries state (e.g. BatchNorm statistics): pass the state that "
                "net.init returned, e.g. `params, state = net.init(key, input_shape)` and "
                "`fit(..., model_state=state)`")
    raise ParamsError(f"{who}: the params and state do not fit {net.name} on inputs {shape}:\n  "
                      + "\n  ".join(lines) + f"\n{hint}")


def check_params(net: Layer, input_shape, params, state=None, *, who: str = "check_params") -> None:
    """Raise :class:`ParamsError` unless ``(params, state)`` have the entries, shapes and dtype
    kinds that ``net.init`` makes for inputs of ``input_shape`` (no batch axis).

    The reference is ``jax.eval_shape(net.init)``: nothing is computed. Each problem gets a
    line naming the entry by its path (layer, then leaf), expected and got::

        params['dense_0']['w']: expected float32[2,50], got float32[2,60]
        params['dense_2']: unexpected entry {...} (the network has none there)
        state['batchnorm_0']: missing (expected {'mean': float32[3], 'var': float32[3]})

    Float widths may differ (float64 derivation checks, bfloat16 policies); a float where an
    int or a key belongs may not. ``state=None`` stands for ``{}``, so a network with state
    needs it. ``who`` starts the message (``"fit"``).
    """
    _check_trees(who, net, input_shape, params, state, with_state=True)


# ----------------------------------------------------------------------------- summary

def _count(tree) -> int:
    return sum(int(np.prod(a.shape)) for a in jax.tree.leaves(tree))


@dataclasses.dataclass(frozen=True)
class Summary:
    """The table :func:`summary` returns: ``columns``, one row of strings per layer, and a
    footer. ``str(s)`` renders it, and so does ``repr`` (a REPL shows it once); ``align`` holds
    ``'<'`` or ``'>'`` per column. A new column is a name in ``columns`` and a value per row.
    """

    columns: tuple
    align: tuple
    rows: tuple
    footer: str

    def __str__(self) -> str:
        table = [self.columns, *self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(self.columns))]

        def line(row):
            return "  ".join(f"{v:{a}{w}}" for v, a, w in zip(row, self.align, widths)).rstrip()

        rule = "-" * (sum(widths) + 2 * (len(widths) - 1))
        return "\n".join([line(self.columns), rule, *map(line, self.rows), rule, self.footer])

    __repr__ = __str__


def summary(net: Layer, input_shape, *, params=None, state=None) -> Summary:
    """A table of each layer's name, output shape and parameter count, as a :class:`Summary`
    (``print`` it; a REPL shows it as is).

    Serial networks are expanded one row per child (nested serials are indented); other
    combinators are one row each. The footer gives the total parameter count. Nothing is
    computed: shapes come from ``jax.eval_shape``. Given ``params`` (and ``state``), first
    checks that they fit the network (:func:`check_params`; the state only when given); when
    they are placed on a mesh (``jax.sharding.NamedSharding``), a ``sharding`` column gives
    each layer's: its leaves' ``PartitionSpec`` and the mesh (``P() on {'data': 4}`` is
    replicated over 4 devices).
    """
    shape = _canonical_shape(input_shape, net.name)
    if params is not None:
        _check_trees("summary", net, shape, params, state, with_state=state is not None)
    rows = []

    def visit(layer: Layer, path: str, shape, depth: int, sub):
        if layer.sequential:
            if depth >= 0:
                rows.append(("  " * depth + path, "", "", ""))
            for cname, child in layer.children:
                shape = visit(child, cname, shape, depth + 1,
                              sub.get(cname, {}) if isinstance(sub, dict) else {})
            return shape
        out, p, _ = _abstract_init(layer, shape)
        rows.append(("  " * depth + path, str(out), f"{_count(p):,}", _shardings(sub)))
        return out

    visit(net, net.name, shape, -1, params if params is not None else {})
    total = _count(_abstract_init(net, shape)[1])
    columns, align = ("layer", "output shape", "params", "sharding"), ("<", "<", ">", "<")
    if not any(row[3] for row in rows):   # nothing on a mesh: no column
        columns, align, rows = columns[:3], align[:3], [row[:3] for row in rows]
    return Summary(columns, align, tuple(rows), f"total params: {total:,}  (input {shape})")


def _shardings(tree) -> str:
    """The distinct ``NamedSharding``s of ``tree``'s leaves: ``"P('runs',) on {'runs': 4}"``."""
    found = []
    for leaf in jax.tree.leaves(tree):
        sharding = getattr(leaf, "sharding", None)
        if isinstance(sharding, jax.sharding.NamedSharding):
            text = f"{sharding.spec} on {dict(sharding.mesh.shape)}"
            if text not in found:
                found.append(text)
    return "; ".join(found)
