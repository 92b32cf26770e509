"""Checkpoints written by earlier fnn still load: one committed file of each format version
(tests/fixtures/checkpoint, written by scripts/make_checkpoint_fixtures.py from main at 7216676,
before fnn.checkpoint became a package), compared leaf by leaf with what the script saved."""
import importlib.util
import json
import shutil
import zipfile
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn import checkpoint
from fnn.checkpoint import encoding

FIXTURES = Path(__file__).parent / "fixtures" / "checkpoint"
_spec = importlib.util.spec_from_file_location(
    "make_checkpoint_fixtures",
    Path(__file__).parents[1] / "scripts" / "make_checkpoint_fixtures.py")
script = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(script)


def test_version_1_loads_into_a_target_and_without_one():
    want = script.expected(1)
    assert checkpoint.read_manifest(FIXTURES / "v1.npz")["version"] == 1
    target = {**want, "half": jnp.zeros(3, jnp.bfloat16), "key": jax.random.key(0)}
    got = checkpoint.load(FIXTURES / "v1.npz", target)
    assert got.metadata == script.METADATA[1]
    np.testing.assert_array_equal(got.tree["params"]["dense_0"]["w"], want["params"]["dense_0"]["w"])
    np.testing.assert_array_equal(got.tree["params"]["dense_0"]["b"], want["params"]["dense_0"]["b"])
    assert got.tree["half"].dtype == jnp.bfloat16
    np.testing.assert_array_equal(np.asarray(got.tree["half"], np.float32), want["half"])
    assert got.tree["seq"][0] == 7 and got.tree["seq"][1][0].tolist() == [True, False]
    assert got.tree["epoch"] == 3 and type(got.tree["epoch"]) is int
    np.testing.assert_array_equal(jax.random.key_data(got.tree["key"]),
                                  jax.random.key_data(jax.random.key(42)))
    untargeted = checkpoint.restore(FIXTURES / "v1.npz")
    assert isinstance(untargeted["seq"], list) and untargeted["epoch"] == 3


def test_version_2_puts_the_pieces_of_two_processes_together():
    want = script.expected(2)
    manifest = checkpoint.verify(FIXTURES / "v2.npz")
    assert manifest["version"] == 2 and sorted(manifest["shards"]) == ["v2.p0.npz", "v2.p1.npz"]
    got = checkpoint.load(FIXTURES / "v2.npz", {"x": np.zeros((8, 3), np.float32),
                                                "step": np.int32(0)})
    np.testing.assert_array_equal(got.tree["x"], want["x"])
    assert got.tree["step"] == 11 and got.metadata == script.METADATA[2]


def test_each_shard_file_is_read_and_hashed_once(monkeypatch):
    calls = []
    real = encoding.read_archive

    def counting(path):
        calls.append(Path(path).name)
        return real(path)

    monkeypatch.setattr("fnn.checkpoint.pieces.read_archive", counting)
    monkeypatch.setattr("fnn.checkpoint.saveload.read_archive", counting)
    checkpoint.restore(FIXTURES / "v2.npz")
    assert sorted(calls) == ["v2.npz", "v2.p0.npz", "v2.p1.npz"]


def test_a_shard_file_replaced_by_another_save_is_refused(tmp_path):
    for f in FIXTURES.glob("v2*.npz"):
        shutil.copy(f, tmp_path / f.name)
    shutil.copy(FIXTURES / "v2.p0.npz", tmp_path / "v2.p1.npz")   # intact, but not the one
    with pytest.raises(checkpoint.CheckpointCorruptError,
                       match=r"shard file '.*v2\.p1\.npz' has SHA-256 .*, the checkpoint records"):
        checkpoint.restore(tmp_path / "v2.npz")


def test_the_never_read_treedef_is_no_longer_written(tmp_path):
    assert "treedef" in json.loads(zipfile.ZipFile(FIXTURES / "v1.npz").read("manifest.json"))
    checkpoint.save(tmp_path / "new.npz", {"w": np.ones(2, np.float32)})
    manifest = checkpoint.read_manifest(tmp_path / "new.npz")
    assert "treedef" not in manifest and manifest["version"] == 1
