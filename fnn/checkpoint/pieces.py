"""Checkpoint format, layer 2 of 4 (encoding < pieces < save/load < manager): arrays whose
pieces live in several processes (format version 2).

Saving: every process writes the pieces it holds to ``<name>.p<k>.npz`` (a version-1 file of
``{entry: piece}``); after a barrier, process 0 records each such file's whole-file SHA-256
in the manifest (``"shards"``) and writes the checkpoint: the commit. Loading: each shard file
is read (and hashed) ONCE through :func:`fnn.checkpoint.encoding.read_archive`, compared with
the recorded SHA-256, and the arrays are put together from their pieces.
"""
from __future__ import annotations

import hashlib
from pathlib import Path

import jax
import numpy as np

from fnn.checkpoint.encoding import (FORMAT, CheckpointCorruptError, dtype_from_name,
                                     is_prng_key, npy_bytes, numpy_native, read_archive,
                                     write_archive)

__all__ = ["spans_processes", "shard_file", "plan_pieces", "save_across_processes",
           "write_pieces", "fill_pieces"]


def spans_processes(leaf) -> bool:
    """A jax.Array whose distinct pieces live in several processes (not one process's to save)."""
    return (isinstance(leaf, jax.Array) and not leaf.is_fully_addressable
            and not leaf.is_fully_replicated)


def shard_file(path, process: int) -> Path:
    """The file process ``process`` writes its pieces of checkpoint ``path`` to."""
    path = Path(path)
    return path.with_name(f"{path.stem}.p{process}.npz")


def plan_pieces(leaf, i: int, path: Path) -> tuple[dict, dict]:
    """``(manifest fields, {entry: array of this process})`` for a leaf spanning processes:
    one piece per distinct index of its sharding, owned by the process of the first device
    that holds it (every process computes the same plan)."""
    if is_prng_key(leaf):
        raise TypeError(f"checkpoint: a PRNG key array that spans processes cannot be saved "
                        f"(at leaf {i}); replicate it first")
    owners: dict = {}
    for device, index in leaf.sharding.devices_indices_map(leaf.shape).items():
        span = tuple((s.start or 0, leaf.shape[d] if s.stop is None else s.stop)
                     for d, s in enumerate(index))
        if span not in owners or device.id < owners[span].id:
            owners[span] = device
    local = {shard.device.id: shard for shard in leaf.addressable_shards}
    dtype = np.dtype(leaf.dtype)
    stored_dtype = dtype if numpy_native(dtype) else np.dtype(f"<u{dtype.itemsize}")
    fields = {"dtype": dtype.name, "shape": list(leaf.shape), "stored_dtype": stored_dtype.name,
              "prng_impl": None, "pieces": []}
    mine = {}
    for j, (span, device) in enumerate(sorted(owners.items(), key=lambda kv: kv[0])):
        entry = f"{i}.{j}"
        fields["pieces"].append({"file": shard_file(path, device.process_index).name,
                                 "entry": entry, "index": [list(s) for s in span]})
        if device.id in local:
            mine[entry] = np.asarray(local[device.id].data).view(stored_dtype)
    return fields, mine


def save_across_processes(path: Path, manifest: dict, blobs: list, pieces: dict) -> Path:
    from jax.experimental import multihost_utils

    me = jax.process_index()
    if pieces:
        write_pieces(shard_file(path, me), pieces)
    multihost_utils.sync_global_devices(f"fnn.checkpoint: pieces of {path.name} written")
    if me == 0:
        files = sorted({p["file"] for l in manifest["leaves"] for p in l.get("pieces", ())})
        manifest["shards"] = {name: read_archive(path.with_name(name))[2] for name in files}
        write_archive(path, manifest, blobs)
    multihost_utils.sync_global_devices(f"fnn.checkpoint: {path.name} committed")
    return path


def write_pieces(path: Path, pieces: dict) -> None:
    """One process's pieces as a version-1 checkpoint of ``{entry: array}``."""
    leaves, blobs = [], []
    digest = hashlib.sha256()
    for i, (entry, array) in enumerate(pieces.items()):
        blob = npy_bytes(array)
        digest.update(blob)
        blobs.append(blob)
        leaves.append({"path": f"[{entry!r}]", "keys": [["dict", entry]], "entry": f"{i}.npy",
                       "dtype": array.dtype.name, "shape": list(array.shape),
                       "stored_dtype": array.dtype.name, "prng_impl": None})
    write_archive(path, {"format": FORMAT, "version": 1, "leaves": leaves,
                         "payload_sha256": digest.hexdigest(), "metadata": {}}, blobs)


def _read_shard(path, name: str, recorded: str) -> dict:
    """``{entry: piece}`` of shard file ``name`` beside checkpoint ``path``: read once, its
    SHA-256 compared with the one the checkpoint records."""
    file = Path(path).with_name(name)
    try:
        manifest, arrays, actual = read_archive(file)
    except CheckpointCorruptError as err:
        raise CheckpointCorruptError(f"checkpoint {str(path)!r}: its shard file "
                                     f"{str(file)!r} is missing or corrupted: {err}") from None
    if actual != recorded:
        raise CheckpointCorruptError(
            f"checkpoint {str(path)!r}: its shard file {str(file)!r} has SHA-256 "
            f"{actual[:16]}..., the checkpoint records {recorded[:16]}... (replaced or "
            f"written by another save)")
    return {leaf["keys"][0][1]: array for leaf, array in zip(manifest["leaves"], arrays)}


def fill_pieces(path, manifest: dict, arrays: list) -> list:
    """``arrays`` (from :func:`read_archive` of checkpoint ``path``) with each leaf saved in
    pieces (None there) put together from its shard files; each shard file is read once."""
    shards: dict = {}
    out = []
    for leaf, array in zip(manifest["leaves"], arrays):
        if array is None:
            stored = dtype_from_name(leaf["stored_dtype"], leaf["path"], path)
            array = np.empty(tuple(leaf["shape"]), stored)
            for piece in leaf["pieces"]:
                name = piece["file"]
                if name not in shards:
                    shards[name] = _read_shard(path, name, manifest["shards"][name])
                array[tuple(slice(a, b) for a, b in piece["index"])] = shards[name][piece["entry"]]
            array = array.view(dtype_from_name(leaf["dtype"], leaf["path"], path))
        out.append(array)
    return out
