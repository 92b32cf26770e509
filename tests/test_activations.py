"""fnn.activations: values against their formulas, stability, lookup by name, layers, gradients."""
import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import activations as A
from fnn.check import gradcheck

X = np.array([-3.0, -1.0, -0.5, 0.0, 0.5, 1.0, 3.0])
SELU_ALPHA, SELU_SCALE = 1.6732632423543772848170429916717, 1.0507009873554804934193349852946


def ev(fn, x=X, **kw):
    return np.asarray(fn(jnp.asarray(x), **kw), np.float64)


def close(a, b, rtol=1e-6, atol=1e-7):
    np.testing.assert_allclose(a, b, rtol=rtol, atol=atol)


# ----------------------------------------------------------------------------- values

def test_step():
    np.testing.assert_array_equal(ev(fnn.step), [0, 0, 0, 0, 1, 1, 1])   # step(0) = 0
    assert fnn.step(jnp.zeros(2, jnp.float32)).dtype == jnp.float32


def test_sigmoid_tanh():
    close(ev(fnn.sigmoid), 1 / (1 + np.exp(-X)))
    close(ev(fnn.sigmoid, np.array([0.0])), [0.5])
    close(ev(fnn.sigmoid, X) + ev(fnn.sigmoid, -X), np.ones_like(X))
    close(ev(fnn.tanh), (np.exp(X) - np.exp(-X)) / (np.exp(X) + np.exp(-X)))
    # the notes' worked example: sigmoid(0.3775) = 0.59326999
    assert ev(fnn.sigmoid, np.array([0.3775]))[0] == pytest.approx(0.59326999, abs=1e-7)
    assert np.all(np.isfinite(ev(fnn.sigmoid, np.array([-1e4, 1e4]))))


def test_relu_and_leaky_relu():
    np.testing.assert_array_equal(ev(fnn.relu), [0, 0, 0, 0, 0.5, 1, 3])
    close(ev(fnn.leaky_relu), [-0.03, -0.01, -0.005, 0, 0.5, 1, 3])
    close(ev(fnn.leaky_relu, alpha=0.2), [-0.6, -0.2, -0.1, 0, 0.5, 1, 3])


def test_elu_selu():
    close(ev(fnn.elu), np.where(X > 0, X, np.exp(X) - 1))
    close(ev(fnn.elu, alpha=0.5), np.where(X > 0, X, 0.5 * (np.exp(X) - 1)))
    close(ev(fnn.selu), SELU_SCALE * np.where(X > 0, X, SELU_ALPHA * (np.exp(X) - 1)))
    assert ev(fnn.selu, np.array([1.0]))[0] == pytest.approx(1.0507009873554805, rel=1e-6)
    # saturates at -scale * alpha = -1.7580993...
    assert ev(fnn.selu, np.array([-50.0]))[0] == pytest.approx(-1.7580993408473766, rel=1e-6)


def test_gelu_exact_and_approximate():
    phi = np.array([0.5 * (1 + math.erf(v / math.sqrt(2))) for v in X])
    close(ev(fnn.gelu), X * phi)
    assert ev(fnn.gelu, np.array([1.0]))[0] == pytest.approx(0.8413447460685429, rel=1e-6)
    tanh_form = 0.5 * X * (1 + np.tanh(math.sqrt(2 / math.pi) * (X + 0.044715 * X ** 3)))
    close(ev(fnn.gelu, approximate=True), tanh_form)
    diff = np.abs(ev(fnn.gelu) - ev(fnn.gelu, approximate=True))
    assert diff.max() < 1e-3 and diff.max() > 1e-5           # close, but not the same function


def test_softplus_swish():
    close(ev(fnn.softplus), np.log1p(np.exp(X)))
    assert ev(fnn.softplus, np.array([0.0]))[0] == pytest.approx(math.log(2), rel=1e-6)
    big = ev(fnn.softplus, np.array([100.0, -100.0]))
    assert big[0] == pytest.approx(100.0) and 0 <= big[1] < 1e-40
    close(ev(fnn.swish), X / (1 + np.exp(-X)))


def test_softmax_sums_to_one_and_is_shift_invariant(x64):
    x = np.random.default_rng(0).standard_normal((4, 5))
    p = ev(fnn.softmax, x)
    close(p, np.exp(x) / np.exp(x).sum(1, keepdims=True))
    close(p.sum(-1), np.ones(4))
    close(ev(fnn.softmax, x + 1000.0), p, rtol=1e-11, atol=0)
    huge = ev(fnn.softmax, np.array([[1e4, -1e4, 0.0]]))
    assert np.all(np.isfinite(huge)) and huge[0, 0] == 1.0


def test_log_softmax_is_stable():
    x = np.random.default_rng(1).standard_normal((3, 4))
    close(ev(fnn.log_softmax, x), np.log(ev(fnn.softmax, x)), rtol=1e-5)
    out = ev(fnn.log_softmax, np.array([[1e4, -1e4, 0.0]]))
    assert np.all(np.isfinite(out))
    close(out, [[0.0, -2e4, -1e4]])
    g = jax.grad(lambda v: fnn.log_softmax(v)[0, 1])(jnp.array([[1e4, -1e4, 0.0]]))
    assert np.all(np.isfinite(np.asarray(g)))


# ----------------------------------------------------------------------------- lookup / layers

