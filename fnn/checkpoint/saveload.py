"""Atomic, verified save and restore of any pytree (params, optimizer and model state, keys).

Format (version 1). A checkpoint is ONE file, an uncompressed ``.npz`` (ZIP) archive::

    manifest.json       the JSON manifest, written first
    0.npy, 1.npy, ...   one NumPy .npy array per pytree leaf, in flattening order

The manifest holds::

    {"format": "fnn.checkpoint", "version": 1,
     "leaves": [{"path": "['params']['dense_0']['w']",      # jax.tree_util.keystr of the leaf
                 "keys": [["dict", "params"], ["dict", "dense_0"], ["dict", "w"]],
                 "entry": "0.npy", "dtype": "float32", "shape": [2, 8],
                 "stored_dtype": "float32", "prng_impl": null}, ...],
     "payload_sha256": "<hex SHA-256 of the concatenated .npy entries, in leaf order>",
     "metadata": {...}}                                       # any JSON given to save()

* dtypes NumPy cannot name in a ``.npy`` header (``bfloat16``, float8...) are stored as
  unsigned integers of the same width (``stored_dtype``) and viewed back on load, so every
  bit survives. Typed PRNG keys are stored as ``jax.random.key_data`` with ``prng_impl`` and
  rebuilt with ``jax.random.wrap_key_data``.
* Key kinds: ``dict`` (dict keys, str or int), ``seq`` (tuple/list index), ``attr``
  (NamedTuple fields such as optax states), ``flat`` (other registered nodes).
* Nothing is pickled: arrays are read with ``np.load(..., allow_pickle=False)`` and the
  manifest with ``json``; loading never executes code.
* Integrity: ZIP's per-entry CRC-32, the payload's SHA-256 (in the manifest) and the whole
  file's SHA-256 (in the ZIP comment at the end of the file: ``fnn-sha256:<64 hex digits>``,
  the hash of every byte before those 64 digits). A truncated, corrupted or
  foreign file raises :class:`CheckpointError` saying what is wrong; a checkpoint that does
  not fit the ``target`` raises :class:`CheckpointMismatchError` naming the first key path
  that differs and how.
* Writes are atomic: the archive is written to a temporary file in the same directory,
  flushed and fsync'ed, moved over the destination with ``os.replace``, and the directory is
  fsync'ed. A crash leaves either the old file or the new one, never a mix.
* Version 2 (several processes, ``jax.distributed``): an array whose pieces live in several
  processes is not in the file; its manifest entry has ``"entry": null`` and ``"pieces"``
  (``file``, ``entry`` and the ``index`` ``[[start, stop], ...]`` of each distinct piece),
  and each process writes the pieces it holds to ``<name>.p<k>.npz`` (itself a version-1
  file). After a barrier, process 0 writes the checkpoint with ``"shards": {file: whole-file
  SHA-256}``: the commit. Loading puts the array together from the pieces, refusing a shard
  file that is missing or whose SHA-256 differs, by name. Arrays in one process, however
  sharded, are saved whole, and restore onto any devices: a target leaf's sharding says where.

:class:`CheckpointManager` keeps numbered checkpoints in a directory (the last ``keep`` and
the best by a metric) and finds the newest valid one, skipping corrupt files with a warning.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import re
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["CheckpointError", "CheckpointCorruptError", "CheckpointMismatchError", "Checkpoint",
           "save", "load", "restore", "read_manifest", "verify", "CheckpointManager",
           "shard_file", "FORMAT", "VERSION"]

FORMAT = "fnn.checkpoint"
VERSION = 2   # 1: one file; 2: plus the pieces of arrays that span processes, in shard files
_MANIFEST = "manifest.json"
_TRAILER = b"fnn-sha256:"   # ZIP comment: this tag, then the file's SHA-256 in hex (64 bytes)


class CheckpointError(ValueError):
    """A checkpoint cannot be written, read or used; the message says which file and why."""


class CheckpointCorruptError(CheckpointError):
    """The file is missing, truncated, corrupted or not an fnn checkpoint."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint is intact but does not fit the ``target`` (structure, shape or dtype)."""


