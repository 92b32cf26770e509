"""One process of tests/test_distributed_failure.py (not a test module itself).

    python tests/distributed_failure_worker.py OUT PROCESS_ID NUM_PROCESSES PORT HEARTBEAT_S

Joins ``jax.distributed`` through :func:`fnn.sharding.initialize` (2 CPU devices per process;
its heartbeat timeout HEARTBEAT_S seconds)
and trains data-parallel with a checkpoint every 2 epochs into OUT/ckpt; process 1 dies
(``os._exit``) after epoch 5, printing ``LOST <unix time>`` first; every process prints
``END`` if its ``fit`` ever returns or raises (a survivor must not)."""
import os
import sys
import time
from pathlib import Path

import jax

sys.path.insert(0, str(Path(__file__).parent))
import distributed_worker  # noqa: E402


def main(out, process_id, num_processes, port, heartbeat_s):
    import fnn
    jax.config.update("jax_num_cpu_devices", 2)
    fnn.sharding.initialize(f"127.0.0.1:{port}", num_processes, process_id,
                            heartbeat_timeout_seconds=heartbeat_s,
                            shutdown_timeout_seconds=heartbeat_s, initialization_timeout=60)
    mesh = jax.make_mesh((4,), ("data",))
    rows = distributed_worker.local_rows(mesh)
    x, y = distributed_worker.data()
    xs, ys = fnn.sharding.shard_data((x[rows], y[rows]), mesh)
    net = fnn.serial(fnn.Dense(16), fnn.relu, fnn.Dense(3))
    params, _ = net.init(jax.random.key(0), (6,))

    def die(epoch, metrics):
        if process_id == 1 and epoch == 5:
            print(f"LOST {time.time():.3f}", file=sys.stderr, flush=True)
            os._exit(9)

    try:
        fnn.fit(fnn.supervised(net), params, fnn.optim.adam(1e-2), (xs, ys), epochs=10_000,
                batch_size=32, progress=False, checkpoint_dir=Path(out) / "ckpt",
                checkpoint_every=2, callbacks=[die])
    finally:
        print(f"END {time.time():.3f}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main(sys.argv[1], *map(int, sys.argv[2:6]))
