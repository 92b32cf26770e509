"""fnn.checkpoint: any pytree round-trips bit for bit with its structure; the format is the
documented one; damaged, foreign or mismatched files raise errors that say what is wrong;
writes are atomic; the manager keeps the last K and the best and finds the newest valid one."""
import hashlib
import io
import json
import os
import warnings
import zipfile

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn
from fnn import checkpoint
from fnn.checkpoint import CheckpointCorruptError, CheckpointError, CheckpointMismatchError


def training_state():
    """Everything a training run carries, in every leaf kind fnn meets."""
    net = fnn.serial(fnn.Dense(4), fnn.tanh, fnn.Dense(3))
    params, model_state = net.init(jax.random.key(0), (2,))
    return {
        "params": params,
        "model_state": model_state,
        "fnn_adam": fnn.optim.adam(1e-3).init(params),               # NamedTuples in a tuple
        "optax_sgd": optax.sgd(0.1, momentum=0.9).init(params),
        "injected": optax.inject_hyperparams(optax.adam)(learning_rate=0.1).init(params),
        "key": jax.random.fold_in(jax.random.key(7), 3),              # typed key
        "keys": jax.random.split(jax.random.key(1), 3),               # batch of typed keys
        "raw_key": jax.random.PRNGKey(5),                              # uint32[2]
        "step": jnp.int32(12),
        "epoch": 3,
        "lr": 0.25,
        "done": False,
        "half": jnp.arange(6, dtype=jnp.bfloat16).reshape(2, 3) / 3,
        "small": np.array([-3, 7], np.int8),
        "mask": np.array([True, False]),
        "history": {"loss": [0.5, 0.25], "accuracy": np.array([0.5, 0.75], np.float32)},
    }


def leaves_equal(a, b):
    la, lb = jax.tree.leaves(a), jax.tree.leaves(b)
    assert len(la) == len(lb)
    for x, y in zip(la, lb):
        if jax.dtypes.issubdtype(getattr(x, "dtype", None), jax.dtypes.prng_key):
            assert jax.random.key_impl(x) == jax.random.key_impl(y)
            x, y = jax.random.key_data(x), jax.random.key_data(y)
        assert type(x) is type(y) or (isinstance(x, jax.Array) and isinstance(y, jax.Array))
        assert np.asarray(x).dtype == np.asarray(y).dtype
        assert np.array_equal(np.asarray(x), np.asarray(y))


def test_any_training_state_round_trips_bit_for_bit(tmp_path):
    tree = training_state()
    path = checkpoint.save(tmp_path / "state.npz", tree, metadata={"epoch": 3, "note": "ok"})
    restored = checkpoint.restore(path, tree)
    assert jax.tree.structure(restored) == jax.tree.structure(tree)
    leaves_equal(tree, restored)
    assert isinstance(restored["fnn_adam"][0], fnn.optim.ScaleByAdamState)
    assert restored["epoch"] == 3 and type(restored["epoch"]) is int
    assert checkpoint.load(path, tree).metadata == {"epoch": 3, "note": "ok"}


def test_an_abstract_target_is_enough_and_weak_types_survive(tmp_path):
    net = fnn.serial(fnn.Dense(3), fnn.relu, fnn.Dense(2))
    params, _ = net.init(jax.random.key(0), (5,))
    tree = {"params": params, "scale": jnp.asarray(0.5)}               # weakly typed scalar
    assert tree["scale"].weak_type
    checkpoint.save(tmp_path / "c.npz", tree)
    abstract = jax.eval_shape(lambda: tree)
    leaves_equal(tree, checkpoint.restore(tmp_path / "c.npz", abstract))
    assert checkpoint.restore(tmp_path / "c.npz", tree)["scale"].weak_type


def test_without_a_target_restore_gives_nested_dicts_and_lists(tmp_path):
    tree = {"a": {"w": np.ones((2, 2), np.float32)}, "seq": (np.int32(1), [np.zeros(2)]),
            "key": jax.random.key(4)}
    checkpoint.save(tmp_path / "c.npz", tree)
    out = checkpoint.restore(tmp_path / "c.npz")
    assert set(out) == {"a", "key", "seq"} and isinstance(out["seq"], list)
    assert np.array_equal(out["seq"][1][0], np.zeros(2)) and out["a"]["w"].dtype == np.float32
    assert np.array_equal(jax.random.key_data(out["key"]), jax.random.key_data(tree["key"]))
    array = np.float32(2.5)
    checkpoint.save(tmp_path / "leaf.npz", array)                      # a bare leaf is a tree
    assert checkpoint.restore(tmp_path / "leaf.npz") == 2.5


def _write_by_hand(path, manifest_leaves, blobs, *, version=1, payload_sha=None):
    """Build a checkpoint from the documented format alone (no fnn code)."""
    manifest = {"format": "fnn.checkpoint", "version": version, "leaves": manifest_leaves,
                "payload_sha256": payload_sha or hashlib.sha256(b"".join(blobs)).hexdigest(),
                "metadata": {"by": "hand"}}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.comment = b"fnn-sha256:" + b"0" * 64
        archive.writestr("manifest.json", json.dumps(manifest))
        for leaf, blob in zip(manifest_leaves, blobs):
            archive.writestr(leaf["entry"], blob)
    raw = buffer.getvalue()
    path.write_bytes(raw[:-64] + hashlib.sha256(raw[:-64]).hexdigest().encode())


