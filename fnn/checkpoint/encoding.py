"""Checkpoint format, layer 1 of 4 (encoding < pieces < save/load < manager): the format's
constants and errors, how one pytree leaf becomes a stored array and manifest fields (key
paths, dtypes, PRNG keys), and the single-file archive: writing it atomically, reading it back
fully verified. The format itself is described in :mod:`fnn.checkpoint`.
"""
from __future__ import annotations

import contextlib
import hashlib
import io
import json
import os
import tempfile
import zipfile
from pathlib import Path
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

__all__ = ["FORMAT", "VERSION", "MANIFEST", "TRAILER", "CheckpointError",
           "CheckpointCorruptError", "CheckpointMismatchError", "Checkpoint", "key_entry",
           "keystr", "is_prng_key", "numpy_native", "leaf_to_numpy", "dtype_from_name",
           "npy_bytes", "json_safe", "write_archive", "open_archive", "read_manifest",
           "read_archive"]

FORMAT = "fnn.checkpoint"
VERSION = 2   # 1: one file; 2: plus the pieces of arrays that span processes, in shard files
MANIFEST = "manifest.json"
TRAILER = b"fnn-sha256:"   # ZIP comment: this tag, then the file's SHA-256 in hex (64 bytes)


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

def key_entry(key, where: str) -> list:
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


def keystr(path) -> str:
    return jax.tree_util.keystr(tuple(path)) or "<root>"


# ----------------------------------------------------------------------------- dtypes

def is_prng_key(x) -> bool:
    dtype = getattr(x, "dtype", None)
    return dtype is not None and jax.dtypes.issubdtype(dtype, jax.dtypes.prng_key)


def numpy_native(dtype: np.dtype) -> bool:
    """Whether a .npy header can name ``dtype`` (plain NumPy numbers and bools)."""
    return dtype.kind in "biufc" and dtype.type.__module__ == "numpy"


def leaf_to_numpy(leaf, where: str):
    """``(array to store, manifest fields)`` for one leaf."""
    impl = None
    if is_prng_key(leaf):
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
    if not numpy_native(array.dtype):
        stored = array.view(np.dtype(f"<u{array.dtype.itemsize}"))
    return stored, {"dtype": dtype_name, "shape": list(shape), "stored_dtype": stored.dtype.name,
                    "prng_impl": impl}


def dtype_from_name(name: str, where: str, path) -> np.dtype:
    try:
        return np.dtype(jnp.dtype(name))
    except TypeError:
        raise CheckpointCorruptError(f"checkpoint {path}: unknown dtype {name!r} for {where}") from None


# ----------------------------------------------------------------------------- writing

