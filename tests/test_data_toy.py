"""Toy datasets: the notes' quadrant points, logic gates, the playground sets."""
import numpy as np
import pytest

from fnn.data import toy
from fnn.data import circle, gaussian, logic_gate, moons, playground, quadrant, spiral, xor

SETS = [circle, xor, gaussian, spiral, moons]


def test_quadrant_is_the_notes_data():
    x, y = quadrant()
    np.testing.assert_array_equal(x, [[2, 1], [-1, 1], [-1, -1], [1, -1]])
    np.testing.assert_array_equal(y, [0, 1, 2, 3])
    assert x.dtype == np.float32 and y.dtype == np.int32
    # Label k is quadrant k+1: the signs of (x1, x2) are (+,+), (-,+), (-,-), (+,-).
    np.testing.assert_array_equal(np.sign(x), [[1, 1], [-1, 1], [-1, -1], [1, -1]])


@pytest.mark.parametrize("name, table", [("AND", [0, 0, 0, 1]), ("OR", [0, 1, 1, 1]),
                                         ("XOR", [0, 1, 1, 0]), ("NAND", [1, 1, 1, 0]),
                                         ("nor", [1, 0, 0, 0]), ("Xnor", [1, 0, 0, 1])])
def test_logic_gates(name, table):
    x, y = logic_gate(name)
    assert x.shape == (4, 2) and x.dtype == np.float32
    assert y.shape == (4,) and y.dtype == np.int32
    np.testing.assert_array_equal(y, table)
    ops = {"AND": np.logical_and, "OR": np.logical_or, "XOR": np.logical_xor}
    a, b = x[:, 0].astype(bool), x[:, 1].astype(bool)
    if name in ops:
        np.testing.assert_array_equal(y, ops[name](a, b))


def test_logic_gate_unknown_name():
    with pytest.raises(ValueError, match=r"logic_gate: unknown gate 'XRO'.*did you mean 'XOR'"):
        logic_gate("XRO")


@pytest.mark.parametrize("make", SETS, ids=lambda f: f.__name__)
@pytest.mark.parametrize("n", [2, 7, 200])
def test_playground_shapes_balance_determinism(make, n):
    x, y = make(n, noise=0.1, seed=3)
    assert x.shape == (n, 2) and x.dtype == np.float32
    assert y.shape == (n,) and y.dtype == np.int32
    np.testing.assert_array_equal(np.bincount(y, minlength=2), [n - n // 2, n // 2])
    assert np.all(np.isfinite(x))
    x2, y2 = make(n, noise=0.1, seed=3)
    np.testing.assert_array_equal(x, x2)
    np.testing.assert_array_equal(y, y2)
    x3, _ = make(n, noise=0.1, seed=4)
    assert not np.array_equal(x, x3)


@pytest.mark.parametrize("make", SETS, ids=lambda f: f.__name__)
def test_noise_is_gaussian_jitter_on_the_clean_set(make):
    clean, y = make(400, seed=1)
    noisy, y2 = make(400, noise=0.05, seed=1)
    np.testing.assert_array_equal(y, y2)  # same labels, same order
    jitter = noisy - clean
    assert 0.04 < jitter.std() < 0.06 and abs(jitter.mean()) < 0.01


def test_playground_geometry_separates_the_classes():
    x, y = circle(400)
    r = np.linalg.norm(x, axis=1)
    assert r[y == 0].max() <= 0.5 + 1e-6 and r[y == 1].min() >= 0.7 - 1e-6
    x, y = xor(400)
    np.testing.assert_array_equal(y, (x[:, 0] * x[:, 1] < 0).astype(np.int32))
    x, y = gaussian(400)
    np.testing.assert_array_equal(y, (x.sum(axis=1) < 0).astype(np.int32))  # separable
    x, y = spiral(400)
    assert np.linalg.norm(x, axis=1).max() < 1.0
    x, y = moons(400)
    assert np.allclose(np.linalg.norm(x[y == 0], axis=1), 1, atol=1e-6)
    assert np.allclose(np.linalg.norm(x[y == 1] - [1, 0.5], axis=1), 1, atol=1e-6)


def test_playground_by_name_and_errors():
    np.testing.assert_array_equal(playground("spiral", n=50, noise=0.1, seed=2)[0],
                                  spiral(50, noise=0.1, seed=2)[0])
    assert sorted(toy.PLAYGROUND) == ["circle", "gaussian", "moons", "spiral", "xor"]
    with pytest.raises(ValueError, match=r"playground: unknown dataset 'spirals'.*did you mean 'spiral'"):
        playground("spirals")
    with pytest.raises(ValueError, match=r"circle: n must be an int >= 2.*got 1"):
        circle(1)
    with pytest.raises(ValueError, match=r"moons: noise must be a finite number >= 0.*got -0.1"):
        moons(10, noise=-0.1)
    with pytest.raises(ValueError, match=r"xor: seed must be an int >= 0"):
        xor(10, seed=1.5)