class Checkpoint(NamedTuple):
    """What :func:`load` returns: the restored ``tree``, the saved ``metadata`` and the manifest."""
    tree: Any
    metadata: dict
    manifest: dict


# ----------------------------------------------------------------------------- key paths

def _key_entry(key, where: str) -> list:
    if isinstance(key, jax.tree_util.DictKey):
        if not isinstance(key.key, (str, int)) or isinstance(key.key, bool):
            raise TypeError(f"checkpoint: dict keys must be str or int to be saved, got "
                            f"{key.key!r} ({type(key.key).__name__}) at {where}")
        return ["dict", key.key]
    if isinstance(key, jax.tree_util.SequenceKey):
        return ["seq", key.idx]
    if isinstance(key, jax.tree_util.GetAttrKey):
        return ["attr", key.name]
    if isinstance(key, jax.tree_util.FlattenedIndexKey):
        return ["flat", key.key]
    raise TypeError(f"checkpoint: unsupported pytree key {key!r} at {where}")


def _keystr(path) -> str:
    return jax.tree_util.keystr(tuple(path)) or "<root>"


# ----------------------------------------------------------------------------- dtypes

def _is_prng_key(x) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def _numpy_native(dtype: np.dtype) -> bool:
    """Whether a .npy header can name ``dtype`` (plain NumPy numbers and bools)."""
    return dtype.kind in "biufc" and dtype.type.__module__ == "numpy"


def _leaf_to_numpy(leaf, where: str):
    """``(array to store, manifest fields)`` for one leaf."""
    impl = None
    if _is_prng_key(leaf):
        impl = str(jax.random.key_impl(leaf))
        array = np.asarray(jax.device_get(jax.random.key_data(leaf)))
        dtype_name, shape = str(leaf.dtype), tuple(leaf.shape)
    else:
        if isinstance(leaf, (str, bytes)) or leaf is None:
            raise TypeError(f"checkpoint: cannot save the leaf at {where}: {type(leaf).__name__} "
                            f"is not an array or number")
        try:
            array = np.asarray(jax.device_get(leaf))
        except Exception as err:  # noqa: BLE001 - anything array-like that fails is a user error
            raise TypeError(f"checkpoint: cannot save the leaf at {where} of type "
                            f"{type(leaf).__name__}: {err}") from None
        if array.dtype.kind not in "biufcV" or array.dtype.hasobject:
            raise TypeError(f"checkpoint: cannot save the leaf at {where}: dtype {array.dtype} "
                            f"({type(leaf).__name__}) is not numeric")
        dtype_name, shape = array.dtype.name, array.shape
    stored = array
    if not _numpy_native(array.dtype):
        stored = array.view(np.dtype(f"<u{array.dtype.itemsize}"))
    return stored, {"dtype": dtype_name, "shape": list(shape), "stored_dtype": stored.dtype.name,
                    "prng_impl": impl}


def _dtype_from_name(name: str, where: str, path) -> np.dtype:
    try:
        return np.dtype(jnp.dtype(name))
    except TypeError:
        raise CheckpointCorruptError(f"checkpoint {path}: unknown dtype {name!r} for {where}") from None


# ----------------------------------------------------------------------------- writing

def _fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # e.g. platforms without directory fds
    try:
        with contextlib.suppress(OSError):  # best effort: some filesystems refuse it
            os.fsync(fd)
    finally:
        os.close(fd)


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def _sha256_of(f, size: int) -> str:
    """Hex SHA-256 of the first ``size`` bytes of the open binary file ``f``."""
    f.seek(0)
    digest = hashlib.sha256()
    while size > 0:
        chunk = f.read(min(1 << 20, size))
        if not chunk:
            break
        digest.update(chunk)
        size -= len(chunk)
    return digest.hexdigest()


