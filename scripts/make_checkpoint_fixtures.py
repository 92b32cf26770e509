"""Write one checkpoint of each format version, for tests/test_checkpoint_fixtures.py.

    python scripts/make_checkpoint_fixtures.py --out tests/fixtures/checkpoint

* ``v1.npz``: format version 1 (one file): nested dicts, a tuple, a list, float32, bfloat16,
  int32 and bool leaves, a typed PRNG key, a Python int, and metadata.
* ``v2.npz`` + ``v2.p0.npz`` + ``v2.p1.npz``: format version 2, written by two processes
  (``jax.distributed`` on CPU, 2 devices each): an (8, 3) float32 array sharded over the
  4 devices of both processes (saved in pieces, one shard file per process) and a replicated
  int32 scalar.

The committed files were written by main at 7216676 (``PYTHONPATH=/work/main``), i.e. by the
code before fnn.checkpoint became a package, so the test proves those files still load.
:func:`expected` gives what each file holds; the test compares against it.
"""
from __future__ import annotations

import argparse
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np


def expected(version: int) -> dict:
    """What ``v<version>.npz`` holds, as NumPy values (PRNG keys as their key data)."""
    rng = np.random.RandomState(version)
    if version == 1:
        return {"params": {"dense_0": {"w": rng.randn(3, 4).astype(np.float32),
                                       "b": np.arange(4, dtype=np.float32)}},
                "half": np.asarray([1.5, -2.0, 0.25], np.float32),   # saved as bfloat16
                "seq": (np.int32(7), [np.asarray([True, False])]),
                "epoch": 3}
    return {"x": rng.randn(8, 3).astype(np.float32), "step": np.int32(11)}


METADATA = {1: {"epoch": 3, "note": "format version 1"}, 2: {"note": "format version 2"}}


def write_v1(out: Path) -> None:
    import jax
    import jax.numpy as jnp

    from fnn import checkpoint

    tree = expected(1)
    tree = {**tree, "half": jnp.asarray(tree["half"], jnp.bfloat16), "key": jax.random.key(42)}
    checkpoint.save(out / "v1.npz", tree, metadata=METADATA[1])


def write_v2_process(out: Path, process: int, port: int) -> None:
    """One of the two processes that write ``v2.npz``."""
    import jax

    jax.config.update("jax_num_cpu_devices", 2)
    jax.distributed.initialize(f"127.0.0.1:{port}", 2, process, initialization_timeout=60)
    from jax.sharding import NamedSharding, PartitionSpec as P

    from fnn import checkpoint

    mesh = jax.make_mesh((4,), ("data",))
    tree = expected(2)
    x = jax.make_array_from_callback(tree["x"].shape, NamedSharding(mesh, P("data")),
                                     lambda index: tree["x"][index])
    checkpoint.save(out / "v2.npz", {"x": x, "step": tree["step"]}, metadata=METADATA[2])
    jax.distributed.shutdown()


def write_v2(out: Path) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "JAX_PLATFORMS": "cpu"}
    env.pop("XLA_FLAGS", None)
    procs = [subprocess.Popen([sys.executable, __file__, "--out", str(out), "--process", str(i),
                               "--port", str(port)], env=env) for i in range(2)]
    for p in procs:
        if p.wait(timeout=300) != 0:
            raise SystemExit(f"a v2 writer process failed (exit {p.returncode})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--process", type=int, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.process is not None:
        write_v2_process(args.out, args.process, args.port)
        return
    write_v1(args.out)
    write_v2(args.out)
    print(f"wrote {', '.join(sorted(p.name for p in args.out.glob('v*.npz')))} to {args.out}")


if __name__ == "__main__":
    main()