def test_get_by_name_and_did_you_mean():
    assert A.get("relu") is fnn.relu
    assert A.get(fnn.tanh) is fnn.tanh
    leaky = A.get("leaky_relu", alpha=0.2)
    close(ev(leaky), ev(fnn.leaky_relu, alpha=0.2))
    assert leaky.__name__ == "leaky_relu"
    with pytest.raises(ValueError, match="did you mean 'relu'"):
        A.get("rleu")
    with pytest.raises(ValueError, match="unknown activation 'nope'"):
        A.get("nope")


def test_activation_layer_in_serial():
    net = fnn.serial(fnn.Dense(3), fnn.Activation("elu", alpha=0.5))
    params, state = net.init(jax.random.key(0), (4,))
    assert set(params) == {"dense_0"} and state == {}
    assert [name for name, _ in net.children] == ["dense_0", "elu_0"]
    x = np.random.default_rng(2).standard_normal((5, 4)).astype(np.float32)
    z = x @ np.asarray(params["dense_0"]["w"]) + np.asarray(params["dense_0"]["b"])
    y = np.asarray(net(params, jnp.asarray(x)))
    close(y, np.where(z > 0, z, 0.5 * (np.exp(z) - 1)), rtol=1e-5)
    assert net.output_shape((4,)) == (3,)
    assert np.any(z < 0)                                       # the alpha branch was exercised


def test_maxout_shapes_and_values():
    layer = fnn.Maxout(3, 4)
    params, _ = layer.init(jax.random.key(1), (5,))
    assert params["w"].shape == (5, 3, 4) and params["b"].shape == (3, 4)
    assert layer.output_shape((5,)) == (3,)
    rng = np.random.default_rng(3)
    params = {"w": jnp.asarray(rng.standard_normal((5, 3, 4)), jnp.float32),
              "b": jnp.asarray(rng.standard_normal((3, 4)), jnp.float32)}
    x = rng.standard_normal((6, 5)).astype(np.float32)
    y = np.asarray(layer(params, jnp.asarray(x)))
    assert y.shape == (6, 3)
    w, b = np.asarray(params["w"]), np.asarray(params["b"])
    expected = np.array([[max(x[n] @ w[:, j, k] + b[j, k] for k in range(4)) for j in range(3)]
                         for n in range(6)])
    close(y, expected, rtol=1e-5, atol=1e-5)


def test_maxout_validation():
    with pytest.raises(ValueError, match="units must be a positive int"):
        fnn.Maxout(0, 2)
    with pytest.raises(ValueError, match="pieces must be a positive int"):
        fnn.Maxout(2, 1.5)
    with pytest.raises(ValueError, match="flatten first"):
        fnn.Maxout(2, 2).init(jax.random.key(0), (4, 4))
    params, _ = fnn.Maxout(2, 2).init(jax.random.key(0), (4,))
    with pytest.raises(ValueError, match=r"expected input of shape \(batch, 4,\)"):
        fnn.Maxout(2, 2)(params, jnp.ones((3, 5)))


# ----------------------------------------------------------------------------- gradients

SMOOTH = [("sigmoid", {}), ("tanh", {}), ("elu", {}), ("elu", {"alpha": 0.5}), ("selu", {}),
          ("gelu", {}), ("gelu", {"approximate": True}), ("softplus", {}), ("swish", {}),
          ("softmax", {}), ("log_softmax", {})]
KINKED = [("step", {}), ("relu", {}), ("leaky_relu", {}), ("leaky_relu", {"alpha": 0.2})]


@pytest.mark.parametrize("name,kw", SMOOTH + KINKED,
                         ids=[n + "".join(f"-{v}" for v in kw.values()) for n, kw in SMOOTH + KINKED])
def test_gradcheck(name, kw):
    rng = np.random.default_rng(4)
    x = rng.standard_normal((3, 4))
    if (name, kw) in KINKED:
        x = np.where(np.abs(x) < 0.1, 0.5, x)                  # away from the kink at 0
    r = rng.standard_normal((3, 4))                             # a random weighting of the outputs
    fn = A.get(name, **kw)
    report = gradcheck(lambda p, r: jnp.sum(fn(p["x"]) * r), {"x": x}, r)
    assert report["['x']"] < 1e-6


def test_gradcheck_maxout_and_catches_a_wrong_gradient():
    layer = fnn.Maxout(2, 3)
    params, _ = layer.init(jax.random.key(5), (4,))
    x = np.random.default_rng(5).standard_normal((5, 4))
    report = gradcheck(lambda p, x: jnp.sum(layer(p, x) ** 2), params, x)
    assert set(report) == {"['w']", "['b']"} and max(report.values()) < 1e-6

    @jax.custom_jvp
    def bad_tanh(v):
        return jnp.tanh(v)

    bad_tanh.defjvp(lambda primals, tangents: (jnp.tanh(primals[0]), tangents[0]))  # tanh' := 1
    with pytest.raises(fnn.check.GradientCheckError):
        gradcheck(lambda p: jnp.sum(bad_tanh(p["x"])), {"x": x})


def test_activation_arguments_are_checked_at_construction():
    with pytest.raises(ValueError, match=r"activation 'relu' takes no argument\(s\) \['alpha'\]"):
        fnn.Activation("relu", alpha=0.1)


def test_maxout_default_init_scales_by_the_true_fan_in():
    params, _ = fnn.Maxout(64, 2).init(jax.random.key(0), (100,))
    assert float(jnp.std(params["w"])) == pytest.approx(0.1, rel=0.05)   # 1 / sqrt(100)
