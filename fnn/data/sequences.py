"""Sequence data, generated locally with NumPy from a seed (never downloaded).

Forecasting: sine and sum-of-sines windows, the Mackey-Glass chaotic series.
Memory benchmarks: the adding problem (Hochreiter & Schmidhuber 1997) and the copy-memory
task (Arjovsky et al. 2016). Sequences are batch first, ``(batch, time, features)``, float32;
class targets are int32. Every generator draws from its own ``np.random.RandomState(seed)``
and never touches NumPy's global state.
"""
from __future__ import annotations

import math

import numpy as np

from fnn.validation import integer, number

__all__ = ["windows", "sine_windows", "sum_of_sines_windows", "mackey_glass", "adding_problem",
           "copy_memory", "copy_memory_baseline", "ADDING_BASELINE_MSE"]

ADDING_BASELINE_MSE = 1 / 6
"""MSE of always predicting 1 on the adding problem: Var(u_1 + u_2) = 2/12, u_i ~ U(0, 1)."""


def windows(series, window: int, horizon: int = 1):
    """Slide over a series: x[i] = series[i : i+window], y[i] = series[i+window : i+window+horizon].

    Shapes: series (T, F) -> x (N, window, F), y (N, horizon, F); series (T,) -> x (N, window, 1),
    y (N, horizon); N = T - window - horizon + 1.
    """
    series = np.asarray(series)
    window = integer("windows", "window", window, low=1)
    horizon = integer("windows", "horizon", horizon, low=1)
    flat = series.ndim == 1
    s = series[:, None] if flat else series
    if s.ndim != 2:
        raise ValueError(f"windows: expected a series of shape (time,) or (time, features), got "
                         f"{series.shape}")
    n = len(s) - window - horizon + 1
    if n < 1:
        raise ValueError(f"windows: a series of {len(s)} steps is too short for window={window} "
                         f"plus horizon={horizon}")
    idx = np.arange(n)[:, None]
    x = s[idx + np.arange(window)[None]]
    y = s[idx + window + np.arange(horizon)[None]]
    return x, (y[..., 0] if flat else y)


def sine_windows(n: int = 1000, window: int = 50, horizon: int = 1, *, components: int = 1,
                 period_range: tuple = (8.0, 40.0), noise: float = 0.0, seed: int = 0):
    """Forecasting windows of random (sums of) sines: example i is

        s(t) = sum_k A_k sin(2 pi t / P_k + phi_k),   t = 0..window+horizon-1
        A_k ~ U(0.5, 1) / components,  P_k ~ U(period_range),  phi_k ~ U(0, 2 pi)

    plus N(0, noise^2) on the inputs. x = s[:window], y = s[window:window+horizon].
    Shapes: x (n, window, 1) float32, y (n, horizon) float32.
    """
    n = integer("sine_windows", "n", n, low=1)
    window = integer("sine_windows", "window", window, low=1)
    horizon = integer("sine_windows", "horizon", horizon, low=1)
    components = integer("sine_windows", "components", components, low=1)
    lo, hi = period_range
    if not 0 < lo <= hi:
        raise ValueError(f"sine_windows: period_range must be (low, high) with 0 < low <= high, "
                         f"got {period_range!r}")
    noise = number("sine_windows", "noise", noise, low=0)
    rng = np.random.RandomState(seed)
    amp = rng.uniform(0.5, 1.0, (n, components, 1)) / components
    period = rng.uniform(lo, hi, (n, components, 1))
    phase = rng.uniform(0, 2 * np.pi, (n, components, 1))
    t = np.arange(window + horizon)[None, None]
    s = (amp * np.sin(2 * np.pi * t / period + phase)).sum(axis=1)
    x = s[:, :window] + noise * rng.standard_normal((n, window))
    return x[..., None].astype(np.float32), s[:, window:].astype(np.float32)


def sum_of_sines_windows(n: int = 1000, window: int = 50, horizon: int = 1, *,
                         components: int = 3, **kwargs):
    """:func:`sine_windows` with ``components`` (default 3) sines per example."""
    return sine_windows(n, window, horizon, components=components, **kwargs)


