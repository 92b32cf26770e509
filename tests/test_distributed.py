"""Several processes (jax.distributed on CPU, Gloo collectives): 2 processes x 2 devices train
like 1 process x 4 devices, identically on both processes; only process 0 prints progress and
writes checkpoint manifests; a checkpoint of an array spread over the processes is written in
pieces, committed once, restored whole, and a corrupted piece is refused by name.

The processes meet on 127.0.0.1 at a free port; every wait is bounded (a stuck peer fails the
test instead of hanging it) and nothing is synchronised by sleeping."""
import os
import socket
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from fnn import checkpoint

# Processes that meet at a port and wait on each other (Gloo): one xdist worker runs these
# one at a time. (The suite's other process-starting tests share nothing: any worker.)
pytestmark = pytest.mark.xdist_group("processes")
WORKER = Path(__file__).with_name("distributed_worker.py")
sys.path.insert(0, str(WORKER.parent))
import distributed_worker  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run_processes(out: Path, n: int = 2, timeout: float = 240):
    port, env = free_port(), {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(out), str(i), str(n), str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for i in range(n)]
    logs = []
    try:
        for p in procs:
            logs.append(p.communicate(timeout=timeout))
    finally:
        for p in procs:
            p.kill()
    for i, (p, (_, err)) in enumerate(zip(procs, logs)):
        assert p.returncode == 0, f"process {i} failed:\n{err[-3000:]}"
    return [err for _, err in logs]


@pytest.mark.slow
def test_two_processes_of_two_devices_train_like_one_of_four(tmp_path):
    errs = run_processes(tmp_path)
    p0, p1 = (np.load(tmp_path / f"p{i}.npz") for i in range(2))
    alone = distributed_worker.train(tmp_path / "alone")          # this process: 4 devices
    assert (int(p0["processes"]), int(p0["devices"])) == (2, 4) and jax.device_count() == 4
    keys = [k for k in p0.files if k.startswith("[")]
    assert len(keys) == 4
    for k in keys:
        assert np.array_equal(p0[k], p1[k]), k                   # identical on both processes
        np.testing.assert_allclose(p0[k], alone[k], rtol=1e-5, atol=1e-6, err_msg=k)
    np.testing.assert_allclose(p0["loss"], alone["loss"], rtol=1e-5)
    assert p0["restored_locally"] and p1["restored_locally"]
    # progress lines and checkpoint manifests come from process 0 only
    assert "fit: epoch 13/13" in errs[0] and "fit: epoch" not in errs[1]
    assert sorted(p.name for p in (tmp_path / "ckpt").iterdir()) == [
        "ckpt-00000012.npz", "ckpt-00000013.npz"]                 # keep=2; state replicated
    # the data array spans both processes: saved in two pieces, restored whole here
    assert sorted(p.name for p in tmp_path.glob("sharded*.npz")) == [
        "sharded.npz", "sharded.p0.npz", "sharded.p1.npz"]
    restored = checkpoint.restore(tmp_path / "sharded.npz")
    np.testing.assert_array_equal(restored["x"], distributed_worker.data()[0])
    assert checkpoint.read_manifest(tmp_path / "sharded.npz")["version"] == 2
    piece = tmp_path / "sharded.p1.npz"
    blob = bytearray(piece.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    piece.write_bytes(bytes(blob))
    with pytest.raises(checkpoint.CheckpointCorruptError,
                       match=r"its shard file '.*sharded\.p1\.npz' is missing or corrupted"):
        checkpoint.restore(tmp_path / "sharded.npz")
