"""EchoStateNetwork: the reservoir's construction, the state update, the closed-form readout,
teacher-forced prediction and free-running generation, and argument validation."""
import jax
import numpy as np
import pytest

import fnn
from fnn.data.sequences import mackey_glass
from fnn.models.reservoir import EchoStateNetwork, nrmse


@pytest.fixture(scope="module")
def sine():
    t = np.arange(700)
    return (np.sin(2 * np.pi * t / 25) * 0.8).astype(np.float32)


def test_reservoir_spectral_radius_connectivity_and_scales():
    esn = EchoStateNetwork(units=200, connectivity=0.05, spectral_radius=0.8, input_scaling=0.3,
                           bias_scaling=0.2)
    r = esn.init_reservoir(jax.random.key(0), 2)
    assert {k: v.shape for k, v in r.items()} == {"w_in": (2, 200), "w": (200, 200), "b": (200,)}
    w = np.asarray(r["w"], np.float64)
    assert abs(np.max(np.abs(np.linalg.eigvals(w))) - 0.8) < 1e-5
    assert abs(np.mean(w != 0) - 0.05) < 0.005
    assert np.abs(np.asarray(r["w_in"])).max() <= 0.3 and np.abs(np.asarray(r["b"])).max() <= 0.2
    default = EchoStateNetwork(units=200).init_reservoir(jax.random.key(1), 1)
    assert abs(np.mean(np.asarray(default["w"]) != 0) - 0.01) < 0.003  # the notes' ~1%
    assert np.all(np.asarray(default["b"]) == 0)                      # no bias by default
    # deterministic in the key
    np.testing.assert_array_equal(esn.init_reservoir(jax.random.key(0), 2)["w"], r["w"])


