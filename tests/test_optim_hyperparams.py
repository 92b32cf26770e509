"""Hyperparameters are runtime values: the laws of ``hyperparams_of`` / ``with_hyperparams``.

For every optimizer factory of ``fnn.optim`` (and chains, wrappers, schedules as learning
rates, and ``fnn.supervised``):
1. ``with_hyperparams(opt, hyperparams_of(opt))`` computes bit-identically to ``opt`` (its
   update traces to the same jaxpr);
2. the hyperparameters passed as ARRAY arguments of a jitted update give bit-identical
   updates and states (float32, float64; bfloat16 keeps its dtype);
3. two instances differing only in numbers trace to the same jaxpr, and a jitted loop over
   three learning rates traces once;
4. the state and the optax-compatible shape of the transformation are unchanged.
"""
import chex
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn
from fnn import optim as fo
from fnn.optim import Decay, HyperparamFunction, hyperparams_of, with_hyperparams

# Each case builds an optimizer from one of two sets of numbers (k = 0 or 1), with the same
# static options, so the two share one program.
SCHEDULES = {
    "constant": lambda k: fo.constant_schedule([0.1, 0.03][k]),
    "linear": lambda k: fo.linear_schedule([0.1, 0.2][k], [0.01, 0.0][k], 4),
    "polynomial": lambda k: fo.polynomial_schedule([0.1, 0.3][k], [0.01, 0.02][k], 2, 4, 1),
    "exponential": lambda k: fo.exponential_decay([0.1, 0.2][k], 2, [0.5, 0.7][k], 1, True,
                                                  [0.02, 0.01][k]),
    "inverse_time": lambda k: fo.inverse_time_decay([0.1, 0.2][k], [0.5, 0.1][k], 2),
    "piecewise": lambda k: fo.piecewise_constant_schedule([0.1, 0.2][k], {1: [0.4, 0.3][k],
                                                                          3: 0.1}),
    "cosine": lambda k: fo.cosine_decay_schedule([0.1, 0.2][k], 4, [0.1, 0.3][k], 2.0),
    "warmup_cosine": lambda k: fo.warmup_cosine_decay_schedule(0.0, [0.1, 0.2][k], 2, 5,
                                                               [0.01, 0.02][k]),
    "join": lambda k: fo.join_schedules([fo.constant_schedule([0.1, 0.2][k]),
                                         fo.linear_schedule(0.1, [0.0, 0.01][k], 3)], [2]),
}

