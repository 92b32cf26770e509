"""Issue #22 item 14: a process of a multi-process run is killed. With
:func:`fnn.sharding.initialize` (JAX's heartbeat timeout at 10 s, not its default 100 s) the
survivor ends within 30 s of the loss, with JAX's message naming the lost process, and the
newest checkpoint is intact for a resume. (The end is JAX's: its coordination service
aborts the survivor from C++, so no Python code, fnn's included, runs after it.)"""
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from fnn import checkpoint

WORKER = Path(__file__).with_name("distributed_failure_worker.py")


@pytest.mark.slow
def test_item14_survivors_end_within_30_s_naming_the_lost_process(tmp_path):
    sys.path.insert(0, str(WORKER.parent))
    from test_distributed import free_port
    port, env = free_port(), {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONUNBUFFERED": "1"}
    env.pop("XLA_FLAGS", None)
    procs = [subprocess.Popen([sys.executable, str(WORKER), str(tmp_path), str(i), "2",
                               str(port)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env) for i in range(2)]
    try:
        logs = [p.communicate(timeout=240)[1] for p in procs]
    finally:
        for p in procs:
            p.kill()
    ended = time.time()
    lost = float(re.search(r"LOST (\d+\.\d+)", logs[1]).group(1))
    assert procs[1].returncode == 9
    assert procs[0].returncode != 0 and "END" not in logs[0]       # ended by JAX, not fit
    assert ended - lost < 30, f"the survivor ended {ended - lost:.1f} s after the loss"
    assert re.search(r"tasks are unhealthy \(stopped sending heartbeats\):\s*1", logs[0]), \
        logs[0][-2000:]
    manager = checkpoint.CheckpointManager(tmp_path / "ckpt")
    newest = manager.latest()                                     # intact, for resume=True
    assert newest is not None and manager.steps()[-1] in (4, 6)
    assert checkpoint.read_manifest(newest)["metadata"]["fit"]["epoch"] in (4, 6)