def _npy(array, allow_pickle=False):
    buffer = io.BytesIO()
    np.lib.format.write_array(buffer, array, allow_pickle=allow_pickle)
    return buffer.getvalue()


def test_the_format_is_the_documented_one(tmp_path):
    w = np.arange(6, dtype=np.float32).reshape(2, 3)
    bf = np.asarray(jnp.array([1.5, -2.0], jnp.bfloat16))
    leaves = [{"path": "['w']", "keys": [["dict", "w"]], "entry": "0.npy", "dtype": "float32",
               "shape": [2, 3], "stored_dtype": "float32", "prng_impl": None},
              {"path": "['h']", "keys": [["dict", "h"]], "entry": "1.npy", "dtype": "bfloat16",
               "shape": [2], "stored_dtype": "uint16", "prng_impl": None}]
    _write_by_hand(tmp_path / "hand.npz", leaves, [_npy(w), _npy(bf.view(np.uint16))])
    out = checkpoint.load(tmp_path / "hand.npz", {"h": jnp.zeros(2, jnp.bfloat16),
                                                  "w": np.zeros((2, 3), np.float32)})
    assert np.array_equal(out.tree["w"], w) and out.metadata == {"by": "hand"}
    assert out.tree["h"].dtype == jnp.bfloat16 and np.array_equal(out.tree["h"], bf)
    # and what save writes reads back with plain NumPy (allow_pickle=False)
    checkpoint.save(tmp_path / "fnn.npz", {"w": w})
    with np.load(tmp_path / "fnn.npz", allow_pickle=False) as npz:
        assert np.array_equal(npz["0"], w)
        manifest = json.loads(npz["manifest.json"])
    assert manifest["version"] == 1 and manifest["leaves"][0]["path"] == "['w']"  # one process


def test_loading_never_unpickles(tmp_path):
    blob = _npy(np.array([{"x": 1}], dtype=object), allow_pickle=True)
    leaves = [{"path": "['o']", "keys": [["dict", "o"]], "entry": "0.npy", "dtype": "float32",
               "shape": [1], "stored_dtype": "float32", "prng_impl": None}]
    _write_by_hand(tmp_path / "evil.npz", leaves, [blob])
    with pytest.raises(CheckpointCorruptError, match=r"leaf \['o'\] is not a valid \.npy array: "
                                                     r".*allow_pickle=False"):
        checkpoint.restore(tmp_path / "evil.npz")


@pytest.mark.parametrize("target, message", [
    (lambda t: {**t, "extra": np.zeros(1)}, r"key path \['extra'\] is in the target but not in "
                                            r"the checkpoint"),
    (lambda t: {k: v for k, v in t.items() if k != "b"}, r"key path \['b'\] is in the checkpoint "
                                                         r"but not in the target"),
    (lambda t: {**t, "a": {"w": np.zeros((3, 2), np.float32)}}, r"at \['a'\]\['w'\]: shape \(2, 3\) "
                                                                r"in the checkpoint, \(3, 2\) in the target"),
    (lambda t: {**t, "a": {"w": np.zeros((2, 3), np.float16)}}, r"at \['a'\]\['w'\]: dtype float32 in "
                                                                r"the checkpoint, float16 in the target"),
    (lambda t: {**t, "b": jax.random.key(0)}, r"at \['b'\]: the checkpoint holds int32\[\], the "
                                              r"target expects PRNG key"),
    (lambda t: {**t, "k": np.zeros(2, np.uint32)}, r"at \['k'\]: the checkpoint holds a PRNG key "
                                                   r"\(threefry2x32\)"),
    (lambda t: {**t, "b": 1.5}, r"at \['b'\]: the checkpoint holds int32\[\], the target expects "
                                r"a Python float"),
])
def test_a_mismatched_target_names_the_first_differing_key_path(tmp_path, target, message):
    tree = {"a": {"w": np.ones((2, 3), np.float32)}, "b": np.int32(4), "k": jax.random.key(1)}
    checkpoint.save(tmp_path / "c.npz", tree)
    with pytest.raises(CheckpointMismatchError, match=message):
        checkpoint.restore(tmp_path / "c.npz", target(tree))


