"""Checkpoint format, layer 3 of 4 (encoding < pieces < save/load < manager): ``save`` a
pytree to one file (plus shard files with several processes), ``load``/``restore`` it into a
target or as nested dicts and lists, ``verify`` a file. The format is described in
:mod:`fnn.checkpoint`.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from fnn.checkpoint.encoding import (FORMAT, Checkpoint, CheckpointMismatchError, is_prng_key,
                                     json_safe, key_entry, keystr, leaf_to_numpy, npy_bytes,
                                     read_archive, write_archive)
from fnn.checkpoint.pieces import fill_pieces, plan_pieces, save_across_processes, spans_processes

__all__ = ["save", "read_arrays", "verify", "load", "restore"]


def save(path, tree, *, metadata: dict | None = None) -> Path:
    """Write ``tree`` (any pytree of arrays/numbers/PRNG keys) to ``path`` atomically.

    ``metadata``: an optional JSON-able dict stored in the manifest (epoch, metrics...).
    Returns the path. Raises ``TypeError`` for leaves that are not arrays or numbers and
    :class:`CheckpointError` when the file cannot be written (missing or read-only directory).

    With several processes (``jax.distributed``) every process must call ``save`` with the
    same tree and a path on a file system they share: each process writes the pieces of the
    arrays that span processes which it holds (``<name>.p<k>.npz``), then, after a barrier,
    process 0 writes ``path`` naming them with their SHA-256 (format version 2): the
    checkpoint exists, whole, once that file does.
    """
    path = Path(path)
    if path.suffix != ".npz":
        raise ValueError(f"checkpoint.save: the file name must end in .npz, got {str(path)!r}")
    metadata = {} if metadata is None else metadata
    if not isinstance(metadata, dict):
        raise TypeError(f"checkpoint.save: metadata must be a dict, got {type(metadata).__name__}")
    metadata = json_safe(metadata)
    flat = jax.tree_util.tree_flatten_with_path(tree)[0]
    leaves, blobs, pieces = [], [], {}
    digest = hashlib.sha256()
    for i, (key_path, leaf) in enumerate(flat):
        where = keystr(key_path)
        keys = [key_entry(k, where) for k in key_path]
        if spans_processes(leaf):
            fields, mine = plan_pieces(leaf, i, path)
            pieces.update(mine)
            leaves.append({"path": where, "keys": keys, "entry": None, **fields})
            continue
        stored, fields = leaf_to_numpy(leaf, where)
        blob = npy_bytes(stored)
        digest.update(blob)
        blobs.append(blob)
        leaves.append({"path": where, "keys": keys, "entry": f"{i}.npy", **fields})
    manifest = {"format": FORMAT, "version": 2 if pieces or any(l["entry"] is None for l in leaves)
                else 1, "leaves": leaves,
                "payload_sha256": digest.hexdigest(), "metadata": metadata}
    if jax.process_count() == 1:
        return write_archive(path, manifest, blobs)
    return save_across_processes(path, manifest, blobs, pieces)


def read_arrays(path) -> tuple[dict, list[np.ndarray]]:
    """Manifest and arrays of checkpoint ``path``, fully verified (CRC, SHA-256, dtype and
    shape of every entry; shard files included, each read once)."""
    manifest, arrays, _ = read_archive(path)
    if any(a is None for a in arrays):
        arrays = fill_pieces(path, manifest, arrays)
    return manifest, arrays


def verify(path) -> dict:
    """Read and check the whole file (CRCs, SHA-256, every array's header); return the
    manifest. Raises :class:`CheckpointCorruptError` naming what is wrong."""
    return read_arrays(path)[0]


def _describe(x) -> str:
    if is_prng_key(x):
        return f"PRNG key {str(jax.random.key_impl(x))} shape {tuple(x.shape)}"
    return f"{np.dtype(x.dtype)}{list(np.shape(x))}" if hasattr(x, "dtype") else type(x).__name__


def _restore_leaf(target, array, leaf, path):
    """Check ``array`` (from the manifest entry ``leaf``) against ``target``; return the leaf in
    the target's kind (jax array, NumPy array, Python scalar, PRNG key)."""
    where = leaf["path"]
    shape = tuple(leaf["shape"])
    if is_prng_key(target):
        impl = str(jax.random.key_impl(target))
        if leaf.get("prng_impl") != impl or shape != tuple(target.shape):
            saved = (f"PRNG key {leaf['prng_impl']} shape {shape}" if leaf.get("prng_impl")
                     else f"{leaf['dtype']}{list(shape)}")
            raise CheckpointMismatchError(
                f"checkpoint {str(path)!r} does not match the target at {where}: the checkpoint "
                f"holds {saved}, the target expects {_describe(target)}")
        return jax.random.wrap_key_data(jnp.asarray(array), impl=impl)
    if leaf.get("prng_impl"):
        raise CheckpointMismatchError(
            f"checkpoint {str(path)!r} does not match the target at {where}: the checkpoint holds "
            f"a PRNG key ({leaf['prng_impl']}), the target expects {_describe(target)}")
    if isinstance(target, (bool, int, float, complex)) and not isinstance(target, np.generic):
        kinds = ("b" if isinstance(target, bool) else "iu" if isinstance(target, int)
                 else "f" if isinstance(target, float) else "c")
        if shape != () or array.dtype.kind not in kinds:
            raise CheckpointMismatchError(
                f"checkpoint {str(path)!r} does not match the target at {where}: the checkpoint "
                f"holds {leaf['dtype']}{list(shape)}, the target expects a Python "
                f"{type(target).__name__}")
        return type(target)(array.item())
    t_dtype = getattr(target, "dtype", None)
    t_shape = getattr(target, "shape", None)
    if t_dtype is None or t_shape is None:
        raise CheckpointMismatchError(
            f"checkpoint {str(path)!r}: the target's leaf at {where} is a "
            f"{type(target).__name__}, not an array, number or jax.ShapeDtypeStruct")
    if tuple(t_shape) != shape:
        raise CheckpointMismatchError(
            f"checkpoint {str(path)!r} does not match the target at {where}: shape {shape} in the "
            f"checkpoint, {tuple(t_shape)} in the target")
    if np.dtype(t_dtype) != array.dtype:
        raise CheckpointMismatchError(
            f"checkpoint {str(path)!r} does not match the target at {where}: dtype {array.dtype} "
            f"in the checkpoint, {np.dtype(t_dtype)} in the target")
    if isinstance(target, np.ndarray):
        return array
    if isinstance(target, np.generic):
        return array[()]
    sharding = getattr(target, "sharding", None)
    if sharding is not None and len(sharding.device_set) > 1:   # onto the target's devices
        return jax.make_array_from_callback(shape, sharding, lambda index: array[index])
    if isinstance(target, jax.Array) and getattr(target, "weak_type", False):
        return target.at[...].set(array)   # keeps the weak type, so jit sees the same types
    return jnp.asarray(array)


def _build_untargeted(manifest, arrays):
    """Nested dicts and lists from the manifest's key paths (NamedTuples become dicts)."""
    def value(leaf, array):
        impl = leaf.get("prng_impl")
        return jax.random.wrap_key_data(jnp.asarray(array), impl=impl) if impl else array

    leaves = manifest["leaves"]
    if len(leaves) == 1 and not leaves[0]["keys"]:
        return value(leaves[0], arrays[0])
    root: dict = {}
    sequences = set()  # prefixes of nodes that were tuples or lists
    for leaf, array in zip(leaves, arrays):
        node, keys = root, [tuple(k) for k in leaf["keys"]]
        for depth, (kind, k) in enumerate(keys):
            if kind == "seq":
                sequences.add(tuple(key for _, key in keys[:depth]))
            if depth == len(keys) - 1:
                node[k] = value(leaf, array)
            else:
                node = node.setdefault(k, {})

    def to_lists(node, prefix=()):
        if not isinstance(node, dict):
            return node
        node = {k: to_lists(v, prefix + (k,)) for k, v in node.items()}
        return [node[k] for k in sorted(node)] if prefix in sequences else node

    return to_lists(root)


def load(path, target=None) -> Checkpoint:
    """Read and verify a checkpoint; fill ``target`` with it (see :func:`restore`).

    Returns ``Checkpoint(tree, metadata, manifest)``.
    """
    manifest, arrays = read_arrays(path)
    if target is None:
        return Checkpoint(_build_untargeted(manifest, arrays), manifest["metadata"], manifest)
    flat, treedef = jax.tree_util.tree_flatten_with_path(target)
    saved = {leaf["path"]: i for i, leaf in enumerate(manifest["leaves"])}
    wanted = [keystr(p) for p, _ in flat]
    wanted_set = set(wanted)
    for where in wanted:
        if where not in saved:
            extra = [l["path"] for l in manifest["leaves"] if l["path"] not in wanted_set]
            raise CheckpointMismatchError(
                f"checkpoint {str(path)!r} does not match the target: key path {where} is in the "
                f"target but not in the checkpoint"
                + (f" (the checkpoint has {extra[:3]} instead)" if extra else ""))
    if len(saved) != len(wanted):
        extra = [l["path"] for l in manifest["leaves"] if l["path"] not in wanted_set]
        raise CheckpointMismatchError(
            f"checkpoint {str(path)!r} does not match the target: key path {extra[0]} is in the "
            f"checkpoint but not in the target ({len(extra)} such leaves)")
    leaves = [_restore_leaf(t, arrays[saved[w]], manifest["leaves"][saved[w]], path)
              for w, (_, t) in zip(wanted, flat)]
    return Checkpoint(jax.tree_util.tree_unflatten(treedef, leaves), manifest["metadata"], manifest)


def restore(path, target=None):
    """The pytree saved at ``path``.

    With ``target`` (a pytree of the same structure, e.g. ``net.init(...)`` params and
    ``opt.init(params)``; leaves may be arrays, numbers or ``jax.ShapeDtypeStruct``) the
    result has the target's structure (NamedTuples included) and leaf kinds; every key path,
    shape and dtype must agree, else :class:`CheckpointMismatchError` names the first key path
    that differs and what differs. Without ``target``: nested dicts and lists of NumPy arrays.
    Corrupt or foreign files raise :class:`CheckpointCorruptError`.
    """
    return load(path, target).tree
