"""NumPy: the notes' own training loop (quadrant) and NumPy's matmul (gemm)."""
from __future__ import annotations

import numpy as np

from benchmarks.workloads import Runner


def quadrant(data, config) -> Runner:
    from experiments import quadrant as q

    steps = config["steps"] // 10  # ~10k steps/s: a tenth of the work keeps a call near 0.1 s
    return Runner(lambda: q.numpy_reference(steps, config["hidden"], config["learning_rate"],
                                            config["l2"], 1), steps)


def gemm(data, config) -> Runner:
    n = config["size"]
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n), np.float32) for _ in range(2))
    return Runner(lambda: a @ b, 2 * n ** 3 / 1e9)
