"""scikit-learn's bundled 8x8 handwritten digits (1797 images, 10 classes), the built-in
image dataset: no download, ever."""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

__all__ = ["Split", "load_digits"]

TEST_SIZE = 360  # the fixed test split: the last 360 images of a seed-0 permutation


class Split(NamedTuple):
    """Train and test arrays: x float32, y int32 class labels."""
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray


def load_digits(*, flatten: bool = True) -> Split:
    """The digits with pixel values scaled from 0..16 to [0, 1] and a fixed split of 1437
    train / 360 test images (a permutation by ``np.random.RandomState(0)``).

    Shapes: x (N, 64) when ``flatten`` else (N, 8, 8, 1) (NHWC); y (N,) in 0..9.
    """
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.images / 16.0).astype(np.float32)
    x = x.reshape(len(x), 64) if flatten else x[..., None]
    y = bunch.target.astype(np.int32)
    order = np.random.RandomState(0).permutation(len(x))
    train, test = order[:-TEST_SIZE], order[-TEST_SIZE:]
    return Split(x[train], y[train], x[test], y[test])
