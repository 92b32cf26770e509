"""fnn.data.sequences: shapes, determinism, and the properties each task is defined by."""
import numpy as np
import pytest

from fnn.data import sequences as S


def test_adding_problem_shapes_markers_and_targets():
    x, y = S.adding_problem(500, 40, seed=3)
    assert x.shape == (500, 40, 2) and y.shape == (500, 1)
    assert x.dtype == y.dtype == np.float32
    markers = x[..., 1]
    assert np.all(markers.sum(axis=1) == 2)
    assert np.all(markers[:, :20].sum(axis=1) == 1) and np.all(markers[:, 20:].sum(axis=1) == 1)
    np.testing.assert_allclose(y[:, 0], (x[..., 0] * markers).sum(axis=1), rtol=1e-6)
    assert 0 <= x[..., 0].min() and x[..., 0].max() < 1


def test_adding_problem_baseline_mse_is_one_sixth():
    _, y = S.adding_problem(40_000, 10, seed=0)
    mse = float(np.mean((y - 1.0) ** 2))
    assert abs(mse - 1 / 6) < 0.005
    assert abs(S.ADDING_BASELINE_MSE - 0.1667) < 1e-4


@pytest.mark.parametrize("make", [
    lambda seed: S.adding_problem(20, 8, seed=seed),
    lambda seed: S.copy_memory(20, 5, seed=seed),
    lambda seed: S.sine_windows(20, 12, 2, seed=seed),
    lambda seed: S.sum_of_sines_windows(20, 12, seed=seed),
    lambda seed: (S.mackey_glass(50, discard=10, seed=seed),),
])
def test_deterministic_per_seed(make):
    a, b, c = make(1), make(1), make(2)
    for u, v, w in zip(a, b, c):
        np.testing.assert_array_equal(u, v)
        assert not np.array_equal(u, w)


def test_global_numpy_state_untouched():
    np.random.seed(0)
    before = np.random.get_state()[1].copy()
    S.adding_problem(10, 5)
    S.copy_memory(3, 4)
    S.sine_windows(5, 5)
    np.testing.assert_array_equal(np.random.get_state()[1], before)


def test_copy_memory_layout():
    x, y = S.copy_memory(4, 6, symbols=3, alphabet=5, seed=0)
    t = 6 + 2 * 3
    assert x.shape == (4, t, 7) and y.shape == (4, t) and y.dtype == np.int32
    tokens = x.argmax(-1)
    np.testing.assert_array_equal(x.sum(-1), 1)              # one-hot
    data = tokens[:, :3]
    assert data.min() >= 1 and data.max() <= 5
    assert np.all(tokens[:, 3:8] == 0) and np.all(tokens[:, 8] == 6) and np.all(tokens[:, 9:] == 0)
    assert np.all(y[:, :9] == 0)
    np.testing.assert_array_equal(y[:, 9:], data)
    assert abs(S.copy_memory_baseline(6, symbols=3, alphabet=5) - 3 * np.log(5) / 12) < 1e-12


def test_windows_and_sines():
    x, y = S.windows(np.arange(10.0), 3, 2)
    assert x.shape == (6, 3, 1) and y.shape == (6, 2)
    np.testing.assert_array_equal(x[2, :, 0], [2, 3, 4])
    np.testing.assert_array_equal(y[2], [5, 6])
    x, y = S.windows(np.arange(20.0).reshape(10, 2), 4)
    assert x.shape == (6, 4, 2) and y.shape == (6, 1, 2)
    # the window continues the same sine: a longer window starts with the shorter one
    x1, y1 = S.sine_windows(8, 10, 5, components=2, seed=4)
    x2, y2 = S.sine_windows(8, 12, 3, components=2, seed=4)
    assert x1.shape == (8, 10, 1) and y1.shape == (8, 5)
    np.testing.assert_allclose(x2[:, :10], x1, atol=1e-6)
    np.testing.assert_allclose(x2[:, 10:, 0], y1[:, :2], atol=1e-6)
    np.testing.assert_allclose(y2, y1[:, 2:], atol=1e-6)
    assert np.abs(x1).max() <= 1.0
    with pytest.raises(ValueError, match="too short for window=8 plus horizon=3"):
        S.windows(np.arange(10.0), 8, 3)


def test_mackey_glass_is_the_integrated_equation():
    s = S.mackey_glass(300, discard=0, dtype=np.float64)
    assert s.shape == (300,) and 0.2 < s.min() and s.max() < 1.45
    # RK4 at dt = 0.1 agrees with a 10x finer step over the first 100 time units
    fine = S.mackey_glass(100, discard=0, dt=0.01, dtype=np.float64)
    assert np.max(np.abs(s[:100] - fine)) < 1e-4
    # chaotic with tau = 17 (not a decaying or periodic signal): a wide range after the transient
    tail = S.mackey_glass(1000, discard=500)
    assert tail.dtype == np.float32 and tail.std() > 0.15
    # the residual of the delay equation at the sample points is small (central differences)
    x = S.mackey_glass(400, discard=0, sample_every=0.1, dtype=np.float64)
    lag = 170
    dxdt = (x[lag + 2:] - x[lag:-2]) / 0.2
    rhs = 0.2 * x[1:-lag - 1] / (1 + x[1:-lag - 1] ** 10) - 0.1 * x[lag + 1:-1]
    assert np.max(np.abs(dxdt - rhs)) < 1e-3


def test_argument_errors():
    with pytest.raises(ValueError, match="adding_problem: length must be an int >= 2, got 1"):
        S.adding_problem(5, 1)
    with pytest.raises(ValueError, match="copy_memory: delay must be an int >= 1, got 0"):
        S.copy_memory(5, 0)
    with pytest.raises(ValueError, match="multiples of dt"):
        S.mackey_glass(10, tau=17.05)
    with pytest.raises(ValueError, match="period_range must be"):
        S.sine_windows(5, 5, period_range=(0, 3))
