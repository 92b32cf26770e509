"""Mixed precision (fnn.precision): policies and their casts, float32 islands (norm statistics,
softmax, losses), bfloat16 training on the digits as accurate as float32, float16 with dynamic
loss scaling (an overflowing step skipped, the scale halved, checkpoints and resume
bit-identical), and gradcheck in float64 whatever the policy."""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn import checkpoint
from fnn.precision import DynamicLossScale, LossScaleState, Policy, get_policy

BF16 = get_policy("params=float32,compute=bfloat16,output=float32")


def dtypes(tree):
    return [a.dtype for a in jax.tree.leaves(tree)]


def assert_same(a, b):
    for (path, x), y in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b)):
        assert np.array_equal(x, y), jax.tree_util.keystr(path)


# ----------------------------------------------------------------------------- policies

def test_policy_strings_parse_to_dtypes_and_print_back():
    assert BF16 == Policy(compute_dtype=jnp.bfloat16)
    assert BF16.param_dtype == jnp.float32 and BF16.compute_dtype == jnp.bfloat16
    assert str(BF16) == "params=float32,compute=bfloat16,output=float32"
    assert get_policy(str(BF16)) == BF16
    assert get_policy("compute=f16, output=bf16") == Policy("float32", "float16", "bfloat16")
    assert get_policy("params=f32,compute=half") == Policy(compute_dtype=np.float16)
    assert get_policy(BF16) is BF16


@pytest.mark.parametrize("spec, error, message", [
    ("compute=bfloat16,outptu=float32", ValueError,
     r"get_policy: a policy key must be one of 'params', 'compute', 'output', got 'outptu'; "
     r"did you mean 'output'\?"),
    ("bfloat16", ValueError, r"get_policy: expected 'key=dtype' items such as 'compute=bfloat16', "
                             r"got 'bfloat16'"),
    ("compute=bf16,compute=f16", ValueError, r"'compute' is given twice"),
    ("compute=int32", TypeError, r"Policy: compute_dtype must be a floating-point dtype such as "
                                 r"'bfloat16', 'float16' or 'float32', got 'int32'"),
    (jnp.bfloat16, TypeError, r"get_policy: a precision policy must be an "
                              r"fnn.precision.Policy or a string"),
])
def test_bad_policies_are_refused_with_what_was_expected(spec, error, message):
    with pytest.raises(error, match=message):
        get_policy(spec)


def test_casts_touch_floating_leaves_only():
    tree = {"w": jnp.ones(3), "n": jnp.arange(3), "mask": jnp.array([True, False]),
            "key": jax.random.key(0), "f64": np.ones(2, np.float64), "lr": 0.5}
    compute = BF16.cast_to_compute(tree)
    assert compute["w"].dtype == jnp.bfloat16 and compute["f64"].dtype == jnp.bfloat16
    assert compute["n"] is tree["n"] and compute["mask"] is tree["mask"]
    assert compute["key"] is tree["key"] and compute["lr"] == 0.5
    back = BF16.cast_to_param(compute)
    assert back["w"].dtype == jnp.float32 and back["n"].dtype == jnp.int32
    assert BF16.cast_to_output(compute)["w"].dtype == jnp.float32


def test_float16_scales_the_loss_by_default_and_bfloat16_does_not():
    assert get_policy("compute=float16").loss_scaling == DynamicLossScale()
    assert DynamicLossScale().initial == 2.0 ** 15 and DynamicLossScale().period == 2000
    assert BF16.loss_scaling is None
    own = DynamicLossScale(initial=8.0, period=5)
    assert Policy(compute_dtype=jnp.bfloat16, loss_scale=own).loss_scaling is own
    with pytest.raises(ValueError, match=r"DynamicLossScale: factor must be a finite number "
                                         r">= 1, got 0.5"):
        DynamicLossScale(factor=0.5)
    with pytest.raises(TypeError, match="Policy: loss_scale must be an "
                                        "fnn.precision.DynamicLossScale or None, got 128"):
        Policy(loss_scale=128)


