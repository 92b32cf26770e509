"""fnn.initializers: shapes, dtypes, the variance formulas on large matrices, lookup by name."""
import math
import types

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import initializers as I
from lowerings import Lowerings

KEY = jax.random.key(0)
FAN_IN, FAN_OUT = 400, 1000          # 400k samples: the std estimate is good to ~0.1%


def draw(init, shape=(FAN_IN, FAN_OUT), dtype=jnp.float32, key=KEY):
    return np.asarray(init(key, shape, dtype), np.float64)


@pytest.mark.parametrize("name", sorted(I._BY_NAME))
def test_shapes_and_dtypes(name):
    init = I.get(name)
    for shape in [(3, 5), (3, 3, 2, 4)]:
        w = init(KEY, shape)
        assert w.shape == shape and w.dtype == jnp.float32
    if name != "orthogonal":                 # see test_orthogonal_in_bfloat16
        assert init(KEY, (4, 4), jnp.bfloat16).dtype == jnp.bfloat16


def test_orthogonal_in_bfloat16():
    w = I.orthogonal()(KEY, (8, 4), jnp.bfloat16)
    assert w.dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(w, np.float32).T @ np.asarray(w, np.float32),
                               np.eye(4), atol=3e-2)


def test_float64_when_enabled(x64):
    assert I.he_normal()(KEY, (3, 4), jnp.float64).dtype == jnp.float64


@pytest.mark.parametrize("init,std", [
    (I.lecun_normal(), 1 / math.sqrt(FAN_IN)),
    (I.glorot_normal(), math.sqrt(2 / (FAN_IN + FAN_OUT))),
    (I.xavier_normal(), math.sqrt(2 / (FAN_IN + FAN_OUT))),
    (I.he_normal(), math.sqrt(2 / FAN_IN)),
    (I.kaiming_normal(), math.sqrt(2 / FAN_IN)),
    (I.normal(0.3), 0.3),
    (I.small_random(), 0.001),
    (I.lecun_uniform(), 1 / math.sqrt(FAN_IN)),
    (I.glorot_uniform(), math.sqrt(2 / (FAN_IN + FAN_OUT))),
    (I.he_uniform(), math.sqrt(2 / FAN_IN)),
], ids=["lecun_normal", "glorot_normal", "xavier_normal", "he_normal", "kaiming_normal",
        "normal(0.3)", "small_random", "lecun_uniform", "glorot_uniform", "he_uniform"])
def test_empirical_std(init, std):
    w = draw(init)
    assert abs(w.mean()) < 0.01 * std
    assert w.std() == pytest.approx(std, rel=0.02)


def test_normal_is_untruncated():
    """lecun_normal is the notes' randn(n)/sqrt(n): draws beyond 2 sigma occur (~4.6%)."""
    w = draw(I.lecun_normal()) * math.sqrt(FAN_IN)
    assert np.mean(np.abs(w) > 2) == pytest.approx(0.0455, abs=0.003)


def test_conv_kernel_fan_in_counts_the_receptive_field():
    w = draw(I.he_normal(), (3, 3, 64, 128))
    assert w.std() == pytest.approx(math.sqrt(2 / (3 * 3 * 64)), rel=0.02)


@pytest.mark.parametrize("init,bound", [
    (I.lecun_uniform(), math.sqrt(3 / FAN_IN)),
    (I.glorot_uniform(), math.sqrt(6 / (FAN_IN + FAN_OUT))),
    (I.he_uniform(), math.sqrt(6 / FAN_IN)),
], ids=["lecun_uniform", "glorot_uniform", "he_uniform"])
def test_symmetric_uniform_bounds(init, bound):
    w = draw(init)
    assert w.max() <= bound and w.min() >= -bound
    assert w.max() > 0.99 * bound and w.min() < -0.99 * bound   # the whole interval is used


def test_uniform_is_zero_to_scale():
    w = draw(I.uniform(0.5))
    assert w.min() >= 0 and w.max() < 0.5
    assert w.mean() == pytest.approx(0.25, rel=0.01)