def _json_safe(value, where="metadata"):
    """Check that ``value`` is JSON-able (dicts with str keys, lists, numbers, strings, None)."""
    try:
        return json.loads(json.dumps(value, allow_nan=True))
    except (TypeError, ValueError) as err:
        raise TypeError(f"checkpoint: {where} must be JSON-serialisable (dicts, lists, numbers, "
                        f"strings): {err}") from None


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
    metadata = _json_safe(metadata)
    flat, treedef = jax.tree_util.tree_flatten_with_path(tree)
    leaves, blobs, pieces = [], [], {}
    digest = hashlib.sha256()
    for i, (key_path, leaf) in enumerate(flat):
        where = _keystr(key_path)
        keys = [_key_entry(k, where) for k in key_path]
        if _spans_processes(leaf):
            fields, mine = _plan_pieces(leaf, i, path)
            pieces.update(mine)
            leaves.append({"path": where, "keys": keys, "entry": None, **fields})
            continue
        stored, fields = _leaf_to_numpy(leaf, where)
        blob = _npy_bytes(stored)
        digest.update(blob)
        blobs.append(blob)
        leaves.append({"path": where, "keys": keys, "entry": f"{i}.npy", **fields})
    manifest = {"format": FORMAT, "version": 2 if pieces or any(l["entry"] is None for l in leaves)
                else 1, "treedef": str(treedef), "leaves": leaves,
                "payload_sha256": digest.hexdigest(), "metadata": metadata}
    if jax.process_count() == 1:
        return _write(path, manifest, blobs)
    return _save_across_processes(path, manifest, blobs, pieces)


def _write(path: Path, manifest: dict, blobs: list) -> Path:
    """The archive: the manifest, the entries, the whole-file SHA-256; atomically."""
    directory = path.parent if str(path.parent) else Path(".")
    if not directory.is_dir():
        raise CheckpointError(f"cannot write checkpoint {str(path)!r}: {str(directory)!r} is not "
                              f"an existing directory")
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=directory)
    except OSError as err:
        raise CheckpointError(f"cannot write checkpoint {str(path)!r}: directory "
                              f"{str(directory)!r} is not writable ({err.strerror})") from err
    try:
        with os.fdopen(fd, "w+b") as f:
            with zipfile.ZipFile(f, "w", compression=zipfile.ZIP_STORED) as archive:
                archive.comment = _TRAILER + b"0" * 64   # placeholder, filled in below
                archive.writestr(_MANIFEST, json.dumps(manifest, indent=1, allow_nan=True))
                entries = [l["entry"] for l in manifest["leaves"] if l["entry"] is not None]
                for entry, blob in zip(entries, blobs):
                    archive.writestr(entry, blob)
            f.seek(0, os.SEEK_END)
            digest = _sha256_of(f, f.tell() - 64)
            f.seek(-64, os.SEEK_END)
            f.write(digest.encode("ascii"))
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as err:
        with contextlib.suppress(OSError):  # the temporary file may not exist yet
            os.unlink(tmp)
        if isinstance(err, OSError):
            raise CheckpointError(f"cannot write checkpoint {str(path)!r}: {err}") from err
        raise
    _fsync_dir(directory)
    return path


# ----------------------------------------------------------------------------- several processes

def _spans_processes(leaf) -> bool:
    """A jax.Array whose distinct pieces live in several processes (not one process's to save)."""
    return (isinstance(leaf, jax.Array) and not leaf.is_fully_addressable
            and not leaf.is_fully_replicated)


def shard_file(path, process: int) -> Path:
    """The file process ``process`` writes its pieces of checkpoint ``path`` to."""
    path = Path(path)
    return path.with_name(f"{path.stem}.p{process}.npz")


def _plan_pieces(leaf, i: int, path: Path) -> tuple[dict, dict]:
    """``(manifest fields, {entry: array of this process})`` for a leaf spanning processes:
    one piece per distinct index of its sharding, owned by the process of the first device
    that holds it (every process computes the same plan)."""
    if _is_prng_key(leaf):
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
    stored_dtype = dtype if _numpy_native(dtype) else np.dtype(f"<u{dtype.itemsize}")
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


