"""Toy datasets: the notes' four quadrant points, logic gates, and the 2-D sets of the
TensorFlow Playground (circle, xor, gaussian, spiral, moons; and its two regression sets, plane
and multi_gaussian, whose ``y`` is a float32 target in [-1, 1]).

Every generator returns ``(x, y)`` with ``x`` float32 of shape (n, 2) and ``y`` int32 class
labels of shape (n,). The playground sets take ``(n=200, *, noise=0.0, seed=0)``: the two
classes get ``n - n // 2`` (class 0) and ``n // 2`` (class 1) examples, the examples come in a
seed-determined random order, and ``noise`` is the standard deviation of Gaussian jitter
added to both coordinates (in the data's units). Generation uses ``np.random.default_rng(seed)``
only, so a seed gives the same set on every machine and run.
"""
from __future__ import annotations

import numpy as np

from fnn._names import did_you_mean
from fnn.validation import integer, number

__all__ = ["quadrant", "logic_gate", "GATES", "circle", "xor", "gaussian", "spiral", "moons",
           "playground", "PLAYGROUND", "plane", "multi_gaussian", "REGRESSION"]


def quadrant() -> tuple[np.ndarray, np.ndarray]:
    """The notes' quadrant problem: which quadrant (I, II, III, IV) holds a point.

    x = [[2, 1], [-1, 1], [-1, -1], [1, -1]]  (4, 2) float32
    y = [0, 1, 2, 3]                          (4,)   int32   (quadrant I..IV -> 0..3)
    """
    x = np.array([[2, 1], [-1, 1], [-1, -1], [1, -1]], dtype=np.float32)
    return x, np.arange(4, dtype=np.int32)


# Truth tables over the inputs (0,0), (0,1), (1,0), (1,1).
GATES = {
    "AND": (0, 0, 0, 1),
    "OR": (0, 1, 1, 1),
    "XOR": (0, 1, 1, 0),
    "NAND": (1, 1, 1, 0),
    "NOR": (1, 0, 0, 0),
    "XNOR": (1, 0, 0, 1),
}


def logic_gate(name: str) -> tuple[np.ndarray, np.ndarray]:
    """The truth table of a two-input logic gate (a single perceptron learns AND, OR, NAND,
    NOR; XOR and XNOR need a hidden layer).

    x = [[0, 0], [0, 1], [1, 0], [1, 1]]  (4, 2) float32
    y = gate(x[:, 0], x[:, 1])            (4,)   int32 in {0, 1}

    ``name`` is one of 'AND', 'OR', 'XOR', 'NAND', 'NOR', 'XNOR' (any case).
    """
    if not isinstance(name, str) or name.upper() not in GATES:
        raise ValueError(f"logic_gate: unknown gate {name!r}, expected one of {sorted(GATES)}"
                         + did_you_mean(str(name).upper(), GATES))
    x = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
    return x, np.array(GATES[name.upper()], dtype=np.int32)


# ----------------------------------------------------------------------------- playground

def _check(who: str, n, noise, seed) -> None:
    integer(who, "n", n, low=2)
    number(who, "noise", noise, low=0)
    integer(who, "seed", seed, low=0)


def _finish(rng: np.random.Generator, parts, noise: float):
    """Stack per-class point sets, add jitter N(0, noise^2), shuffle, cast."""
    x = np.concatenate(parts)
    y = np.concatenate([np.full(len(p), c, dtype=np.int32) for c, p in enumerate(parts)])
    x = x + noise * rng.standard_normal(x.shape)
    order = rng.permutation(len(x))
    return x[order].astype(np.float32), y[order]


def _sizes(n: int) -> tuple[int, int]:
    return n - n // 2, n // 2


