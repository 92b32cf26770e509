"""MNIST-1D (Greydanus, "Scaling down deep learning", 2020): ten 1-D digit templates, each
example a randomly padded, stretched, shifted, noised and sheared copy of one template,
sampled down to 40 points. Generated locally in about a second; never downloaded.

The generator follows the reference implementation (the ``mnist1d`` package,
``make_dataset`` with ``get_dataset_args()``) step by step and draws its random numbers from
a ``np.random.RandomState(seed)`` in the same order, so the default call reproduces the
published benchmark data (4000 train / 1000 test; logistic regression ~32%, MLP ~68%, CNN
~94% test accuracy). Unlike the reference it never touches NumPy's global random state.
"""
from __future__ import annotations

import numpy as np

from fnn.data.digits import Split
from fnn.validation import integer, number, positive_int

__all__ = ["load_mnist1d", "mnist1d_templates", "mnist1d_stream"]

# The reference generator's defaults (mnist1d's get_dataset_args()).
_ARGS = dict(template_len=12, padding=(36, 60), scale_coeff=0.4, max_translation=48,
             corr_noise_scale=0.25, iid_noise_scale=2e-2, shear_scale=0.75, final_seq_length=40)
# Mean and standard deviation of the raw values of the default benchmark set (seed 42, 5000
# examples): the standardisation load_mnist1d applies to it, reused for streamed examples.
BENCHMARK_MEAN, BENCHMARK_STD = -0.0055075064312771795, 0.15467803420593051

# The ten hand-drawn templates (12 points each), before normalisation.
_TEMPLATES = np.array([
    [5, 6, 6.5, 6.75, 7, 7, 7, 7, 6.75, 6.5, 6, 5],
    [5, 3, 3, 3.4, 3.8, 4.2, 4.6, 5, 5.4, 5.8, 5, 5],
    [5, 6, 6.5, 6.5, 6, 5.25, 4.75, 4, 3.5, 3.5, 4, 5],
    [5, 6, 6.5, 6.5, 6, 5, 5, 6, 6.5, 6.5, 6, 5],
    [5, 4.4, 3.8, 3.2, 2.6, 2.6, 5, 5, 5, 5, 5, 5],
    [5, 3, 3, 3, 3, 5, 6, 6.5, 6.5, 6, 4.5, 5],
    [5, 4, 3.5, 3.25, 3, 3, 3, 3, 3.25, 3.5, 4, 5],
    [5, 7, 7, 6.6, 6.2, 5.8, 5.4, 5, 4.6, 4.2, 5, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 4, 3.5, 3.5, 4, 5],
    [5, 4, 3.5, 3.5, 4, 5, 5, 5, 5, 4.7, 4.3, 5],
])


def mnist1d_templates() -> np.ndarray:
    """The ten digit templates as used by the generator, (10, 12) float64: each row
    standardised (mean 0, std 1), shifted to start at 0, then divided by 6."""
    x = _TEMPLATES - _TEMPLATES.mean(axis=1, keepdims=True)
    x = x / x.std(axis=1, keepdims=True)
    return (x - x[:, :1]) / 6.0


def _resample(x: np.ndarray, n: int) -> np.ndarray:
    """Linear interpolation of x (m,) sampled at linspace(0, 1, m) onto linspace(0, 1, n)."""
    return np.interp(np.linspace(0, 1, n), np.linspace(0, 1, len(x)), x)


def _gaussian_smooth(x: np.ndarray, sigma: float = 2.0, truncate: float = 4.0) -> np.ndarray:
    """Gaussian filter with mirror ('reflect', a|abc|c) boundaries, the kernel cut at
    truncate * sigma: the same as ``scipy.ndimage.gaussian_filter1d(x, sigma)``."""
    radius = int(truncate * sigma + 0.5)
    t = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 / sigma**2 * t**2)
    kernel /= kernel.sum()
    padded = np.pad(x, radius, mode="symmetric")
    return np.convolve(padded, kernel, mode="valid")