def _save_across_processes(path: Path, manifest: dict, blobs: list, pieces: dict) -> Path:
    from jax.experimental import multihost_utils

    me = jax.process_index()
    if pieces:
        _write_pieces(shard_file(path, me), pieces)
    multihost_utils.sync_global_devices(f"fnn.checkpoint: pieces of {path.name} written")
    if me == 0:
        files = sorted({p["file"] for l in manifest["leaves"] for p in l.get("pieces", ())})
        manifest["shards"] = {name: _trailer_sha(path.with_name(name)) for name in files}
        _write(path, manifest, blobs)
    multihost_utils.sync_global_devices(f"fnn.checkpoint: {path.name} committed")
    return path


def _write_pieces(path: Path, pieces: dict) -> None:
    """One process's pieces as a version-1 checkpoint of ``{entry: array}``."""
    leaves, blobs = [], []
    digest = hashlib.sha256()
    for i, (entry, array) in enumerate(pieces.items()):
        blob = _npy_bytes(array)
        digest.update(blob)
        blobs.append(blob)
        leaves.append({"path": f"[{entry!r}]", "keys": [["dict", entry]], "entry": f"{i}.npy",
                       "dtype": array.dtype.name, "shape": list(array.shape),
                       "stored_dtype": array.dtype.name, "prng_impl": None})
    _write(path, {"format": FORMAT, "version": 1, "treedef": "pieces", "leaves": leaves,
                  "payload_sha256": digest.hexdigest(), "metadata": {}}, blobs)


def _trailer_sha(path: Path) -> str:
    """The whole-file SHA-256 a checkpoint file records in its trailer (after checking it)."""
    verify(path)
    with _open(path) as archive:
        return archive.comment[len(_TRAILER):].decode("ascii")


def _assemble(leaf: dict, path, shards: dict, cache: dict) -> np.ndarray:
    """A leaf saved in pieces across processes, put together from their files."""
    stored = _dtype_from_name(leaf["stored_dtype"], leaf["path"], path)
    out = np.empty(tuple(leaf["shape"]), stored)
    for piece in leaf["pieces"]:
        name = piece["file"]
        if name not in cache:
            file = Path(path).with_name(name)
            try:
                recorded, actual = shards[name], _trailer_sha(file)
            except CheckpointCorruptError as err:
                raise CheckpointCorruptError(f"checkpoint {str(path)!r}: its shard file "
                                             f"{str(file)!r} is missing or corrupted: {err}") from None
            if actual != recorded:
                raise CheckpointCorruptError(
                    f"checkpoint {str(path)!r}: its shard file {str(file)!r} has SHA-256 "
                    f"{actual[:16]}..., the checkpoint records {recorded[:16]}... (replaced or "
                    f"written by another save)")
            cache[name] = load(file).tree
        out[tuple(slice(a, b) for a, b in piece["index"])] = cache[name][piece["entry"]]
    return out


# ----------------------------------------------------------------------------- reading

def _open(path) -> zipfile.ZipFile:
    path = Path(path)
    if not path.exists():
        raise CheckpointCorruptError(f"no checkpoint file at {str(path)!r}")
    if path.is_dir():
        raise CheckpointCorruptError(f"checkpoint path {str(path)!r} is a directory, expected an "
                                     f"fnn checkpoint file (.npz)")
    try:
        return zipfile.ZipFile(path, "r")
    except Exception as err:  # noqa: BLE001 - zipfile raises many kinds on damaged headers
        raise CheckpointCorruptError(
            f"{str(path)!r} is not a readable fnn checkpoint (truncated, corrupted or not an .npz "
            f"archive): {err}") from None


def _read_entry(archive: zipfile.ZipFile, name: str, path, what: str) -> bytes:
    try:
        return archive.read(name)
    except KeyError:
        raise CheckpointCorruptError(f"checkpoint {str(path)!r} has no entry {name!r} ({what})") from None
    except Exception as err:  # noqa: BLE001 - CRC errors, damaged headers, ...
        raise CheckpointCorruptError(f"checkpoint {str(path)!r} is corrupted: entry {name!r} "
                                     f"({what}) cannot be read: {err}") from None