def test_states_follow_the_leaky_update():
    esn = EchoStateNetwork(units=20, connectivity=0.3, leak_rate=0.4, bias_scaling=0.5, washout=0)
    r = jax.tree.map(np.asarray, esn.init_reservoir(jax.random.key(2), 3))
    u = np.random.default_rng(0).normal(size=(2, 6, 3)).astype(np.float32)
    x = np.zeros((2, 20))
    want = []
    for t in range(6):
        x = 0.6 * x + 0.4 * np.tanh(u[:, t] @ r["w_in"] + x @ r["w"] + r["b"])
        want.append(x)
    states = esn.states(r, u)
    np.testing.assert_allclose(states, np.stack(want, 1), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(esn.states(r, u[1]), states[1], rtol=1e-6, atol=1e-7)


def test_fit_solves_the_ridge_normal_equations(sine):
    esn = EchoStateNetwork(units=50, connectivity=0.2, washout=30)
    r = esn.init_reservoir(jax.random.key(3), 1)
    u, y = sine[:-1, None], np.stack([sine[1:], sine[1:] ** 2], axis=1)
    ridge = 1e-3
    readout = esn.fit(r, u, y, ridge=ridge)
    assert readout["w"].shape == (51, 2) and readout["b"].shape == (2,)
    z = np.concatenate([np.ones((len(u), 1)), u, np.asarray(esn.states(r, u))], 1)[30:]
    z, yy = z.astype(np.float64), y[30:].astype(np.float64)
    want = np.linalg.solve(z.T @ z + ridge * np.eye(52), z.T @ yy)
    np.testing.assert_allclose(readout["b"], want[0], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(readout["w"], want[1:], rtol=1e-4, atol=1e-5)


def test_one_step_prediction_and_free_running_generation(sine):
    esn = EchoStateNetwork(units=200, connectivity=0.05, spectral_radius=0.9,
                           input_scaling=0.5, washout=50)
    r = esn.init_reservoir(jax.random.key(4), 1)
    train = 500
    readout = esn.fit(r, sine[:train - 1, None], sine[1:train, None], ridge=1e-7)
    pred = esn.predict(r, readout, sine[:-1, None])
    assert pred.shape == (699, 1)
    assert nrmse(pred[train:, 0], sine[train + 1:]) < 1e-2
    gen = esn.generate(r, readout, sine[:train, None], steps=100)
    assert gen.shape == (100, 1)
    # the first free-running value is the one-step forecast from the same state
    np.testing.assert_allclose(gen[0], pred[train - 1], rtol=1e-5, atol=1e-6)
    assert nrmse(gen[:, 0], sine[train:train + 100]) < 0.05
    # batched warm-ups give the same as one at a time
    batch = np.stack([sine[:train, None], sine[50:train + 50, None]])
    gen_b = esn.generate(r, readout, batch, steps=20)
    np.testing.assert_allclose(gen_b[0], gen[:20], rtol=1e-5, atol=1e-5)


def test_mackey_glass_one_step():
    """The classic benchmark, small: 200 float32 units predict the next value to NRMSE < 1e-2
    (the readout is solved in float64 inside fit)."""
    s = mackey_glass(1500)
    z = (s - s.mean()) / s.std()
    esn = EchoStateNetwork(units=200, connectivity=0.02, bias_scaling=0.2, input_scaling=0.2,
                           washout=100)
    r = esn.init_reservoir(jax.random.key(0), 1)
    readout = esn.fit(r, z[:1199, None], z[1:1200, None], ridge=1e-8)
    pred = esn.predict(r, readout, z[:-1, None])
    assert nrmse(pred[1200:, 0], z[1201:]) < 1e-2


def test_nrmse():
    t = np.array([1.0, 2.0, 3.0, 4.0])
    assert nrmse(t, t) == 0
    assert abs(nrmse(np.full(4, t.mean()), t) - 1.0) < 1e-12
    with pytest.raises(ValueError, match="same shape"):
        nrmse(t, t[:3])


def test_validation_errors(sine):
    with pytest.raises(ValueError, match="spectral_radius must be a finite number > 0, got 0"):
        EchoStateNetwork(spectral_radius=0)
    with pytest.raises(ValueError, match="spectral_radius must be a finite number > 0, got -1.0"):
        EchoStateNetwork(spectral_radius=-1.0)
    for bad in (0, 0.0, 1.5, -0.1):
        with pytest.raises(ValueError, match=rf"connectivity .* must be a finite number in \(0, 1\], got {bad}"):
            EchoStateNetwork(connectivity=bad)
    for bad in (0, 1.01):
        with pytest.raises(ValueError, match=rf"leak_rate must be a finite number in \(0, 1\], got {bad}"):
            EchoStateNetwork(leak_rate=bad)
    with pytest.raises(ValueError, match="units must be a positive int, got 0"):
        EchoStateNetwork(units=0)
    with pytest.raises(ValueError, match="washout must be an int >= 0, got -1"):
        EchoStateNetwork(washout=-1)
    with pytest.raises(ValueError, match="input_scaling must be a finite number > 0"):
        EchoStateNetwork(input_scaling=0)
    with pytest.raises(ValueError, match="nilpotent"):
        EchoStateNetwork(units=3, connectivity=0.01).init_reservoir(jax.random.key(0), 1)
    esn = EchoStateNetwork(units=30, connectivity=0.2, washout=10)
    r = esn.init_reservoir(jax.random.key(0), 1)
    with pytest.raises(ValueError, match=r"expected inputs of shape \(time, 1\) or \(batch, time, 1\), got \(5, 2\)"):
        esn.states(r, np.zeros((5, 2)))
    with pytest.raises(ValueError, match="nothing after the washout of 10 steps"):
        esn.fit(r, np.zeros((10, 1)), np.zeros((10, 1)))
    with pytest.raises(ValueError, match="targets must have the inputs' leading"):
        esn.fit(r, np.zeros((20, 1)), np.zeros((19, 1)))
    with pytest.raises(ValueError, match="ridge must be a finite number >= 0"):
        esn.fit(r, np.zeros((20, 1)), np.zeros((20, 1)), ridge=-1.0)
    readout = esn.fit(r, sine[:99, None], np.stack([sine[1:100]] * 2, 1))
    with pytest.raises(ValueError, match="the readout has 2 outputs but the reservoir takes 1 inputs"):
        esn.generate(r, readout, sine[:50, None], 5)
    with pytest.raises(ValueError, match="steps must be a positive int, got 0"):
        esn.generate(r, readout, sine[:50, None], 0)


def test_exported():
    assert fnn.EchoStateNetwork is EchoStateNetwork