def test_dynamic_loss_scale_halves_on_overflow_and_doubles_after_period_finite_steps():
    rule = DynamicLossScale(initial=8.0, period=3, factor=2.0, minimum=2.0)
    state = rule.init()
    assert state.scale.dtype == jnp.float32 and state.counter.dtype == jnp.int32
    seen = []
    for finite in [True, True, True, True, False, False, False, True]:
        state = rule.adjust(state, jnp.asarray(finite))
        seen.append((float(state.scale), int(state.counter)))
    #            grows after 3 finite steps      halves, floored at minimum=2   counts again
    assert seen == [(8, 1), (8, 2), (16, 0), (16, 1), (8, 0), (4, 0), (2, 0), (2, 1)]
    scaled = LossScaleState(jnp.float32(4.0), jnp.int32(0))
    assert float(scaled.scale_loss(jnp.float32(1.5))) == 6.0
    chex.assert_trees_all_equal(scaled.unscale({"w": jnp.full(2, 6.0), "n": jnp.arange(2)}),
                                {"w": jnp.full(2, 1.5), "n": jnp.arange(2)})


# ----------------------------------------------------------------------------- float32 islands

def test_norm_statistics_are_float32_under_bfloat16_inputs():
    """BatchNorm/LayerNorm on bfloat16 inputs compute exactly what float32 computes on the
    same values: statistics of values near 100 with a spread of 1 would lose every digit of
    the variance in bfloat16 (8 bits of mantissa)."""
    x = (100.0 + jax.random.normal(jax.random.key(0), (64, 4))).astype(jnp.bfloat16)
    wide = x.astype(jnp.float32)
    bn = fnn.BatchNorm(momentum=0.5)
    params, state = bn.init(jax.random.key(1), (4,))
    y, new_state = bn.apply(params, state, x, train=True)
    y_ref, state_ref = bn.apply(params, state, wide, train=True)
    assert y.dtype == jnp.bfloat16 and dtypes(new_state) == [jnp.float32] * 2
    chex.assert_trees_all_equal(new_state, state_ref)
    np.testing.assert_array_equal(y, y_ref.astype(jnp.bfloat16))
    assert float(jnp.std(y_ref)) == pytest.approx(1.0, abs=0.01)   # really normalised
    # bf16 params (as a bf16 policy hands them over) give the same numbers
    y16, _ = bn.apply(BF16.cast_to_compute(params), state, x, train=True)
    np.testing.assert_array_equal(y16, y)
    ln = fnn.LayerNorm()
    lparams, _ = ln.init(jax.random.key(2), (64,))
    z = ln(BF16.cast_to_compute(lparams), x.T)
    assert z.dtype == jnp.bfloat16
    np.testing.assert_array_equal(z, ln(lparams, wide.T).astype(jnp.bfloat16))


def test_softmax_and_losses_compute_in_float32_under_bfloat16_inputs():
    logits = (jax.random.normal(jax.random.key(0), (8, 5)) * 4).astype(jnp.bfloat16)
    wide = logits.astype(jnp.float32)
    labels = jnp.arange(8) % 5
    for f in (fnn.softmax, fnn.log_softmax):
        out = f(logits)
        assert out.dtype == jnp.bfloat16
        np.testing.assert_array_equal(out, f(wide).astype(jnp.bfloat16))
    ce = fnn.losses.softmax_cross_entropy(logits, labels)
    assert ce.dtype == jnp.float32
    assert float(ce) == float(fnn.losses.softmax_cross_entropy(wide, labels))
    target = jnp.ones((8, 5), jnp.float32)
    for loss in (fnn.losses.mse, fnn.losses.mae, fnn.losses.sum_of_halves,
                 fnn.losses.binary_cross_entropy):
        value = loss(logits, target)
        assert value.dtype == jnp.float32
        assert float(value) == float(loss(wide, target)), loss.__name__
    kl = fnn.losses.kl_divergence(fnn.log_softmax(logits), jax.nn.softmax(wide))
    assert kl.dtype == jnp.float32
    params = BF16.cast_to_compute({"w": wide, "b": wide[0]})
    assert fnn.losses.l2_penalty(params).dtype == jnp.float32
    assert float(fnn.losses.l1_penalty(params)) == float(jnp.sum(jnp.abs(wide)))


# ----------------------------------------------------------------------------- wrappers

def _recording_net(seen):
    """A small net that records the dtype its hidden layer computes in."""
    def spy(x):
        seen.append(x.dtype)
        return x
    return fnn.serial(fnn.Dense(6), fnn.Lambda(spy, name="spy"), fnn.tanh, fnn.Dense(3))


