"""Datasets, preprocessing and batching.

Built in or generated locally (never downloaded): the digits, the toy sets (quadrant, logic
gates, playground), MNIST-1D. MNIST is read from IDX files and downloaded only on request
(``load_mnist(download=True)``).
"""
from fnn.data.batching import batches, epochs
from fnn.data.digits import Split, load_digits
from fnn.data.mnist import load_mnist, read_idx
from fnn.data.mnist1d import load_mnist1d, mnist1d_stream
from fnn.data.preprocess import (PCA, Scaler, fit_center, fit_minmax, fit_pca, fit_pca_whiten,
                                 fit_standardize, fit_zca_whiten)
from fnn.data.sequences import (ADDING_BASELINE_MSE, adding_problem, copy_memory,
                                 copy_memory_baseline, mackey_glass, sine_windows,
                                 sum_of_sines_windows, windows)
from fnn.data.toy import (circle, gaussian, logic_gate, moons, multi_gaussian, plane, playground,
                          quadrant, spiral, xor)

__all__ = [
    "Split", "load_digits",
    "quadrant", "logic_gate", "circle", "xor", "gaussian", "spiral", "moons", "playground",
    "plane", "multi_gaussian",
    "load_mnist", "read_idx", "load_mnist1d", "mnist1d_stream",
    "Scaler", "PCA", "fit_center", "fit_standardize", "fit_minmax", "fit_pca",
    "fit_pca_whiten", "fit_zca_whiten",
    "batches", "epochs",
]
__all__ += ["windows", "sine_windows", "sum_of_sines_windows", "mackey_glass", "adding_problem",
            "copy_memory", "copy_memory_baseline", "ADDING_BASELINE_MSE"]