def _parse_manifest(archive, path) -> dict:
    if _MANIFEST not in archive.namelist():
        raise CheckpointCorruptError(
            f"{str(path)!r} is an .npz archive without {_MANIFEST}: not an fnn checkpoint "
            f"(write checkpoints with fnn.checkpoint.save)")
    raw = _read_entry(archive, _MANIFEST, path, "the manifest")
    try:
        manifest = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as err:
        raise CheckpointCorruptError(f"checkpoint {str(path)!r}: the manifest is not valid JSON "
                                     f"({err})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CheckpointCorruptError(f"checkpoint {str(path)!r}: manifest format is "
                                     f"{manifest.get('format') if isinstance(manifest, dict) else manifest!r}, "
                                     f"expected {FORMAT!r}")
    version = manifest.get("version")
    if not isinstance(version, int) or version > VERSION or version < 1:
        raise CheckpointCorruptError(f"checkpoint {str(path)!r} has format version {version!r}; "
                                     f"this fnn reads version {VERSION} (and 1)")
    leaves = manifest.get("leaves")
    fields = {"path", "keys", "entry", "dtype", "shape", "stored_dtype"}
    if isinstance(leaves, list):
        leaves = [dict(l, entry=l.get("entry")) if isinstance(l, dict) and "pieces" in l else l
                  for l in leaves]
    if not isinstance(leaves, list) or not all(isinstance(l, dict) and fields <= set(l) for l in leaves) \
            or not isinstance(manifest.get("payload_sha256"), str):
        raise CheckpointCorruptError(f"checkpoint {str(path)!r}: the manifest is missing fields "
                                     f"(needs leaves with {sorted(fields)} and payload_sha256)")
    if any(l["entry"] is None and not isinstance(l.get("pieces"), list) for l in leaves) or (
            any(l["entry"] is None for l in leaves) and not isinstance(manifest.get("shards"), dict)):
        raise CheckpointCorruptError(f"checkpoint {str(path)!r}: the manifest has leaves without "
                                     f"an entry and without pieces in shard files")
    manifest["leaves"] = leaves
    manifest.setdefault("metadata", {})
    return manifest


def read_manifest(path) -> dict:
    """The checkpoint's manifest (leaves' paths, dtypes, shapes; metadata) without reading the
    arrays. Cheap; checks the ZIP structure and the manifest's CRC but not the payload."""
    with _open(path) as archive:
        return _parse_manifest(archive, path)


def _read_arrays(path) -> tuple[dict, list[np.ndarray]]:
    """Manifest and arrays, fully verified (CRC, SHA-256, dtype and shape of every entry)."""
    with _open(path) as archive:
        manifest = _parse_manifest(archive, path)
        digest = hashlib.sha256()
        arrays = []
        for leaf in manifest["leaves"]:
            if leaf["entry"] is None:
                arrays.append((leaf, None))
                continue
            blob = _read_entry(archive, leaf["entry"], path, f"leaf {leaf['path']}")
            digest.update(blob)
            arrays.append((leaf, blob))
        comment = archive.comment
    if digest.hexdigest() != manifest["payload_sha256"]:
        raise CheckpointCorruptError(
            f"checkpoint {str(path)!r} is corrupted: the payload's SHA-256 is "
            f"{digest.hexdigest()[:16]}..., the manifest records {manifest['payload_sha256'][:16]}...")
    if not (len(comment) == len(_TRAILER) + 64 and comment.startswith(_TRAILER)):
        raise CheckpointCorruptError(f"checkpoint {str(path)!r} is truncated or corrupted: it "
                                     f"does not end with its whole-file SHA-256 (the ZIP comment "
                                     f"{_TRAILER.decode()}<64 hex digits>)")
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        actual = _sha256_of(f, f.tell() - 64)
    if actual.encode("ascii") != comment[len(_TRAILER):]:
        raise CheckpointCorruptError(
            f"checkpoint {str(path)!r} is corrupted: the file's SHA-256 is {actual[:16]}..., its "
            f"trailer records {comment[len(_TRAILER):len(_TRAILER) + 16].decode('ascii', 'replace')}...")
    out, cache = [], {}
    for leaf, blob in arrays:
        if blob is None:
            out.append(_assemble(leaf, path, manifest["shards"], cache).view(
                _dtype_from_name(leaf["dtype"], leaf["path"], path)))
            continue
        try:
            array = np.load(io.BytesIO(blob), allow_pickle=False)
        except (ValueError, OSError, EOFError) as err:
            raise CheckpointCorruptError(f"checkpoint {str(path)!r}: leaf {leaf['path']} is not a "
                                         f"valid .npy array: {err}") from None
        stored = _dtype_from_name(leaf["stored_dtype"], leaf["path"], path)
        if array.dtype != stored:
            raise CheckpointCorruptError(f"checkpoint {str(path)!r}: leaf {leaf['path']} holds "
                                         f"{array.dtype}, the manifest says {stored}")
        if leaf.get("prng_impl"):
            out.append(array)
            continue
        dtype = _dtype_from_name(leaf["dtype"], leaf["path"], path)
        if dtype != stored:
            array = array.view(dtype)
        if list(array.shape) != list(leaf["shape"]):
            raise CheckpointCorruptError(f"checkpoint {str(path)!r}: leaf {leaf['path']} has shape "
                                         f"{array.shape}, the manifest says {tuple(leaf['shape'])}")
        out.append(array)
    return manifest, out