def circle(n: int = 200, *, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A disc inside a ring (TensorFlow Playground 'circle').

    class 0: r ~ U(0, 0.5),   class 1: r ~ U(0.7, 1.0);   angle ~ U(0, 2 pi)
    x = (r cos a, r sin a) + noise * N(0, I)   -> x (n, 2) float32, y (n,) int32
    """
    _check("circle", n, noise, seed)
    rng = np.random.default_rng(seed)
    parts = []
    for m, (lo, hi) in zip(_sizes(n), ((0.0, 0.5), (0.7, 1.0))):
        r, a = rng.uniform(lo, hi, m), rng.uniform(0.0, 2 * np.pi, m)
        parts.append(np.stack([r * np.cos(a), r * np.sin(a)], axis=1))
    return _finish(rng, parts, noise)


def xor(n: int = 200, *, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The XOR of the coordinates' signs (TensorFlow Playground 'exclusive or').

    |x1|, |x2| ~ U(0.06, 1) (a small margin keeps points off the axes); class 0 where
    x1 * x2 > 0 (quadrants I and III), class 1 where x1 * x2 < 0 (II and IV); then
    + noise * N(0, I).   -> x (n, 2) float32, y (n,) int32
    """
    _check("xor", n, noise, seed)
    rng = np.random.default_rng(seed)
    parts = []
    for c, m in enumerate(_sizes(n)):
        mag = rng.uniform(0.06, 1.0, (m, 2))
        s = rng.choice([-1.0, 1.0], m)
        parts.append(mag * np.stack([s, s if c == 0 else -s], axis=1))
    return _finish(rng, parts, noise)


def gaussian(n: int = 200, *, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two Gaussian blobs (TensorFlow Playground 'gaussian'), linearly separable at noise=0.

    class 0 ~ N((0.4, 0.4), 0.15^2 I),  class 1 ~ N((-0.4, -0.4), 0.15^2 I); then
    + noise * N(0, I).   -> x (n, 2) float32, y (n,) int32
    """
    _check("gaussian", n, noise, seed)
    rng = np.random.default_rng(seed)
    parts = [np.array(centre) + 0.15 * rng.standard_normal((m, 2))
             for centre, m in zip(((0.4, 0.4), (-0.4, -0.4)), _sizes(n))]
    return _finish(rng, parts, noise)


def spiral(n: int = 200, *, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaved spirals (TensorFlow Playground 'spiral').

    For the i-th of m points of class c:  r = i / m,  t = 1.75 * 2 pi * i / m + c * pi,
    x = (r sin t, r cos t) + noise * N(0, I).   -> x (n, 2) float32, y (n,) int32
    """
    _check("spiral", n, noise, seed)
    rng = np.random.default_rng(seed)
    parts = []
    for c, m in enumerate(_sizes(n)):
        i = np.arange(m) / m
        t = 1.75 * 2 * np.pi * i + c * np.pi
        parts.append(np.stack([i * np.sin(t), i * np.cos(t)], axis=1))
    return _finish(rng, parts, noise)


def moons(n: int = 200, *, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two interleaving half circles (the 'two moons' of scikit-learn's ``make_moons``).

    t evenly spaced in [0, pi];  class 0: (cos t, sin t),  class 1: (1 - cos t, 0.5 - sin t);
    then + noise * N(0, I).   -> x (n, 2) float32 in about [-1, 2] x [-0.5, 1], y (n,) int32
    """
    _check("moons", n, noise, seed)
    rng = np.random.default_rng(seed)
    m0, m1 = _sizes(n)
    t0, t1 = np.linspace(0, np.pi, m0), np.linspace(0, np.pi, m1)
    parts = [np.stack([np.cos(t0), np.sin(t0)], axis=1),
             np.stack([1 - np.cos(t1), 0.5 - np.sin(t1)], axis=1)]
    return _finish(rng, parts, noise)


PLAYGROUND = {"circle": circle, "xor": xor, "gaussian": gaussian, "spiral": spiral, "moons": moons}


def playground(name: str, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """A playground set by name: ``playground('spiral', n=500, noise=0.05, seed=1)``.

    ``name`` is one of 'circle', 'xor', 'gaussian', 'spiral', 'moons'; ``kwargs`` go to that
    generator (``n``, ``noise``, ``seed``). Returns x (n, 2) float32, y (n,) int32.
    """
    fn = PLAYGROUND.get(name) if isinstance(name, str) else None
    if fn is None:
        raise ValueError(f"playground: unknown dataset {name!r}, expected one of "
                         f"{sorted(PLAYGROUND)}" + did_you_mean(name, PLAYGROUND))
    return fn(**kwargs)


# ------------------------------------------------------------------ playground regression

def plane(n: int = 200, *, noise: float = 0.0, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A tilted plane (TensorFlow Playground 'plane', a regression set).

    x ~ U(-1, 1)^2,  y = (x1 + x2) / 2  (computed before the jitter),  then
    x += noise * N(0, I).   -> x (n, 2) float32, y (n,) float32 in [-1, 1]
    """
    _check("plane", n, noise, seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (n, 2))
    y = (x[:, 0] + x[:, 1]) / 2
    x = x + noise * rng.standard_normal(x.shape)
    return x.astype(np.float32), y.astype(np.float32)


# Centres and signs of the six bumps of multi_gaussian.
BUMPS = (((-0.6, 0.6), 1.0), ((0.0, 0.6), -1.0), ((0.6, 0.6), 1.0),
         ((-0.6, -0.6), -1.0), ((0.0, -0.6), 1.0), ((0.6, -0.6), -1.0))


def multi_gaussian(n: int = 200, *, noise: float = 0.0,
                   seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Six Gaussian bumps of alternating sign (TensorFlow Playground 'multi gaussian', a
    regression set).

    x ~ U(-1, 1)^2,  y = clip(sum_k s_k exp(-|x - c_k|^2 / (2 * 0.25^2)), -1, 1)  over the
    bumps ``BUMPS`` (c_k, s_k), computed before x += noise * N(0, I).
    -> x (n, 2) float32, y (n,) float32 in [-1, 1]
    """
    _check("multi_gaussian", n, noise, seed)
    rng = np.random.default_rng(seed)
    x = rng.uniform(-1.0, 1.0, (n, 2))
    y = sum(s * np.exp(-np.sum((x - np.array(c)) ** 2, axis=1) / (2 * 0.25 ** 2))
            for c, s in BUMPS)
    x = x + noise * rng.standard_normal(x.shape)
    return x.astype(np.float32), np.clip(y, -1.0, 1.0).astype(np.float32)


REGRESSION = {"plane": plane, "multi_gaussian": multi_gaussian}