@pytest.mark.parametrize("shape", [(64, 32), (32, 32)])
def test_orthogonal(shape):
    w = draw(I.orthogonal(), shape)
    np.testing.assert_allclose(w.T @ w, np.eye(shape[1]), atol=1e-5)
    w2 = draw(I.orthogonal(2.0), shape)
    np.testing.assert_allclose(w2.T @ w2, 4 * np.eye(shape[1]), atol=4e-5)


def test_orthogonal_wide_has_orthonormal_rows():
    w = draw(I.orthogonal(), (16, 48))
    np.testing.assert_allclose(w @ w.T, np.eye(16), atol=1e-5)


def test_constants():
    np.testing.assert_array_equal(draw(I.zeros, (3, 4)), np.zeros((3, 4)))
    np.testing.assert_array_equal(draw(I.ones, (3, 4)), np.ones((3, 4)))
    np.testing.assert_array_equal(draw(I.constant(0.5), (2, 2)), np.full((2, 2), 0.5))


def test_deterministic_in_the_key():
    a, b = draw(I.he_normal(), (8, 8)), draw(I.he_normal(), (8, 8))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, draw(I.he_normal(), (8, 8), key=jax.random.key(1)))


def test_get_by_name_and_did_you_mean():
    assert I.get(I.zeros) is I.zeros
    w = draw(I.get("he_normal"))
    assert w.std() == pytest.approx(math.sqrt(2 / FAN_IN), rel=0.02)
    assert draw(I.get("small_random")).std() == pytest.approx(0.001, rel=0.02)
    with pytest.raises(ValueError, match="did you mean 'he_normal'"):
        I.get("he_nromal")
    with pytest.raises(ValueError, match="unknown initializer 'bogus'"):
        I.get("bogus")


def test_invalid_scales_raise():
    for make in (I.normal, I.small_random, I.uniform):
        with pytest.raises(ValueError, match="must be a finite number > 0, got -1"):
            make(-1)


def test_dense_uses_w_init():
    params, _ = fnn.Dense(4, w_init="zeros").init(KEY, (3,))
    np.testing.assert_array_equal(np.asarray(params["w"]), np.zeros((3, 4)))
    params, _ = fnn.Dense(4, w_init=I.constant(0.25), b_init=I.ones).init(KEY, (3,))
    np.testing.assert_array_equal(np.asarray(params["w"]), np.full((3, 4), 0.25))
    np.testing.assert_array_equal(np.asarray(params["b"]), np.ones(4))
    params, _ = fnn.Dense(FAN_OUT, w_init="he_normal").init(KEY, (FAN_IN,))
    assert float(jnp.std(params["w"])) == pytest.approx(math.sqrt(2 / FAN_IN), rel=0.02)
    default, _ = fnn.Dense(FAN_OUT).init(KEY, (FAN_IN,))          # lecun_normal by default
    assert float(jnp.std(default["w"])) == pytest.approx(1 / math.sqrt(FAN_IN), rel=0.02)
    with pytest.raises(ValueError, match="did you mean 'he_normal'"):
        fnn.Dense(4, w_init="he_nromal")


def test_get_rejects_an_uncalled_factory_with_a_hint():
    with pytest.raises(ValueError, match=r"he_normal makes an initializer: pass he_normal\(\)"):
        I.get(I.he_normal)


@pytest.mark.parametrize("bad", [0, -1.0, float("inf"), True, "0.1"])
def test_scale_arguments_must_be_finite_positive_numbers(bad):
    with pytest.raises(ValueError, match=r"normal: stddev must be a finite number > 0"):
        I.normal(bad)
    assert I.normal(np.float32(0.5))(KEY, (3,)).shape == (3,)


