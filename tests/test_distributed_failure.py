"""Issue #22 item 14: a process of a multi-process run is killed. With
:func:`fnn.sharding.initialize` (JAX's heartbeat timeout at 10 s, not its default 100 s) the
survivor ends within 30 s of the loss, with JAX's message naming the lost process, and the
newest checkpoint is intact for a resume. (The end is JAX's: its coordination service
aborts the survivor from C++, so no Python code, fnn's included, runs after it.)

Checked in two parts, so no test sits idle through 10 s of heartbeats: ``initialize`` hands
JAX fnn's 10 s timeouts, and a real two-process run with a HEARTBEAT_S timeout ends its
survivor within HEARTBEAT_S + 20 s of the loss (with 10 s: within 30 s)."""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import jax
import pytest

import fnn
from fnn import checkpoint

WORKER = Path(__file__).with_name("distributed_failure_worker.py")
HEARTBEAT_S = 3


def test_initialize_gives_jax_fnns_heartbeat_and_shutdown_timeouts(monkeypatch):
    calls = []
    monkeypatch.setattr(jax.distributed, "initialize", lambda *a, **kw: calls.append((a, kw)))
    fnn.sharding.initialize("127.0.0.1:1234", 2, 1, initialization_timeout=60)
    assert fnn.sharding.HEARTBEAT_TIMEOUT_S == 10
    assert calls == [(("127.0.0.1:1234", 2, 1), {"heartbeat_timeout_seconds": 10,
                                                 "shutdown_timeout_seconds": 10,
                                                 "initialization_timeout": 60})]


@pytest.mark.slow
def test_item14_survivors_end_20_s_after_the_heartbeat_timeout_naming_the_lost_one(tmp_path):
    sys.path.insert(0, str(WORKER.parent))
    from test_distributed import free_port
    port, env = free_port(), {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}
    env.pop("XLA_FLAGS", None)
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(tmp_path), str(i), "2",
                               str(port), str(HEARTBEAT_S)], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, env=env) for i in range(2)]
    try:
        logs = [p.communicate(timeout=240)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    ended = time.time()
    lost = float(re.search(r"LOST (\d+\.\d+)", logs[1]).group(1))
    assert procs[1].returncode == 9
    assert procs[0].returncode != 0 and "END" not in logs[0]       # ended by JAX, not fit
    assert ended - lost < HEARTBEAT_S + 20, f"the survivor ended {ended - lost:.1f} s after loss"
    assert re.search(r"tasks are unhealthy \(stopped sending heartbeats\):\s*1", logs[0]), \
        logs[0][-2000:]
    manager = checkpoint.CheckpointManager(tmp_path / "ckpt")
    newest = manager.latest()                                     # intact, for resume=True
    assert newest is not None and manager.steps()[-1] in (4, 6)
    assert checkpoint.read_manifest(newest)["metadata"]["fit"]["epoch"] in (4, 6)