def mackey_glass(length: int = 2000, *, tau: float = 17.0, beta: float = 0.2,
                 gamma: float = 0.1, power: float = 10.0, dt: float = 0.1,
                 sample_every: float = 1.0, discard: int = 500, x0: float = 1.2,
                 seed: int | None = None, dtype=np.float32):
    """The Mackey-Glass delay differential equation (chaotic for tau = 17):

        dx/dt = beta x(t - tau) / (1 + x(t - tau)^power) - gamma x(t)

    integrated by classical Runge-Kutta (RK4) with step ``dt`` (0.1); the delayed term at the
    half step is the mean of its two grid neighbours. The history for t <= 0 is x0 (seed None)
    or x0 + U(-0.1, 0.1) per grid point (a seeded different trajectory). The series is
    sampled every ``sample_every`` time units (default 1, the usual ESN benchmark spacing)
    after dropping the first ``discard`` samples (the transient).

    Returns x (length,) of ``dtype``; values lie in about [0.2, 1.4].
    """
    length = integer("mackey_glass", "length", length, low=1)
    discard = integer("mackey_glass", "discard", discard, low=0)
    for what, v in (("tau", tau), ("dt", dt), ("sample_every", sample_every)):
        number("mackey_glass", what, v, low=0, low_open=True)
    lag = int(round(tau / dt))
    sub = int(round(sample_every / dt))
    if abs(lag * dt - tau) > 1e-9 or abs(sub * dt - sample_every) > 1e-9:
        raise ValueError(f"mackey_glass: tau (={tau}) and sample_every (={sample_every}) must be "
                         f"multiples of dt (={dt})")
    steps = (length + discard) * sub
    x = np.empty(lag + steps + 1)
    if seed is None:
        x[: lag + 1] = x0
    else:
        x[: lag + 1] = x0 + np.random.RandomState(seed).uniform(-0.1, 0.1, lag + 1)

    def f(x_t, x_lag):
        return beta * x_lag / (1 + x_lag ** power) - gamma * x_t

    for i in range(lag, lag + steps):
        lag_0, lag_1 = x[i - lag], x[i - lag + 1]
        lag_half = 0.5 * (lag_0 + lag_1)
        k1 = f(x[i], lag_0)
        k2 = f(x[i] + 0.5 * dt * k1, lag_half)
        k3 = f(x[i] + 0.5 * dt * k2, lag_half)
        k4 = f(x[i] + dt * k3, lag_1)
        x[i + 1] = x[i] + dt / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    samples = x[lag::sub][1:]           # t = sample_every, 2 sample_every, ...
    return samples[discard:discard + length].astype(dtype)


def adding_problem(n: int, length: int, *, seed: int = 0):
    """The adding problem (Hochreiter & Schmidhuber 1997; the form of Le et al. 2015).

    Each step carries two features: a value u_t ~ U(0, 1) and a marker m_t in {0, 1}. Exactly
    two steps are marked, one in the first half and one in the second half of the sequence;
    the target is the sum of the two marked values. Predicting the mean, 1, scores
    ``ADDING_BASELINE_MSE`` = Var(u_1 + u_2) = 1/6 ~ 0.167; solving it means remembering the
    first value across ~length/2 steps.

    Shapes: x (n, length, 2) float32 ([..., 0] values, [..., 1] markers), y (n, 1) float32.
    """
    n = integer("adding_problem", "n", n, low=1)
    length = integer("adding_problem", "length", length, low=2)
    rng = np.random.RandomState(seed)
    values = rng.uniform(0, 1, (n, length))
    half = length // 2
    first = rng.randint(0, half, n)
    second = rng.randint(half, length, n)
    markers = np.zeros((n, length))
    rows = np.arange(n)
    markers[rows, first] = 1
    markers[rows, second] = 1
    y = values[rows, first] + values[rows, second]
    x = np.stack([values, markers], axis=-1)
    return x.astype(np.float32), y[:, None].astype(np.float32)


def copy_memory(n: int, delay: int, *, symbols: int = 10, alphabet: int = 8, seed: int = 0):
    """The copy-memory task (Hochreiter & Schmidhuber 1997; the form of Arjovsky et al. 2016).

    Token ids: 0 blank, 1..alphabet data, alphabet+1 the "recall" marker. Input: ``symbols``
    random data tokens, then ``delay - 1`` blanks, the marker, and ``symbols`` blanks (length
    T = delay + 2 * symbols). Target: blanks for the first delay + symbols steps, then the
    data tokens again. A memoryless model scores cross-entropy symbols log(alphabet) / T per
    step (blanks known, data guessed).

    Shapes: x (n, T, alphabet + 2) float32 one-hot, y (n, T) int32 token ids.
    """
    n = integer("copy_memory", "n", n, low=1)
    delay = integer("copy_memory", "delay", delay, low=1)
    symbols = integer("copy_memory", "symbols", symbols, low=1)
    alphabet = integer("copy_memory", "alphabet", alphabet, low=1)
    rng = np.random.RandomState(seed)
    t_len = delay + 2 * symbols
    data = rng.randint(1, alphabet + 1, (n, symbols))
    tokens = np.zeros((n, t_len), np.int64)
    tokens[:, :symbols] = data
    tokens[:, symbols + delay - 1] = alphabet + 1
    y = np.zeros((n, t_len), np.int32)
    y[:, delay + symbols:] = data
    x = np.eye(alphabet + 2, dtype=np.float32)[tokens]
    return x, y


def copy_memory_baseline(delay: int, *, symbols: int = 10, alphabet: int = 8) -> float:
    """The memoryless cross-entropy of :func:`copy_memory`: symbols log(alphabet) / T."""
    return symbols * math.log(alphabet) / (delay + 2 * symbols)