# shaped draws XLA compiles slowly (a small last axis, a conv kernel): draw's own test; JAX's
# side of the initializer comparison compiles a shaped draw per shape and dtype, so it uses a
# (10, 64) kernel, quick to compile, and one conv kernel for the receptive field
SLOW_SHAPES = [(64, 10), (3, 3, 4, 8)]
JAX_COUNTERPARTS = {
    "lecun_normal": jax.nn.initializers.variance_scaling(1.0, "fan_in", "normal"),
    "lecun_uniform": jax.nn.initializers.variance_scaling(1.0, "fan_in", "uniform"),
    "glorot_normal": jax.nn.initializers.variance_scaling(1.0, "fan_avg", "normal"),
    "glorot_uniform": jax.nn.initializers.variance_scaling(1.0, "fan_avg", "uniform"),
    "he_normal": jax.nn.initializers.variance_scaling(2.0, "fan_in", "normal"),
    "he_uniform": jax.nn.initializers.variance_scaling(2.0, "fan_in", "uniform"),
    "normal": jax.nn.initializers.normal(1.0), "small_random": jax.nn.initializers.normal(1e-3),
    "uniform": jax.nn.initializers.uniform(1e-2),
}


def test_the_numbers_are_jax_nn_initializers_bit_for_bit():
    """fnn draws flat and reshapes (fnn.initializers.draw: one program per size); the numbers
    are those of the jax.nn.initializers counterpart, in float32 and (x64) float64, and the
    default dtype is JAX's default float as there. One test: the shaped draws JAX's side
    compiles are shared by all the initializers."""
    shape = (10, 64)
    for name, theirs in JAX_COUNTERPARTS.items():
        ours = I.get(name)
        a, b = ours(KEY, shape, jnp.float32), theirs(KEY, shape, jnp.float32)
        assert a.dtype == b.dtype == jnp.float32 and a.shape == shape, name
        np.testing.assert_array_equal(a, b, err_msg=name)
        np.testing.assert_array_equal(ours(KEY, shape), b, err_msg=name)     # the default
        with jax.enable_x64(True):
            a, b = ours(KEY, shape), theirs(KEY, shape)
            assert a.dtype == b.dtype == jnp.float64, name
            np.testing.assert_array_equal(a, b, err_msg=name)
    for name in ("he_normal", "he_uniform"):          # a conv kernel: fans times 3 x 3
        np.testing.assert_array_equal(I.get(name)(KEY, SLOW_SHAPES[1]),
                                      JAX_COUNTERPARTS[name](KEY, SLOW_SHAPES[1]), err_msg=name)


@pytest.mark.parametrize("sample, args", [(jax.random.normal, ()),
                                          (jax.random.uniform, (-2.0, 3.0))])
def test_draw_gives_the_shaped_draws_numbers(sample, args):
    for shape in SLOW_SHAPES:
        np.testing.assert_array_equal(I.draw(sample, KEY, shape, jnp.float32, *args),
                                      sample(KEY, shape, jnp.float32, *args))


def test_a_variance_scaled_weight_needs_two_axes_and_known_settings():
    assert I.fans((3, 3, 16, 8)) == (144.0, 72.0)
    with pytest.raises(ValueError, match=r"fans: a weight of shape \(5,\) has no fan_in"):
        I.lecun_normal()(KEY, (5,))
    with pytest.raises(ValueError, match="variance_scaling: mode must be one of 'fan_in'"):
        I.variance_scaling(1.0, "fan_out", "normal")
    with pytest.raises(ValueError, match="variance_scaling: distribution must be one of"):
        I.variance_scaling(1.0, "fan_in", "truncated_normal")
    with pytest.raises(ValueError, match="variance_scaling: scale must be"):
        I.variance_scaling(0.0, "fan_in", "normal")


def _lowered_draws(f, names_of=("jit(_normal)", "jit(_uniform)")):
    """The random programs (``jit(_normal)``, ``jit(_uniform)``; or those named ``names_of``)
    JAX lowers while ``f()`` runs (from XLA or the disk cache: either way a program this
    process had not built)."""
    with Lowerings(every=True) as lowered:
        f()
    return [name for name in lowered.names if name in names_of]