def verify(path) -> dict:
    """Read and check the whole file (CRCs, SHA-256, every array's header); return the
    manifest. Raises :class:`CheckpointCorruptError` naming what is wrong."""
    return _read_arrays(path)[0]


def _describe(x) -> str:
    if _is_prng_key(x):
        return f"PRNG key {str(jax.random.key_impl(x))} shape {tuple(x.shape)}"
    return f"{np.dtype(x.dtype)}{list(np.shape(x))}" if hasattr(x, "dtype") else type(x).__name__


def _restore_leaf(target, array, leaf, path):
    """Check ``array`` (from the manifest entry ``leaf``) against ``target``; return the leaf in
    the target's kind (jax array, NumPy array, Python scalar, PRNG key)."""
    where = leaf["path"]
    shape = tuple(leaf["shape"])
    if _is_prng_key(target):
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
    manifest, arrays = _read_arrays(path)
    if target is None:
        return Checkpoint(_build_untargeted(manifest, arrays), manifest["metadata"], manifest)
    flat, treedef = jax.tree_util.tree_flatten_with_path(target)
    saved = {leaf["path"]: i for i, leaf in enumerate(manifest["leaves"])}
    wanted = [_keystr(p) for p, _ in flat]
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


# ----------------------------------------------------------------------------- manager