OPTIMIZERS = {
    "sgd": lambda k: fo.sgd([0.1, 0.01][k]),
    "sgd_momentum": lambda k: fo.sgd([0.1, 0.01][k], [0.9, 0.6][k]),
    "sgd_nesterov": lambda k: fo.sgd([0.1, 0.01][k], [0.9, 0.6][k], nesterov=True),
    "adagrad": lambda k: fo.adagrad([0.1, 0.3][k], [0.1, 0.2][k], [1e-7, 1e-5][k]),
    "rmsprop": lambda k: fo.rmsprop([0.01, 0.1][k], [0.9, 0.99][k], [1e-8, 1e-3][k]),
    "rmsprop_centered_momentum": lambda k: fo.rmsprop(
        [0.01, 0.1][k], [0.9, 0.8][k], centered=True, momentum=[0.9, 0.6][k],
        eps_in_sqrt=False, bias_correction=True),
    "rmsprop_bias_correction": lambda k: fo.rmsprop([0.01, 0.1][k], [0.9, 0.7][k],
                                                    bias_correction=True, nesterov=True,
                                                    momentum=[0.4, 0.3][k]),
    "adadelta": lambda k: fo.adadelta([None, None][k], [0.9, 0.95][k], [1e-6, 1e-4][k]),
    "adadelta_decay": lambda k: fo.adadelta([1.0, 0.5][k], weight_decay=[1e-2, 1e-3][k]),
    "adam": lambda k: fo.adam([1e-3, 3e-2][k], [0.9, 0.8][k], [0.999, 0.99][k],
                              [1e-8, 1e-6][k], [0.0, 1e-9][k]),
    "adam_nesterov": lambda k: fo.adam([1e-3, 3e-2][k], [0.9, 0.8][k], nesterov=True),
    "nadam": lambda k: fo.nadam([1e-3, 3e-2][k], [0.9, 0.8][k], [0.999, 0.9][k]),
    "adamw": lambda k: fo.adamw([1e-3, 3e-2][k], weight_decay=[1e-4, 1e-2][k]),
    "adamw_masked": lambda k: fo.adamw([1e-3, 3e-2][k], weight_decay=[1e-4, 1e-2][k],
                                       mask=lambda p: jax.tree.map(lambda x: x.ndim > 1, p)),
    "amsgrad": lambda k: fo.amsgrad([1e-3, 3e-2][k], [0.9, 0.8][k], [0.999, 0.99][k]),
    "adamax": lambda k: fo.adamax([2e-3, 3e-2][k], [0.9, 0.8][k], [0.999, 0.99][k]),
    "lion": lambda k: fo.lion([1e-4, 3e-3][k], [0.9, 0.8][k], [0.99, 0.95][k],
                              weight_decay=[1e-3, 1e-2][k]),
    # pieces, chains and wrappers
    "identity": lambda k: fo.identity(),
    "scale": lambda k: fo.scale([0.5, -2.0][k]),
    "scale_by_learning_rate": lambda k: fo.scale_by_learning_rate([0.1, 0.2][k]),
    "scale_by_schedule": lambda k: fo.scale_by_schedule(SCHEDULES["cosine"](k)),
    "trace": lambda k: fo.trace([0.9, 0.6][k]),
    "scale_by_rss": lambda k: fo.scale_by_rss([0.1, 0.2][k], [1e-7, 1e-3][k]),
    "scale_by_rms": lambda k: fo.scale_by_rms([0.9, 0.6][k], [1e-8, 1e-3][k]),
    "scale_by_stddev": lambda k: fo.scale_by_stddev([0.9, 0.6][k], [1e-8, 1e-3][k]),
    "scale_by_adadelta": lambda k: fo.scale_by_adadelta([0.9, 0.6][k], [1e-6, 1e-3][k]),
    "scale_by_adam": lambda k: fo.scale_by_adam([0.9, 0.6][k], [0.999, 0.9][k]),
    "scale_by_amsgrad": lambda k: fo.scale_by_amsgrad([0.9, 0.6][k], [0.999, 0.9][k]),
    "scale_by_adamax": lambda k: fo.scale_by_adamax([0.9, 0.6][k], [0.999, 0.9][k]),
    "scale_by_lion": lambda k: fo.scale_by_lion([0.9, 0.6][k], [0.99, 0.9][k]),
    "clip": lambda k: fo.chain(fo.clip([0.3, 1.0][k]), fo.sgd(0.1)),
    "clip_by_global_norm": lambda k: fo.chain(fo.clip_by_global_norm([0.5, 2.0][k]),
                                              fo.adam([1e-3, 1e-2][k])),
    "add_decayed_weights": lambda k: fo.chain(fo.add_decayed_weights([1e-2, 1e-3][k]),
                                              fo.sgd(0.1)),
    "add_decayed_weights_scheduled": lambda k: fo.chain(
        fo.add_decayed_weights(SCHEDULES["linear"](k)), fo.sgd(0.1)),
    "masked": lambda k: fo.masked(fo.sgd([0.1, 0.2][k], 0.9), {"w": True, "b": False}),
    "inject_hyperparams": lambda k: fo.inject_hyperparams(fo.adam)([1e-3, 1e-2][k],
                                                                  b1=[0.9, 0.8][k]),
    "inject_hyperparams_schedule": lambda k: fo.inject_hyperparams(fo.sgd)(
        SCHEDULES["exponential"](k), momentum=[0.9, 0.6][k]),
    "chain_with_optax": lambda k: fo.chain(optax.clip(1.0), fo.adam([1e-3, 1e-2][k])),
    **{f"sgd_{name}": (lambda k, s=s: fo.sgd(s(k), momentum=0.9))
       for name, s in SCHEDULES.items()},
    **{f"adam_{name}": (lambda k, s=s: fo.adam(s(k))) for name, s in SCHEDULES.items()},
}

# Names in fnn.optim.__all__ that are not transformation factories (covered elsewhere).
NOT_FACTORIES = {"apply_updates", "global_norm", "init_empty_state", "hyperparams_of",
                 "with_hyperparams", "optimizer"}  # optimizer: the registry lookup
STEPS = 3


def test_every_factory_is_covered():
    def module_of(name):
        return getattr(getattr(fo, name), "__module__", "")

    schedules = {n for n in fo.__all__ if module_of(n) == "fnn.optim.schedules"}
    factories = {n for n in fo.__all__ if n[0].islower()} - NOT_FACTORIES - schedules
    covered = {n for case in OPTIMIZERS for n in factories if case.startswith(n)}
    assert factories - covered == set()
    assert len(schedules) == len(SCHEDULES) == 9