def test_every_flipped_byte_and_every_truncation_is_detected(tmp_path):
    path = checkpoint.save(tmp_path / "c.npz", {"w": np.arange(4, dtype=np.float32)})
    raw = path.read_bytes()
    damaged = tmp_path / "d.npz"
    for i in range(len(raw)):
        flipped = bytearray(raw)
        flipped[i] ^= 0x01
        damaged.write_bytes(bytes(flipped))
        with pytest.raises(CheckpointCorruptError):
            checkpoint.restore(damaged)
    for size in (0, 10, len(raw) // 2, len(raw) - 1):
        damaged.write_bytes(raw[:size])
        with pytest.raises(CheckpointCorruptError, match=r"truncated"):
            checkpoint.restore(damaged)


def test_damage_messages_say_what_is_wrong(tmp_path):
    w = np.arange(64, dtype=np.float32)
    path = checkpoint.save(tmp_path / "c.npz", {"w": w})
    raw = bytearray(path.read_bytes())
    at = bytes(raw).find(w.tobytes())
    raw[at + 5] ^= 0xFF                                          # inside the array's bytes
    (tmp_path / "d.npz").write_bytes(bytes(raw))
    with pytest.raises(CheckpointCorruptError, match=r"is corrupted: entry '0\.npy' \(leaf \['w'\]\) "
                                                     r"cannot be read: Bad CRC-32"):
        checkpoint.restore(tmp_path / "d.npz")
    np.savez(tmp_path / "plain.npz", w=w)
    with pytest.raises(CheckpointCorruptError, match=r"without manifest\.json: not an fnn checkpoint"):
        checkpoint.restore(tmp_path / "plain.npz")
    _write_by_hand(tmp_path / "future.npz", [], [], version=3)
    with pytest.raises(CheckpointCorruptError, match=r"format version 3; this fnn reads version 2 \(and 1\)"):
        checkpoint.restore(tmp_path / "future.npz")
    _write_by_hand(tmp_path / "sha.npz", [], [], payload_sha="0" * 64)
    with pytest.raises(CheckpointCorruptError, match=r"the payload's SHA-256 is e3b0c44298fc1c14\.\.\., "
                                                     r"the manifest records 0000000000000000"):
        checkpoint.restore(tmp_path / "sha.npz")
    assert issubclass(CheckpointCorruptError, CheckpointError) and issubclass(CheckpointError, ValueError)


def test_writes_are_atomic_and_synced(tmp_path, monkeypatch):
    path = checkpoint.save(tmp_path / "c.npz", {"w": np.zeros(3, np.float32)})
    before = path.read_bytes()
    events = []
    real_fsync, real_replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append("fsync") or real_fsync(fd))
    monkeypatch.setattr(os, "replace", lambda a, b: events.append("replace") or real_replace(a, b))
    checkpoint.save(path, {"w": np.ones(3, np.float32)})
    assert events == ["fsync", "replace", "fsync"]               # file, rename, directory
    assert np.array_equal(checkpoint.restore(path)["w"], np.ones(3))

    def crash(a, b):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", crash)
    path.write_bytes(before)
    with pytest.raises(CheckpointError, match=r"cannot write checkpoint .*No space left on device"):
        checkpoint.save(path, {"w": np.full(3, 7.0, np.float32)})
    assert path.read_bytes() == before                          # the old file is untouched
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c.npz"]   # no temporary left


def test_the_manager_keeps_the_last_k_and_the_best_and_finds_the_newest_valid(tmp_path):
    manager = checkpoint.CheckpointManager(tmp_path / "run", keep=2, best_metric="val_loss")
    assert manager.list() == [] and manager.latest() is None
    losses = [0.9, 0.2, 0.5, 0.6, 0.7]
    for step, loss in enumerate(losses, start=1):
        manager.save(step, {"w": np.full(2, step, np.float32)}, metrics={"val_loss": loss})
    assert manager.steps() == [2, 4, 5]                        # best (2) + the newest two
    assert manager.best() == manager.path(2)
    assert manager.latest() == manager.path(5)
    manager.path(5).write_bytes(manager.path(5).read_bytes()[:-20])
    with pytest.warns(UserWarning, match=r"skipping corrupt checkpoint .*ckpt-00000005\.npz"):
        assert manager.latest() == manager.path(4)
    with pytest.warns(UserWarning, match="skipping corrupt"):
        restored = manager.restore({"w": np.zeros(2, np.float32)})
    assert restored.metadata["step"] == 4 and restored.tree["w"].tolist() == [4, 4]
    for p in (manager.path(2), manager.path(4)):
        p.write_bytes(b"junk")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(CheckpointError, match="no valid checkpoint in"):
            manager.restore({"w": np.zeros(2, np.float32)})
    best_max = checkpoint.CheckpointManager(tmp_path / "acc", keep=1, best_metric="acc",
                                            best_mode="max")
    for step, acc in enumerate([0.5, 0.9, 0.7]):
        best_max.save(step, {"w": np.zeros(1)}, metrics={"acc": acc})
    assert best_max.steps() == [1, 2]


def test_the_manager_ignores_temporaries_and_other_files(tmp_path):
    manager = checkpoint.CheckpointManager(tmp_path, keep=None)
    manager.save(3, {"w": np.zeros(1)})
    (tmp_path / ".ckpt-00000009.npz.abc.tmp").write_bytes(b"partial")
    (tmp_path / "notes.txt").write_text("hi")
    assert manager.steps() == [3] and manager.latest() == manager.path(3)
