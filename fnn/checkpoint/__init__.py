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

The package is layered, each module importing only those before it: ``encoding`` (format,
errors, leaf encoding, the single-file archive writer and verified reader) < ``pieces``
(version 2's shard files) < ``saveload`` (``save``, ``load``, ``restore``, ``verify``) <
``manager`` (:class:`CheckpointManager`). Files written before #23 also hold a ``treedef``
string in the manifest; it was never read and is no longer written.
"""
from fnn.checkpoint.encoding import (FORMAT, VERSION, Checkpoint, CheckpointCorruptError,
                                     CheckpointError, CheckpointMismatchError, read_manifest)
from fnn.checkpoint.manager import CheckpointManager
from fnn.checkpoint.pieces import shard_file
from fnn.checkpoint.saveload import load, restore, save, verify

__all__ = ["CheckpointError", "CheckpointCorruptError", "CheckpointMismatchError", "Checkpoint",
           "save", "load", "restore", "read_manifest", "verify", "CheckpointManager",
           "shard_file", "FORMAT", "VERSION"]