def test_cast_layer_casts_at_its_boundary_and_keeps_state_dtypes():
    seen = []
    net = fnn.precision.cast_layer(_recording_net(seen), "compute=bfloat16,output=float16")
    params, _ = net.init(jax.random.key(0), (4,))
    assert dtypes(params) == [jnp.float32] * 4
    seen.clear()                      # init traced the spy in float32 to infer shapes
    y = net(params, jnp.ones((2, 4)))
    assert seen == [jnp.bfloat16] and y.dtype == jnp.float16
    bn = fnn.precision.cast_layer(fnn.serial(fnn.Dense(3), fnn.BatchNorm()), BF16)
    params, state = bn.init(jax.random.key(1), (4,))
    y, new_state = bn.apply(params, state, jnp.ones((5, 4)), train=True)
    assert y.dtype == jnp.float32 and dtypes(new_state) == [jnp.float32] * 2
    stored = fnn.precision.cast_layer(fnn.Dense(3), "params=bfloat16,compute=bfloat16")
    assert dtypes(stored.init(jax.random.key(0), (4,))[0]) == [jnp.bfloat16] * 2


def test_cast_objective_computes_in_bfloat16_and_returns_float32():
    seen = []
    net = _recording_net(seen)
    params, _ = net.init(jax.random.key(0), (4,))
    seen.clear()
    objective = fnn.precision.cast_objective(fnn.supervised(net), BF16)
    assert objective.net is net and callable(objective.check_data)
    (loss, (_, metrics)), grads = jax.jit(jax.value_and_grad(objective, has_aux=True),
                                          static_argnums=4)(
        params, {}, (jnp.ones((3, 4)), jnp.arange(3)), None, True)
    assert seen == [jnp.bfloat16]
    assert loss.dtype == jnp.float32 and dtypes(metrics) == [jnp.float32] * 2
    assert dtypes(grads) == [jnp.float32] * 4   # back through the casts to the master params


def test_gradcheck_runs_in_float64_whatever_the_policy(x64):
    seen = []
    net = fnn.precision.cast_layer(_recording_net(seen), BF16)
    params, _ = net.init(jax.random.key(0), (4,))
    seen.clear()
    x = jax.random.normal(jax.random.key(1), (5, 4))
    y = jnp.arange(5) % 3
    loss = lambda p, x, y: fnn.losses.softmax_cross_entropy(net(p, x), y)
    report = fnn.gradcheck(loss, params, x, y)
    assert {d.name for d in seen} == {"float64"} and max(report.values()) < 1e-6
    seen.clear()
    grads = jax.jit(jax.grad(loss))(params, x, y)   # outside gradcheck the policy holds
    assert seen == [jnp.bfloat16] and dtypes(grads) == [jnp.float32] * 4


# ----------------------------------------------------------------------------- bfloat16 training

@pytest.mark.slow
@pytest.mark.parametrize("model, epochs", [("mlp", 10), ("cnn", 5)])
def test_bfloat16_training_on_the_digits_is_as_accurate_as_float32(model, epochs):
    """Same seed, same start: bfloat16 compute ends within 0.5 accuracy points of float32 on
    the 360 test digits (one image either way), with float32 params and optimizer state."""
    flat = model == "mlp"
    split = fnn.data.load_digits(flatten=flat)
    net = fnn.MLP([64, 10]) if flat else fnn.models.SimpleCNN([8, 16], 32)
    params, _ = net.init(jax.random.key(0), (64,) if flat else (8, 8, 1))
    objective = fnn.supervised(net)
    runs = {p: fnn.fit(objective, params, fnn.optim.adam(1e-3), (split.x_train, split.y_train),
                       epochs=epochs, batch_size=32, progress=False, precision=p)
            for p in (None, BF16)}
    accuracy = {p: fnn.evaluate(objective, r.params, None, (split.x_test, split.y_test))
                ["accuracy"] for p, r in runs.items()}
    assert accuracy[None] > 0.93
    assert abs(accuracy[BF16] - accuracy[None]) <= 0.005
    assert dtypes(runs[BF16].params) == dtypes(runs[None].params)
    assert {d.name for d in dtypes(runs[BF16].opt_state)} == {"float32", "int32"}
    assert not np.array_equal(runs[BF16].params["dense_0"]["w"],     # it did compute in bf16
                              runs[None].params["dense_0"]["w"])


# ----------------------------------------------------------------------------- float16 scaling

F16 = Policy(compute_dtype=jnp.float16, loss_scale=DynamicLossScale(initial=2.0 ** 10, period=3))


def _digits_problem(n=256):
    split = fnn.data.load_digits()
    net = fnn.MLP([16, 10])
    params, _ = net.init(jax.random.key(0), (64,))
    return fnn.supervised(net), params, split.x_train[:n], split.y_train[:n]