class CheckpointManager:
    """Numbered checkpoints ``<prefix>-<step>.npz`` in ``directory``.

    Keeps the newest ``keep`` checkpoints (``None``: all) plus the best one by
    ``best_metric`` (from the ``metrics`` passed to :meth:`save`; ``best_mode`` 'min' or 'max').

        manager = CheckpointManager("ckpt", keep=3, best_metric="val_loss")
        manager.save(epoch, tree, metrics={"val_loss": 0.3})
        path = manager.latest()              # newest valid one (corrupt ones skipped, warned)
        tree = manager.restore(target)       # from the newest valid one
    """

    def __init__(self, directory, keep: int | None = 3, *, best_metric: str | None = None,
                 best_mode: str = "min", prefix: str = "ckpt"):
        if keep is not None and not (isinstance(keep, int) and not isinstance(keep, bool)
                                     and keep >= 1):
            raise ValueError(f"CheckpointManager: keep must be a positive int or None (keep all), "
                             f"got {keep!r}")
        if best_mode not in ("min", "max"):
            raise ValueError(f"CheckpointManager: best_mode must be 'min' or 'max', got {best_mode!r}")
        if not (isinstance(prefix, str) and re.fullmatch(r"[A-Za-z0-9_.]+", prefix)):
            raise ValueError(f"CheckpointManager: prefix must be letters, digits, '_' or '.', "
                             f"got {prefix!r}")
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise CheckpointError(f"CheckpointManager: {str(self.directory)!r} exists and is not a "
                                  f"directory")
        self.keep, self.best_metric, self.best_mode, self.prefix = keep, best_metric, best_mode, prefix
        self._pattern = re.compile(rf"^{re.escape(prefix)}-(\d+)\.npz$")

    def path(self, step: int) -> Path:
        """The file of checkpoint ``step``."""
        return self.directory / f"{self.prefix}-{step:08d}.npz"

    def steps(self) -> list[int]:
        """Steps of the checkpoints present, oldest first (validity not checked)."""
        if not self.directory.is_dir():
            return []
        found = (self._pattern.match(p.name) for p in self.directory.iterdir())
        return sorted(int(m.group(1)) for m in found if m)

    def list(self) -> list[Path]:
        """Paths of the checkpoints present, oldest first."""
        return [self.path(s) for s in self.steps()]

    def save(self, step: int, tree, *, metrics: dict | None = None,
             metadata: dict | None = None) -> Path:
        """Write checkpoint ``step`` (atomically), then delete those outside the keep policy."""
        if not (isinstance(step, (int, np.integer)) and not isinstance(step, bool) and step >= 0):
            raise ValueError(f"CheckpointManager.save: step must be an int >= 0, got {step!r}")
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
        except OSError as err:
            raise CheckpointError(f"cannot create the checkpoint directory {str(self.directory)!r}: "
                                  f"{err.strerror or err}") from err
        meta = dict(metadata or {})
        meta["step"] = int(step)
        if metrics is not None:
            meta["metrics"] = {k: _to_float(v) for k, v in metrics.items()}
        path = save(self.path(int(step)), tree, metadata=meta)
        if jax.process_index() == 0:  # (with several processes, save has committed it)
            self._prune()
        return path

    def _metric(self, path):
        try:
            value = read_manifest(path)["metadata"].get("metrics", {}).get(self.best_metric)
        except CheckpointError:
            return None
        return value if isinstance(value, (int, float)) and math.isfinite(value) else None

    def best(self) -> Path | None:
        """The checkpoint with the best ``best_metric`` (None without a metric or checkpoints)."""
        if self.best_metric is None:
            return None
        scored = [(v, p) for p in self.list() if (v := self._metric(p)) is not None]
        if not scored:
            return None
        pick = min if self.best_mode == "min" else max
        return pick(scored, key=lambda vp: vp[0])[1]

    def _prune(self) -> None:
        if self.keep is None:
            return
        paths = self.list()
        keep = set(paths[-self.keep:])
        best = self.best()
        if best is not None:
            keep.add(best)
        for p in paths:
            if p not in keep:
                for file in [p, *p.parent.glob(f"{p.stem}.p*.npz")]:  # with its shard files
                    with contextlib.suppress(OSError):  # already gone: nothing to prune
                        file.unlink()

    def latest(self) -> Path | None:
        """The newest checkpoint that verifies (CRCs and SHA-256); corrupt ones are skipped
        with a ``warnings.warn`` naming them. None when there is no valid one."""
        for path in reversed(self.list()):
            try:
                verify(path)
            except CheckpointCorruptError as err:
                warnings.warn(f"skipping corrupt checkpoint {str(path)!r}: {err}", stacklevel=2)
                continue
            return path
        return None

    def restore(self, target=None, step: int | None = None) -> Checkpoint:
        """``load`` checkpoint ``step``, or by default the newest one that is intact (corrupt
        ones are skipped with a warning naming them), into ``target``.

        Raises :class:`CheckpointError` when there is none, and
        :class:`CheckpointMismatchError` when the newest intact one does not fit ``target``.
        """
        if step is not None:
            return load(self.path(step), target)
        for path in reversed(self.list()):
            try:
                return load(path, target)
            except CheckpointCorruptError as err:
                warnings.warn(f"skipping corrupt checkpoint {str(path)!r}: {err}", stacklevel=2)
        raise CheckpointError(f"no valid checkpoint in {str(self.directory)!r}")


def _to_float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        raise TypeError(f"CheckpointManager.save: metrics must be numbers, got {value!r}") from None