def fsync_dir(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return  # e.g. platforms without directory fds
    try:
        with contextlib.suppress(OSError):  # best effort: some filesystems refuse it
            os.fsync(fd)
    finally:
        os.close(fd)


def npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def sha256_of(f, size: int) -> str:
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


def json_safe(value, where="metadata"):
    """Check that ``value`` is JSON-able (dicts with str keys, lists, numbers, strings, None)."""
    try:
        return json.loads(json.dumps(value, allow_nan=True))
    except (TypeError, ValueError) as err:
        raise TypeError(f"checkpoint: {where} must be JSON-serialisable (dicts, lists, numbers, "
                        f"strings): {err}") from None


def write_archive(path: Path, manifest: dict, blobs: list) -> Path:
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
                archive.comment = TRAILER + b"0" * 64   # placeholder, filled in below
                archive.writestr(MANIFEST, json.dumps(manifest, indent=1, allow_nan=True))
                entries = [l["entry"] for l in manifest["leaves"] if l["entry"] is not None]
                for entry, blob in zip(entries, blobs):
                    archive.writestr(entry, blob)
            f.seek(0, os.SEEK_END)
            digest = sha256_of(f, f.tell() - 64)
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
    fsync_dir(directory)
    return path


# ----------------------------------------------------------------------------- reading

def open_archive(path) -> zipfile.ZipFile:
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


def read_entry(archive: zipfile.ZipFile, name: str, path, what: str) -> bytes:
    try:
        return archive.read(name)
    except KeyError:
        raise CheckpointCorruptError(f"checkpoint {str(path)!r} has no entry {name!r} ({what})") from None
    except Exception as err:  # noqa: BLE001 - CRC errors, damaged headers, ...
        raise CheckpointCorruptError(f"checkpoint {str(path)!r} is corrupted: entry {name!r} "
                                     f"({what}) cannot be read: {err}") from None


def parse_manifest(archive, path) -> dict:
    if MANIFEST not in archive.namelist():
        raise CheckpointCorruptError(
            f"{str(path)!r} is an .npz archive without {MANIFEST}: not an fnn checkpoint "
            f"(write checkpoints with fnn.checkpoint.save)")
    raw = read_entry(archive, MANIFEST, path, "the manifest")
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
    with open_archive(path) as archive:
        return parse_manifest(archive, path)


def read_archive(path) -> tuple[dict, list, str]:
    """``(manifest, arrays, sha256)`` of ONE checkpoint file, read once and fully verified
    (ZIP CRCs, the payload's SHA-256, the whole-file SHA-256 of the trailer, every entry's
    .npy header, dtype and shape). ``arrays`` holds one NumPy array per manifest leaf (the
    stored key data for PRNG keys) and None for a leaf saved in pieces in other files (see
    :mod:`fnn.checkpoint.pieces`); ``sha256`` is the file's verified whole-file hash."""
    with open_archive(path) as archive:
        manifest = parse_manifest(archive, path)
        digest = hashlib.sha256()
        arrays = []
        for leaf in manifest["leaves"]:
            if leaf["entry"] is None:
                arrays.append((leaf, None))
                continue
            blob = read_entry(archive, leaf["entry"], path, f"leaf {leaf['path']}")
            digest.update(blob)
            arrays.append((leaf, blob))
        comment = archive.comment
    if digest.hexdigest() != manifest["payload_sha256"]:
        raise CheckpointCorruptError(
            f"checkpoint {str(path)!r} is corrupted: the payload's SHA-256 is "
            f"{digest.hexdigest()[:16]}..., the manifest records {manifest['payload_sha256'][:16]}...")
    if not (len(comment) == len(TRAILER) + 64 and comment.startswith(TRAILER)):
        raise CheckpointCorruptError(f"checkpoint {str(path)!r} is truncated or corrupted: it "
                                     f"does not end with its whole-file SHA-256 (the ZIP comment "
                                     f"{TRAILER.decode()}<64 hex digits>)")
    with open(path, "rb") as f:
        f.seek(0, os.SEEK_END)
        actual = sha256_of(f, f.tell() - 64)
    if actual.encode("ascii") != comment[len(TRAILER):]:
        raise CheckpointCorruptError(
            f"checkpoint {str(path)!r} is corrupted: the file's SHA-256 is {actual[:16]}..., its "
            f"trailer records {comment[len(TRAILER):len(TRAILER) + 16].decode('ascii', 'replace')}...")
    out = []
    for leaf, blob in arrays:
        out.append(None if blob is None else _decode(leaf, blob, path))
    return manifest, out, actual


def _decode(leaf: dict, blob: bytes, path) -> np.ndarray:
    """One entry's .npy bytes as the leaf's array, checked against its manifest fields."""
    try:
        array = np.load(io.BytesIO(blob), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise CheckpointCorruptError(f"checkpoint {str(path)!r}: leaf {leaf['path']} is not a "
                                     f"valid .npy array: {err}") from None
    stored = dtype_from_name(leaf["stored_dtype"], leaf["path"], path)
    if array.dtype != stored:
        raise CheckpointCorruptError(f"checkpoint {str(path)!r}: leaf {leaf['path']} holds "
                                     f"{array.dtype}, the manifest says {stored}")
    if leaf.get("prng_impl"):
        return array
    dtype = dtype_from_name(leaf["dtype"], leaf["path"], path)
    if dtype != stored:
        array = array.view(dtype)
    if list(array.shape) != list(leaf["shape"]):
        raise CheckpointCorruptError(f"checkpoint {str(path)!r}: leaf {leaf['path']} has shape "
                                     f"{array.shape}, the manifest says {tuple(leaf['shape'])}")
    return array