def test_a_float16_step_that_overflows_is_skipped_and_halves_the_scale():
    objective, params, x, y = _digits_problem(32)
    opt = fnn.optim.adam(1e-2)
    step = jax.jit(fnn.train_step(objective, opt, precision=F16))
    ts = fnn.TrainState.create(params, opt, precision=F16)
    scales = []
    for _ in range(3):
        ts, metrics = step(ts, (x, y), None)
        scales.append(float(ts.loss_scale.scale))
    assert scales == [1024, 1024, 2048]                        # grown after period=3 steps
    before = ts
    ts, metrics = step(ts, (x * 3e4, y), None)                # overflows float16 (max 65504)
    assert float(ts.loss_scale.scale) == 1024 and int(ts.step) == 4
    assert_same(before.params, ts.params)
    assert_same(before.opt_state, ts.opt_state)
    ts, metrics = step(ts, (x, y), None)                       # and training goes on
    assert np.isfinite(float(metrics["loss"])) and int(ts.loss_scale.counter) == 1
    assert not np.array_equal(before.params["dense_0"]["w"], ts.params["dense_0"]["w"])
    assert dtypes(ts.params) == [jnp.float32] * 4


def test_a_loss_scaled_step_needs_a_loss_scale_and_fit_refuses_raise():
    objective, params, x, y = _digits_problem(32)
    opt = fnn.optim.sgd(0.1)
    step = fnn.train_step(objective, opt, precision="compute=float16")
    with pytest.raises(ValueError, match=r"checked_step: precision params=float32,"
                                         r"compute=float16,output=float32 scales the loss, but "
                                         r"the train state has no loss_scale"):
        step(fnn.TrainState(params, {}, opt.init(params), jnp.int32(0)), (x, y), None)
    with pytest.raises(ValueError, match=r"fit: on_nonfinite='raise' cannot be combined with "
                                         r"loss scaling"):
        fnn.fit(objective, params, opt, (x, y), precision=F16, on_nonfinite="raise")


def test_float16_fit_skips_the_overflow_and_resumes_bit_identically(tmp_path):
    """One example overflows float16 whichever minibatch it lands in: one step skipped per
    epoch, the scale halved by it; a run checkpointed, stopped and resumed ends with the
    same params, optimizer state, history and loss scale as an uninterrupted one."""
    objective, params, x, y = _digits_problem()
    x = x.copy()
    x[7] = 3e4
    policy = Policy(compute_dtype=jnp.float16, loss_scale=DynamicLossScale(2.0 ** 10, 1000))
    opt = fnn.optim.adam(1e-2)
    kw = dict(epochs=4, batch_size=32, seed=1, progress=False, precision=policy)
    reference = fnn.fit(objective, params, opt, (x, y), checkpoint_dir=tmp_path / "ref", **kw)
    assert reference.history["skipped"].tolist() == [1, 1, 1, 1]
    loss = reference.history["loss"]
    assert np.all(np.isfinite(loss)) and loss[-1] < loss[0]    # training goes on
    final = checkpoint.load(checkpoint.CheckpointManager(tmp_path / "ref").path(4)).tree
    assert float(final["loss_scale"]["scale"]) == 2.0 ** 10 / 2 ** 4
    fnn.fit(objective, params, opt, (x, y), checkpoint_dir=tmp_path / "run",
            **{**kw, "epochs": 2})
    resumed = fnn.fit(objective, params, opt, (x, y), checkpoint_dir=tmp_path / "run",
                      resume=True, **kw)
    assert_same(reference.params, resumed.params)
    assert_same(reference.opt_state, resumed.opt_state)
    assert np.array_equal(reference.history["loss"], resumed.history["loss"])
    again = checkpoint.load(checkpoint.CheckpointManager(tmp_path / "run").path(4)).tree
    chex.assert_trees_all_equal(final["loss_scale"], again["loss_scale"])


def test_sweep_runs_are_fits_under_the_same_policy():
    objective, params, x, y = _digits_problem()
    res = fnn.sweep(objective, params, fnn.optim.sgd, (x, y), seeds=np.arange(2),
                    hparams={"learning_rate": 0.1}, epochs=3, batch_size=32, precision=F16)
    assert res.history["skipped"].shape == (2, 3)
    assert dtypes(res.params) == [jnp.float32] * 4
    run = fnn.fit(objective, params, fnn.optim.sgd(0.1), (x, y), epochs=3, batch_size=32,
                  seed=1, progress=False, precision=F16)
    np.testing.assert_allclose(res.history["loss"][1], run.history["loss"], rtol=1e-3)
    np.testing.assert_array_equal(res.history["skipped"][1], run.history["skipped"])
    assert not np.allclose(res.history["loss"][0], run.history["loss"])   # runs differ
