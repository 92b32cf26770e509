"""One process of tests/test_distributed.py's multi-process run (not a test module itself).

    python tests/distributed_worker.py OUT PROCESS_ID NUM_PROCESSES PORT

With NUM_PROCESSES > 1 it joins ``jax.distributed`` on 127.0.0.1:PORT (2 CPU devices per
process), otherwise it runs alone on 4 CPU devices. Either way it trains the same MLP
data-parallel over a 4-device ('data',) mesh, each process feeding only its own rows
(``fnn.sharding.shard_data``), checkpoints every epoch into OUT/ckpt, saves an array
sharded over the processes with ``fnn.checkpoint.save`` (OUT/sharded.npz), and writes what it
ended with to OUT/p<PROCESS_ID>.npz. Timeouts are short and bounded: a stuck peer fails the run.
"""
import sys
from pathlib import Path

import jax
import numpy as np

N, FEATURES, CLASSES, BATCH, EPOCHS = 256, 6, 3, 32, 13   # 13 epochs x 8 steps = 104 steps


def data():
    rng = np.random.RandomState(0)
    y = rng.randint(0, CLASSES, N).astype(np.int32)
    x = (rng.randn(N, FEATURES) + 1.5 * np.eye(CLASSES, FEATURES)[y]).astype(np.float32)
    return x, y


def local_rows(mesh, axis="data"):
    """This process's contiguous rows of an (N, ...) array sharded over ``axis``."""
    from jax.sharding import NamedSharding, PartitionSpec as P
    spans = NamedSharding(mesh, P(axis)).addressable_devices_indices_map((N,)).values()
    return slice(min(s[0].start for s in spans), max(s[0].stop for s in spans))


def main(out, process_id, num_processes, port):
    out = Path(out)
    if num_processes > 1:
        jax.config.update("jax_num_cpu_devices", 2)
        jax.distributed.initialize(f"127.0.0.1:{port}", num_processes, process_id,
                                   initialization_timeout=60, heartbeat_timeout_seconds=30,
                                   shutdown_timeout_seconds=30)
    else:
        jax.config.update("jax_num_cpu_devices", 4)
    np.savez(out / f"p{process_id}.npz", **train(out))


def train(out: Path) -> dict:
    """Train, checkpoint, save and restore a sharded array; return what this process ended
    with (params by key path, the loss history, whether the local restore matched)."""
    import fnn
    from fnn import checkpoint

    mesh = jax.make_mesh((4,), ("data",))
    rows = local_rows(mesh)
    x, y = data()
    xs, ys = fnn.sharding.shard_data((x[rows], y[rows]), mesh)
    net = fnn.serial(fnn.Dense(16), fnn.relu, fnn.Dropout(0.1), fnn.Dense(CLASSES))
    params, _ = net.init(jax.random.key(0), (FEATURES,))
    run = fnn.fit(fnn.supervised(net), params, fnn.optim.adam(1e-2), (xs, ys), epochs=EPOCHS,
                  batch_size=BATCH, seed=1, progress=2, checkpoint_dir=out / "ckpt",
                  checkpoint_every=4, keep=2)
    checkpoint.save(out / "sharded.npz", {"x": xs, "step": np.int32(7)})
    restored = checkpoint.restore(out / "sharded.npz", {"x": xs, "step": np.int32(0)})
    same = bool(np.array_equal(fnn.validation.local_values(restored["x"]),
                               fnn.validation.local_values(xs)))
    leaves = {jax.tree_util.keystr(p): np.asarray(a)
              for p, a in jax.tree_util.tree_flatten_with_path(run.params)[0]}
    return dict(loss=run.history["loss"], restored_locally=same,
                processes=jax.process_count(), devices=jax.device_count(), **leaves)


if __name__ == "__main__":
    out_dir, pid, nproc, port_ = sys.argv[1], *map(int, sys.argv[2:5])
    main(out_dir, pid, nproc, port_)
