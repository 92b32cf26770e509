"""The small classification problem the misuse and checkpoint-ownership tests train on:
Gaussian blobs and a 4-8-3 MLP with its params and objective (shared, not a test module)."""
import jax
import numpy as np

import fnn


def blobs(n=120, d=4, classes=3, seed=0):
    """``(x (n, d) float32, y (n,) int32)``: ``classes`` Gaussian blobs with centres ~ N(0, 9)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(size=(classes, d)) * 3
    y = rng.integers(0, classes, n).astype(np.int32)
    x = (centers[y] + rng.normal(size=(n, d))).astype(np.float32)
    return x, y


NET = fnn.serial(fnn.Dense(8), fnn.relu, fnn.Dense(3))
PARAMS = NET.init(jax.random.key(0), (4,))[0]
OBJ = fnn.supervised(NET)
