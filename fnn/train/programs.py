"""The one compile cache of fnn's trainers: compiled programs keyed by what they compute.

Every trainer (``fit``, ``evaluate``, a stream's chunks, ``sweep``, the GAN) gets its jitted
program from :data:`PROGRAMS` under a key made of

* the **fingerprint of the traced computation** (:func:`fingerprint`): the text of
  ``jax.make_jaxpr`` of the step (objective + gradient + optimizer update), with the
  hyperparameters lifted as inputs (:func:`hyperparameters`), and a hash of any closed-over
  constant arrays. Two objects that trace to the same program share it, whichever Python
  objects carry it; two different programs (another activation, layer size, Dropout rate,
  precision policy, gradient form) never do;
* the **loop configuration** (batch size, example count, NaN guard, ``per_step``, unroll,
  shuffle blocks, validation batch size), the **input shapes and dtypes**, and the
  **placement** (:class:`fnn.sharding.DataParallel`, i.e. the mesh and its devices).

Hyperparameters enter the program as runtime arrays (``fnn.optim.hyperparams_of`` /
``with_hyperparams``, for optimizers and objectives), so a learning-rate loop compiles once;
an object the protocol does not know (e.g. a plain ``optax.adam(1e-3)``) keeps its numbers
as literals of the trace, and so keys by them. The epoch count is a runtime value too
(:func:`fnn.train.engine.run_epochs_upto`).

The cache is bounded (least recently used out, :data:`MAX_PROGRAMS`) and holds only jitted
functions and the structure objects they were traced from, never params or data. A call
with the very objects of an earlier call skips the fingerprint (:func:`remembered`).
:func:`use_persistent_cache` adds JAX's persistent compilation cache across processes.
"""
from __future__ import annotations

import collections
import functools
import hashlib
import os
import pathlib
import threading
from typing import Any, Callable, Hashable

import jax
import numpy as np

from fnn.optim import hyperparams_of, with_hyperparams

__all__ = ["ProgramCache", "PROGRAMS", "KEYS", "remembered", "identity", "MAX_PROGRAMS", "fingerprint", "hyperparameters",
           "with_hyperparameters", "spec", "use_persistent_cache", "persistent_cache_dir"]

MAX_PROGRAMS = 64


class ProgramCache:
    """A bounded map ``key -> program`` (least recently used out), thread-safe.

    ``get(key, make)`` returns the cached program or stores ``make()``; ``hits``, ``misses``
    and ``len`` say how it has been used; ``clear()`` empties it."""

    def __init__(self, maxsize: int = MAX_PROGRAMS):
        self.maxsize, self.hits, self.misses = maxsize, 0, 0
        self._items: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, make: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self.hits += 1
                self._items.move_to_end(key)
                return self._items[key]
            self.misses += 1
            program = self._items[key] = make()
            while len(self._items) > self.maxsize:
                _, evicted = self._items.popitem(last=False)
                getattr(evicted, "clear_cache", lambda: None)()  # a jitted function's executables
            return program

    def __len__(self) -> int:
        return len(self._items)

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
            self.hits = self.misses = 0


PROGRAMS = ProgramCache()
KEYS = ProgramCache(4 * MAX_PROGRAMS)
"""Program keys already computed for the same objects (by identity) and input specs, so
that a call with the very objects of an earlier one skips the fingerprint's trace."""


def remembered(identity: Hashable, make_key: Callable[[], Hashable]) -> Hashable:
    """``make_key()``, remembered in :data:`KEYS` under ``identity`` (e.g. the objects a
    program is built from, as a tuple, and the inputs' :func:`spec`); computed afresh when
    ``identity`` is not hashable."""
    try:
        hash(identity)
    except TypeError:
        return make_key()
    return KEYS.get(identity, make_key)


class _Same:
    """An unhashable object, compared by identity (and kept alive, so its id stays its own)."""

    def __init__(self, obj):
        self.obj = obj

    def __hash__(self):
        return id(self.obj)

    def __eq__(self, other):
        return isinstance(other, _Same) and other.obj is self.obj


def _hashable(obj) -> Hashable:
    try:
        hash(obj)
        return obj
    except TypeError:
        return _Same(obj)