def _transform(x: np.ndarray, rng: np.random.RandomState, *, template_len, padding, scale_coeff,
               max_translation, corr_noise_scale, iid_noise_scale, shear_scale,
               final_seq_length) -> np.ndarray:
    """One example from one template x (12,), in the reference's order of random draws:
    pad with p ~ U{lo..hi} zeros, stretch to template_len + hi points, scale by
    1 + scale_coeff * (u - 1/2), roll by k ~ U{0..max_translation-1}, fill the zeros with
    smoothed noise, add iid noise, shear by shear_scale * (u - 1/2) * linspace(-1/2, 1/2),
    and resample to final_seq_length points."""
    lo, hi = padding
    p = lo + int(rng.rand() * (hi - lo + 1))
    z = np.concatenate([x + 1e-8, np.zeros(p)])          # + 1e-8: the signal is never exactly 0
    z = _resample(z, template_len + hi)
    z = z * (1 + scale_coeff * (rng.rand() - 0.5))
    k = rng.choice(max_translation)
    z = np.roll(z, k)
    corr = _gaussian_smooth(corr_noise_scale * rng.randn(len(z)))
    z = np.where(z != 0, z, corr)                        # noise only where there is no signal
    z = z + iid_noise_scale * rng.randn(len(z))
    z = z - shear_scale * (rng.rand() - 0.5) * np.linspace(-0.5, 0.5, len(z))
    return _resample(z, final_seq_length)


def load_mnist1d(*, seed: int = 42, num_samples: int = 5000, train_split: float = 0.8,
                 shuffle_seq: bool = False) -> Split:
    """The MNIST-1D benchmark as ``Split(x_train, y_train, x_test, y_test)``.

    x: (N, 40) float32, standardised over the whole set (one mean and std for all values);
    y: (N,) int32 in 0..9. Defaults (the published benchmark): 5000 examples, 500 per class,
    shuffled, the first 4000 for training and the last 1000 for testing, ``seed=42``.
    ``shuffle_seq=True`` applies one fixed random permutation to the 40 positions (the
    paper's "shuffled" variant that removes spatial structure).

    Other generation constants are the reference defaults: template_len 12, padding 36..60,
    scale_coeff 0.4, max_translation 48, corr_noise_scale 0.25, iid_noise_scale 0.02,
    shear_scale 0.75, final_seq_length 40.
    """
    integer("load_mnist1d", "seed", seed, low=0, high=2**32)
    integer("load_mnist1d", "num_samples", num_samples, low=20)
    number("load_mnist1d", "train_split", train_split, low=0, high=1, low_open=True,
           high_open=True)
    split = int(num_samples // 10 * 10 * train_split)
    if not 0 < split < num_samples // 10 * 10:
        raise ValueError(f"load_mnist1d: train_split {train_split} leaves an empty train or "
                         f"test set for {num_samples} examples")

    rng = np.random.RandomState(seed)
    templates = mnist1d_templates()
    per_class = num_samples // 10
    xs = np.stack([_transform(templates[label], rng, **_ARGS)
                   for label in range(10) for _ in range(per_class)])
    ys = np.repeat(np.arange(10), per_class)
    order = rng.permutation(len(ys))
    xs, ys = xs[order], ys[order]
    if shuffle_seq:
        xs = xs[:, rng.permutation(xs.shape[1])]
    xs = (xs - xs.mean()) / xs.std()
    xs, ys = xs.astype(np.float32), ys.astype(np.int32)
    return Split(xs[:split], ys[:split], xs[split:], ys[split:])


def mnist1d_stream(batch_size: int, *, seed: int = 0):
    """An endless stream of freshly generated MNIST-1D batches ``(x, y)``: x (batch_size, 40)
    float32, y (batch_size,) int32 uniform over the ten classes, each example drawn by the
    benchmark's generator from ``np.random.RandomState(seed)`` and standardised with the
    benchmark set's mean and std (``BENCHMARK_MEAN``, ``BENCHMARK_STD``). No two batches
    repeat, so a model trained on it never sees an example twice::

        fnn.fit(objective, params, opt, mnist1d_stream(100), epochs=5, steps_per_epoch=200)
    """
    batch_size = positive_int("mnist1d_stream", "batch_size", batch_size)
    seed = integer("mnist1d_stream", "seed", seed, low=0, high=2**32)
    rng = np.random.RandomState(seed)
    templates = mnist1d_templates()
    while True:
        ys = rng.randint(0, 10, batch_size).astype(np.int32)
        xs = np.stack([_transform(templates[label], rng, **_ARGS) for label in ys])
        yield ((xs - BENCHMARK_MEAN) / BENCHMARK_STD).astype(np.float32), ys