def problem(dtype):
    params = {"w": (jnp.arange(6.0).reshape(3, 2) / 7 - 0.3).astype(dtype),
              "b": jnp.array([0.3, -0.2], dtype)}
    grads = [jax.tree.map(lambda p, i=i: (jnp.sin(3 * p + i) + 0.1 * i).astype(dtype), params)
             for i in range(STEPS)]
    return params, grads


def run(update, params, grads, state):
    """STEPS updates (params fixed: the update rules read them); all updates and states."""
    out = []
    for g in grads:
        updates, state = update(g, state, params)
        out.append((updates, state))
    return out


def assert_bit_identical(ours, theirs):
    chex.assert_trees_all_equal_structs(ours, theirs)
    for a, b in zip(jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        assert a.dtype == b.dtype, (a.dtype, b.dtype)
        np.testing.assert_array_equal(np.asarray(a, np.float64), np.asarray(b, np.float64))


_RUNTIME_STEPS = {}


def runtime_update(opt, case):
    """The update with the hyperparameters as a jit ARGUMENT (law 2). One jitted step per
    case, built on the case's k = 0 instance: k = 1 passes its own numbers to the same
    program (law 3 checks that the two trace alike)."""
    if case not in _RUNTIME_STEPS:
        template = OPTIMIZERS[case](0)
        _RUNTIME_STEPS[case] = jax.jit(
            lambda h, g, s, p: with_hyperparams(template, h).update(g, s, p))
    step = _RUNTIME_STEPS[case]
    h = jax.tree.map(jnp.asarray, hyperparams_of(opt))
    return lambda g, s, p: step(h, g, s, p)


# XLA:CPU compiles a literal multiplier and a runtime one differently in one place: in
# ``u + mu * t`` after a learning-rate scaling (momentum applied to lr-scaled steps, as in
# rmsprop(momentum=...)), LLVM contracts the literal form into a fused multiply-add and not the
# runtime form, so the runtime program differs there by an ulp per step (a few
# after three steps). (Likewise XLA factors
# 0.5 * a + 0.5 * b into 0.5 * (a + b) when a decay rate is exactly 0.5, i.e. equal to its
# complement, which no case here uses.) Every other case is bit-identical.
CONTRACTED = {"rmsprop_bias_correction", "rmsprop_centered_momentum"}


def assert_equal_to_rounding(ours, theirs):
    chex.assert_trees_all_equal_dtypes(ours, theirs)
    chex.assert_trees_all_close(ours, theirs, rtol=1e-6, atol=0)


# Every case with its first numbers (k = 0); the optimizers (not the pieces, wrappers and
# schedules, built of the same operations) with their second ones too. Law 3 builds k = 1 of
# every case and checks it traces to k = 0's program.
FAMILIES = list(OPTIMIZERS)[:list(OPTIMIZERS).index("identity")]
LAWS_1_2_CASES = [(case, 0) for case in sorted(OPTIMIZERS)] + [(case, 1) for case in FAMILIES]


@pytest.mark.parametrize("case, k", LAWS_1_2_CASES)
def test_laws_1_and_2_bit_identical_float32(case, k):
    opt = OPTIMIZERS[case](k)
    params, grads = problem(jnp.float32)
    state = opt.init(params)
    reference = run(jax.jit(opt.update), params, grads, state)
    same = with_hyperparams(opt, hyperparams_of(opt))
    assert type(same) is type(opt)
    # law 1: the very same computation, equation for equation and literal for literal (so
    # bit-identical results without compiling it a second time)
    args = (grads[0], state, params)
    assert str(jax.make_jaxpr(same.update)(*args)) == str(jax.make_jaxpr(opt.update)(*args))
    runtime = run(runtime_update(opt, case), params, grads, state)
    if case in CONTRACTED:
        assert_equal_to_rounding(runtime, reference)
    else:
        assert_bit_identical(runtime, reference)


@pytest.mark.parametrize("case", ["sgd_nesterov", "adam", "nadam", "adamw", "rmsprop",
                                  "adagrad", "adadelta_decay", "amsgrad", "adamax", "lion",
                                  "clip_by_global_norm", "adam_warmup_cosine", "sgd_piecewise",
                                  "sgd_exponential", "sgd_inverse_time", "inject_hyperparams"])
def test_law_2_bit_identical_float64(case, x64):
    opt = OPTIMIZERS[case](0)
    params, grads = problem(jnp.float64)
    state = opt.init(params)
    reference = run(jax.jit(opt.update), params, grads, state)
    assert_bit_identical(run(runtime_update(opt, case), params, grads, state), reference)


@pytest.mark.parametrize("case", ["sgd_momentum", "adam", "adamw", "lion", "rmsprop",
                                  "adam_cosine", "clip"])
def test_law_2_bfloat16_keeps_its_dtype(case):
    opt = OPTIMIZERS[case](0)
    params, grads = problem(jnp.bfloat16)
    state = opt.init(params)
    reference = run(jax.jit(opt.update), params, grads, state)
    ours = run(runtime_update(opt, case), params, grads, state)
    chex.assert_trees_all_equal_dtypes(ours, reference)
    chex.assert_trees_all_close(jax.tree.map(lambda x: x.astype(jnp.float32), ours),
                                jax.tree.map(lambda x: x.astype(jnp.float32), reference),
                                rtol=1e-2, atol=1e-3)
    assert jax.tree.leaves(ours[-1][0])[0].dtype == jnp.bfloat16


def jaxpr_text(opt, params, grads):
    state = opt.init(params)
    h = jax.tree.map(jnp.asarray, hyperparams_of(opt))
    return str(jax.make_jaxpr(lambda h, g, s, p: with_hyperparams(opt, h).update(g, s, p))(
        h, grads[0], state, params))


@pytest.mark.parametrize("case", sorted(OPTIMIZERS))
def test_law_3_other_numbers_same_program(case):
    params, grads = problem(jnp.float32)
    first, second = OPTIMIZERS[case](0), OPTIMIZERS[case](1)
    assert jax.tree.structure(hyperparams_of(first)) == jax.tree.structure(hyperparams_of(second))
    if case not in ("identity", "chain_with_optax", "inject_hyperparams"):
        assert jax.tree.leaves(hyperparams_of(first)) != jax.tree.leaves(hyperparams_of(second))
    assert jaxpr_text(first, params, grads) == jaxpr_text(second, params, grads)


def test_law_3_a_learning_rate_loop_traces_once():
    params, grads = problem(jnp.float32)

    @jax.jit
    @chex.assert_max_traces(n=1)
    def step(opt_hyperparams, g, s, p):
        return with_hyperparams(template, opt_hyperparams).update(g, s, p)

    template = fo.adam(1e-3)
    results = []
    for lr in (1e-3, 1e-2, 1e-1):
        opt = fo.adam(lr)
        state = opt.init(params)
        updates, _ = step(jax.tree.map(jnp.asarray, hyperparams_of(opt)), grads[0], state, params)
        reference, _ = jax.jit(opt.update)(grads[0], state, params)
        assert_bit_identical(updates, reference)
        results.append(updates["w"])
    # Adam's first step is -lr * sign(g) (up to eps): the learning rate really is the argument.
    np.testing.assert_allclose(np.abs(np.asarray(results[2])), 0.1, rtol=1e-5)
    np.testing.assert_allclose(np.abs(np.asarray(results[0])), 1e-3, rtol=1e-5)


@pytest.mark.parametrize("case", ["sgd_momentum", "adam", "adamw_masked",
                                  "rmsprop_bias_correction", "inject_hyperparams_schedule",
                                  "adam_warmup_cosine", "lion"])
def test_law_4_state_and_optax_shape_unchanged(case):
    opt = OPTIMIZERS[case](0)
    params, grads = problem(jnp.float32)
    rebuilt = with_hyperparams(opt, jax.tree.map(jnp.asarray, hyperparams_of(opt)))
    assert isinstance(opt, tuple) and len(opt) == 2 and opt._fields == ("init", "update")
    init, update = rebuilt
    chex.assert_trees_all_equal(init(params), opt.init(params))
    inside_optax = optax.chain(opt, optax.scale(1.0))
    updates, _ = inside_optax.update(grads[0], inside_optax.init(params), params)
    expected, _ = opt.update(grads[0], opt.init(params), params)
    assert_bit_identical(updates, expected)


def test_the_tree_holds_every_number_with_host_derived_complements():
    h = hyperparams_of(fo.adam(1e-3, b1=0.9, b2=0.999, eps=1e-8))
    assert h == ({"b1": Decay(0.9, 1 - 0.9), "b2": Decay(0.999, 1 - 0.999), "eps": 1e-8,
                  "eps_root": 0.0}, {"step_size": -1e-3})
    assert hyperparams_of(fo.sgd(0.1, momentum=0.9)) == ({"decay": 0.9}, {"step_size": -0.1})
    assert hyperparams_of(fo.sgd(0.1)) == ({}, {"step_size": -0.1})
    wd = hyperparams_of(fo.adamw(1e-3, weight_decay=0.05, mask={"w": True}))[1]
    assert wd == ({"weight_decay": 0.05},)
    assert hyperparams_of(fo.cosine_decay_schedule(0.5, 10, alpha=0.25)) == {
        "init_value": 0.5, "alpha": 0.25, "one_minus_alpha": 0.75}
    assert hyperparams_of(fo.piecewise_constant_schedule(1.0, {5: 0.5, 2: 0.1})) == {
        "init_value": 1.0, "scales": (0.1, 0.5)}


def test_zero_weight_decay_and_penalties_are_structure():
    assert hyperparams_of(fo.add_decayed_weights(0.0)) == {}
    assert hyperparams_of(fo.add_decayed_weights(1e-4)) == {"weight_decay": 1e-4}


def test_a_schedule_is_a_runtime_function_of_its_numbers():
    schedule = fo.linear_schedule(1.0, 0.0, 10)
    assert isinstance(schedule, HyperparamFunction)
    halved = with_hyperparams(schedule, {"span": 0.5, "end_value": 0.0})
    assert float(halved(5)) == 0.25 and float(schedule(5)) == 0.5
    traced = jax.jit(lambda h, t: with_hyperparams(schedule, h)(t))
    assert float(traced({"span": jnp.asarray(2.0), "end_value": jnp.asarray(1.0)}, 5)) == 2.0


def test_foreign_objects_have_no_hyperparameters():
    opt = optax.adam(1e-3)
    assert hyperparams_of(opt) == {} and with_hyperparams(opt, {}) is opt
    fn = lambda count: 0.1  # noqa: E731
    assert hyperparams_of(fn) == {} and with_hyperparams(fn, {}) is fn
    assert hyperparams_of(0.1) == {}
    assert hyperparams_of(fo.chain(optax.sgd(0.1), fo.scale(2.0))) == ({}, {"step_size": 2.0})


def test_a_tree_of_another_structure_is_refused():
    with pytest.raises(ValueError, match=r"with_hyperparams: tree must have the structure"):
        with_hyperparams(fo.adam(1e-3), {"learning_rate": 0.1})
    with pytest.raises(ValueError, match=r"with_hyperparams: tree must have the structure"):
        with_hyperparams(optax.adam(1e-3), {"learning_rate": 0.1})


# ---- objectives --------------------------------------------------------------------------

def objective_problem():
    net = fnn.serial(fnn.Dense(4), fnn.relu, fnn.Dense(3))
    params, state = net.init(jax.random.key(0), (5,))
    x = jax.random.normal(jax.random.key(1), (8, 5))
    y = jnp.arange(8) % 3
    return net, params, state, (x, y)


@pytest.mark.parametrize("penalties", [{}, {"l2": 1e-3}, {"l1": 1e-4}, {"l2": 1e-2, "l1": 1e-3}])
def test_supervised_penalties_are_runtime_values(penalties):
    net, params, state, batch = objective_problem()
    objective = fnn.supervised(net, **penalties)
    assert hyperparams_of(objective) == penalties
    rebuilt = with_hyperparams(objective, hyperparams_of(objective))
    assert rebuilt.net is net and rebuilt.check_data is objective.check_data

    def value_and_grad(obj):
        return jax.value_and_grad(lambda p: obj(p, state, batch, None, False)[0])

    reference = jax.jit(value_and_grad(objective))(params)
    lifted = jax.jit(lambda h, p: value_and_grad(with_hyperparams(objective, h))(p))
    assert_bit_identical(lifted(jax.tree.map(jnp.asarray, penalties), params), reference)


def test_supervised_other_penalty_weights_same_program():
    net, params, state, batch = objective_problem()

    def text(objective):
        h = jax.tree.map(jnp.asarray, hyperparams_of(objective))
        return str(jax.make_jaxpr(lambda h, p: with_hyperparams(objective, h)(
            p, state, batch, None, False))(h, params))

    assert text(fnn.supervised(net, l2=1e-3)) == text(fnn.supervised(net, l2=0.5))
    assert text(fnn.supervised(net, l2=1e-3)) != text(fnn.supervised(net))
    # The l2 term really is 1/2 l2 sum w^2 with the runtime l2.
    objective = fnn.supervised(net, l2=1.0)
    loss = jax.jit(lambda h, p: with_hyperparams(objective, h)(p, state, batch, None, False))
    plain = fnn.supervised(net)(params, state, batch, None, False)[0]
    weights = sum(float(jnp.sum(params[k]["w"] ** 2)) for k in params if "w" in params[k])
    np.testing.assert_allclose(float(loss({"l2": jnp.asarray(0.2)}, params)[0]),
                               float(plain) + 0.2 * 0.5 * weights, rtol=1e-6)