def identity(fn: Callable) -> Hashable:
    """What ``fn`` is made of, hashable: a ``functools.partial``'s function, arguments and
    keywords (so two partials of the same objects are the same), else ``fn`` itself; an
    unhashable part (a mutable dataclass) counts by identity."""
    if isinstance(fn, functools.partial):
        return (fn.func, tuple(_hashable(a) for a in fn.args),
                tuple((k, _hashable(v)) for k, v in sorted(fn.keywords.items())))
    return _hashable(fn)


def _const_digest(h, value) -> None:
    if isinstance(value, jax.Array) and jax.dtypes.issubdtype(value.dtype, jax.dtypes.prng_key):
        value = jax.random.key_data(value)
    array = np.asarray(value)
    h.update(f"{array.dtype}{array.shape}".encode())
    h.update(np.ascontiguousarray(array).tobytes())


def fingerprint(fn: Callable, *args) -> str:
    """sha256 of ``str(jax.make_jaxpr(fn)(*args).jaxpr)`` and of its constants' dtypes, shapes
    and bytes: the same text for the same program, whatever objects ``fn`` closes over.
    ``args`` may be arrays or ``jax.ShapeDtypeStruct``s (only shapes and dtypes matter)."""
    closed = jax.make_jaxpr(fn)(*args)
    h = hashlib.sha256(str(closed.jaxpr).encode())
    for const in closed.consts:
        _const_digest(h, const)
    return h.hexdigest()


def spec(tree) -> tuple:
    """What a compiled program needs to know of ``tree``'s arrays: its structure and each
    leaf's shape, dtype, weak type and sharding (hashable; None stays None)."""
    leaves, treedef = jax.tree.flatten(tree)

    def leaf(a):
        sharding = getattr(a, "sharding", None)
        return (np.shape(a), str(jax.numpy.result_type(a)), getattr(a, "weak_type", False),
                sharding if sharding is None or isinstance(sharding, Hashable) else repr(sharding))

    return treedef, tuple(leaf(a) for a in leaves)


def hyperparameters(**objects) -> dict:
    """``{name: fnn.optim.hyperparams_of(obj)}`` for each named object (an objective, an
    optimizer): the runtime inputs of a program built from them."""
    return {name: hyperparams_of(obj) for name, obj in objects.items()}


def with_hyperparameters(hp: dict, **objects) -> dict:
    """The objects with the (traced) hyperparameters ``hp`` of :func:`hyperparameters`
    substituted: ``{name: fnn.optim.with_hyperparams(obj, hp[name])}``."""
    return {name: with_hyperparams(obj, hp[name]) if hp[name] else obj
            for name, obj in objects.items()}


# ----------------------------------------------------------------------------- across processes

def _switched_off() -> bool:
    return os.environ.get("FNN_COMPILE_CACHE", "1").strip().lower() in ("0", "false", "no", "off")


def persistent_cache_dir() -> pathlib.Path:
    """Where compiled programs persist across processes: ``$FNN_CACHE_DIR``, else
    ``$XDG_CACHE_HOME/fnn/jax``, else ``~/.cache/fnn/jax``."""
    if os.environ.get("FNN_CACHE_DIR"):
        return pathlib.Path(os.environ["FNN_CACHE_DIR"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or pathlib.Path.home() / ".cache"
    return pathlib.Path(base).expanduser() / "fnn" / "jax"


def use_persistent_cache(directory=None, *, enable: bool = True) -> pathlib.Path | None:
    """Switch JAX's persistent compilation cache on in ``directory`` (default: a directory
    the user set with ``JAX_COMPILATION_CACHE_DIR``, else :func:`persistent_cache_dir`), or
    off (``enable=False``, or the environment variable ``FNN_COMPILE_CACHE=0``). Every
    compiled program is stored there; a later process (a script, the test suite, ``fnn
    run``) loads it instead of compiling. Results are unchanged: it is the same executable.

    ``import fnn`` calls it once; the CLI calls it with ``--cache-dir`` /
    ``--no-compile-cache``. Call it before the first compilation for a change to take effect.
    Returns the directory in use (None: off)."""
    if not enable or _switched_off():
        jax.config.update("jax_enable_compilation_cache", False)
        return None
    if directory is None:
        directory = jax.config.jax_compilation_cache_dir or persistent_cache_dir()
    directory = pathlib.Path(directory).expanduser()
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:  # a read-only home: compile as usual
        return None
    jax.config.update("jax_enable_compilation_cache", True)
    jax.config.update("jax_compilation_cache_dir", str(directory))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return directory