def test_small_eager_draws_share_one_program_per_power_of_two():
    """draw takes a small eager draw's numbers from the first ones of a power-of-two draw: the
    same numbers as a draw of the exact size (threefry counts over the flat index), and sizes
    5000 and 4500 (both within 8192) build one program; above 2**16 a draw is its own size."""
    def pooled(size, dtype=jnp.float32, sample=jax.random.normal, *args):
        return I.draw(sample, KEY, (size,), dtype, *args)

    assert len(_lowered_draws(lambda: pooled(5000))) <= 1           # 8192 (maybe built before)
    assert _lowered_draws(lambda: pooled(4500)) == []               # the same program
    for size, dtype, sample, args in [(65, jnp.float32, jax.random.normal, ()),
                                      (4500, jnp.float32, jax.random.normal, ()),
                                      (100, jnp.bfloat16, jax.random.normal, ()),
                                      (100, jnp.float32, jax.random.uniform, (-0.3, 0.3))]:
        np.testing.assert_array_equal(pooled(size, dtype, sample, *args),
                                      sample(KEY, (size,), dtype, *args), err_msg=str(size))
    with jax.enable_x64(True):
        np.testing.assert_array_equal(pooled(100, jnp.float64), jax.random.normal(KEY, (100,),
                                                                                  jnp.float64))
    half = jnp.float32(0.5)                                         # scaled in the flat draw
    pooled_scaled = lambda size: I.draw(jax.random.normal, KEY, (size,), jnp.float32, scale=half)
    np.testing.assert_array_equal(pooled_scaled(4500), jax.random.normal(KEY, (4500,)) * half)
    assert _lowered_draws(lambda: pooled_scaled(4400), ["jit(multiply)"]) == []
    big = 2 ** 16 + 1
    assert _lowered_draws(lambda: pooled(big)) == ["jit(_normal)"]  # f32[65537], not 131072
    assert pooled(big).shape == (big,)


def test_pooled_draws_are_cut_on_the_host_and_placed_as_the_exact_draw():
    """A pooled draw's first numbers are cut and shaped on the host: a new weight shape lowers
    no slice or reshape program; the numbers land where the exact draw's would (committed to a
    key's device when the key is, else uncommitted on the default device)."""
    shape = (37, 41)                                                # 1,517 of a 2,048 draw
    I.draw(jax.random.normal, KEY, (2000,), jnp.float32)            # the 2,048 draw, built
    with Lowerings(every=True) as lowered:
        w = I.draw(jax.random.normal, KEY, shape, jnp.float32)
    assert lowered.names == []
    exact = jax.random.normal(KEY, shape, jnp.float32)
    np.testing.assert_array_equal(w, exact)
    assert w.shape == shape and w.dtype == jnp.float32 and not w.committed
    assert w.sharding == exact.sharding
    device = jax.devices()[-1]
    on_device = jax.device_put(KEY, device)
    w = I.draw(jax.random.normal, on_device, shape, jnp.float32)
    assert w.committed and w.devices() == {device}
    assert w.sharding == jax.random.normal(on_device, shape, jnp.float32).sharding
    # a key spread over processes (the host cannot read its draw whole): the exact size
    assert I._pooled_size(KEY, 1517) == 2048
    assert I._pooled_size(types.SimpleNamespace(is_fully_addressable=False), 1517) == 1517


def test_traced_and_other_prng_draws_are_their_own_size():
    """Under jit (one program anyway) the draw is prod(shape) numbers, no larger draw; with
    another PRNG (JAX promises nothing of rbg's numbers across sizes) or the threefry whose
    numbers depend on the draw's size (not partitionable), each size is its own draw."""
    jaxpr = str(jax.make_jaxpr(lambda k: I.draw(jax.random.normal, k, (3, 5), jnp.float32))(KEY))
    assert "f32[15]" in jaxpr and "f32[64]" not in jaxpr
    rbg = jax.random.key(0, impl="rbg")
    I.draw(jax.random.normal, rbg, (5000,), jnp.float32)
    assert _lowered_draws(lambda: I.draw(jax.random.normal, rbg, (4500,), jnp.float32)) == \
        ["jit(_normal)"]
    np.testing.assert_array_equal(I.draw(jax.random.normal, rbg, (4500,), jnp.float32),
                                  jax.random.normal(rbg, (4500,), jnp.float32))
    with jax.threefry_partitionable(False):
        np.testing.assert_array_equal(I.draw(jax.random.normal, KEY, (10, 10), jnp.float32),
                                      jax.random.normal(KEY, (10, 10), jnp.float32))
