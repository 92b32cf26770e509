"""fnn.optim against optax: same trajectories, step by step, for every optimizer, schedule and
transform piece.

Each case is a function of the module (``fnn.optim`` or ``optax``), so the very same call
builds both sides: that also checks fnn's names, arguments and defaults. Both sides train the
params of a small MLP for 200 steps on identical seeded gradients in a jitted ``lax.scan``;
the stacked parameter trajectories must agree after every step (every case in float64, one
per family in float32: FLOAT32_CASES). To keep compilation cheap,
all cases of one dtype are compiled together (one program for fnn, one for optax) and each
test reads its own trajectories. fnn runs under the suite's strict dtype promotion; optax
(the reference) needs standard promotion.

This file is the one place that checks fnn's optimizers against optax's numbers; the other
optimizer tests (torch semantics, compare, the optimizers experiment) rely on it.
"""
import concurrent.futures

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import fnn.optim as fo

STEPS = 200
MLP_SHAPES = {"dense_0": {"w": (3, 5), "b": (5,)}, "dense_1": {"w": (5, 2), "b": (2,)}}
# Params are of order 1, so atol is the same bound relative to the parameter scale.
TOLERANCE = {"float32": dict(rtol=1e-5, atol=1e-5), "float64": dict(rtol=1e-12, atol=1e-12)}


def weights_only(params):
    """Mask selecting the weight matrices (no decay on biases)."""
    return jax.tree.map(lambda x: x.ndim > 1, params)


def mlp_problem(dtype, steps=STEPS, shapes=MLP_SHAPES, seed=0):
    """Random params and a [steps, ...] stack of random gradients, per leaf."""
    rng = np.random.default_rng(seed)
    is_shape = lambda x: isinstance(x, tuple)
    params = jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s), dtype), shapes,
                          is_leaf=is_shape)
    grads = jax.tree.map(lambda s: jnp.asarray(rng.normal(size=(steps, *s)), dtype), shapes,
                         is_leaf=is_shape)
    return params, grads


def trajectory(optimizer, apply_updates, params, grads):
    """Parameters after every step of training on the stacked ``grads``."""

    def step(carry, g):
        params, state = carry
        updates, state = optimizer.update(g, state, params)
        params = apply_updates(params, updates)
        return (params, state), params

    return jax.lax.scan(step, (params, optimizer.init(params)), grads)[1]


def all_trajectories(module, apply_updates, cases, params, grads):
    """{case: trajectory} for every case, built from ``module``, compiled as one program."""
    run = lambda p, g: {name: trajectory(make(module), apply_updates, p, g)
                        for name, make in cases.items()}
    return jax.device_get(jax.jit(run)(params, grads))


def assert_trees_close(ours, theirs, rtol, atol):
    """Same structure, same dtypes, values equal within tolerance, leaf by leaf."""
    assert jax.tree.structure(ours) == jax.tree.structure(theirs)
    paths = [jax.tree_util.keystr(path) for path, _ in jax.tree_util.tree_leaves_with_path(ours)]
    for path, a, b in zip(paths, jax.tree.leaves(ours), jax.tree.leaves(theirs)):
        assert a.dtype == b.dtype, (path, a.dtype, b.dtype)
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=rtol, atol=atol,
                                   err_msg=path)


OPTIMIZERS = {
    "sgd": lambda m: m.sgd(0.05),
    "sgd_momentum": lambda m: m.sgd(0.05, momentum=0.9),
    "sgd_nesterov": lambda m: m.sgd(0.05, momentum=0.9, nesterov=True),
    "adagrad": lambda m: m.adagrad(0.1),
    "adagrad_zero_start": lambda m: m.adagrad(0.1, initial_accumulator_value=0.0, eps=1e-10),
    "rmsprop": lambda m: m.rmsprop(0.01),
    "rmsprop_eps_outside": lambda m: m.rmsprop(0.01, decay=0.99, eps_in_sqrt=False),
    "rmsprop_bias_correction": lambda m: m.rmsprop(0.01, bias_correction=True),
    "rmsprop_centered_momentum": lambda m: m.rmsprop(0.01, centered=True, momentum=0.9),
    "rmsprop_schedule_momentum": lambda m: m.rmsprop(
        m.piecewise_constant_schedule(0.01, {50: 0.1}), decay=0.99, eps_in_sqrt=False,
        momentum=0.9),
    "rmsprop_everything": lambda m: m.rmsprop(
        0.01, decay=0.95, eps=1e-6, initial_scale=0.1, eps_in_sqrt=False, centered=True,
        momentum=0.9, nesterov=True, bias_correction=True),
    "adadelta": lambda m: m.adadelta(),
    "adadelta_decay_mask": lambda m: m.adadelta(0.5, rho=0.95, eps=1e-5, weight_decay=0.1,
                                                weight_decay_mask=weights_only),
    "adam": lambda m: m.adam(0.01),
    "adam_eps_root": lambda m: m.adam(0.01, b1=0.8, b2=0.99, eps=1e-6, eps_root=1e-8),
    "nadam": lambda m: m.nadam(0.01),
    "adamw": lambda m: m.adamw(0.01, weight_decay=0.1),
    "adamw_mask_nesterov": lambda m: m.adamw(0.01, weight_decay=0.1, mask=weights_only,
                                             nesterov=True),
    "amsgrad": lambda m: m.amsgrad(0.01),
    "amsgrad_paper": lambda m: m.amsgrad(0.01, bias_correction_mu=False,
                                         bias_correction_nu=False),
    "adamax": lambda m: m.adamax(0.01),
    "lion": lambda m: m.lion(0.001),
    "lion_mask": lambda m: m.lion(0.001, b1=0.95, b2=0.98, weight_decay=0.1, mask=weights_only),
}

PIECES = {
    "identity": lambda m: m.chain(m.identity(), m.sgd(0.05)),
    "scale": lambda m: m.chain(m.scale(0.5), m.sgd(0.05)),
    "scale_by_learning_rate_no_flip": lambda m: m.chain(
        m.scale_by_learning_rate(0.05, flip_sign=False), m.scale(-1.0)),
    "scale_by_schedule": lambda m: m.chain(
        m.scale_by_schedule(m.exponential_decay(-0.1, 10, 0.9)), m.identity()),
    "trace": lambda m: m.chain(m.trace(0.5), m.scale(-0.05)),
    "clip": lambda m: m.chain(m.clip(0.5), m.sgd(0.05)),
    "clip_by_global_norm": lambda m: m.chain(m.clip_by_global_norm(2.0),
                                             m.sgd(0.05, momentum=0.9)),
    "add_decayed_weights": lambda m: m.chain(m.add_decayed_weights(0.1), m.sgd(0.05)),
    "add_decayed_weights_mask": lambda m: m.chain(
        m.add_decayed_weights(0.1, mask=weights_only), m.sgd(0.05)),
    "add_decayed_weights_schedule": lambda m: m.chain(
        m.add_decayed_weights(m.linear_schedule(0.1, 0.0, 100)), m.sgd(0.05)),
    "masked_trace": lambda m: m.chain(m.masked(m.trace(0.9), weights_only), m.sgd(0.05)),
    "masked_prefix_mask": lambda m: m.chain(
        m.masked(m.scale_by_adam(), {"dense_0": True, "dense_1": False}),
        m.sgd(0.01)),
    "scale_by_rss": lambda m: m.chain(m.scale_by_rss(), m.scale(-0.1)),
    "scale_by_rms": lambda m: m.chain(m.scale_by_rms(), m.scale(-0.01)),
    "scale_by_stddev": lambda m: m.chain(m.scale_by_stddev(), m.scale(-0.01)),
    "scale_by_adadelta": lambda m: m.chain(m.scale_by_adadelta(), m.scale(-1.0)),
    "scale_by_adam": lambda m: m.chain(m.scale_by_adam(), m.scale(-0.01)),
    "scale_by_amsgrad": lambda m: m.chain(m.scale_by_amsgrad(), m.scale(-0.01)),
    "scale_by_adamax": lambda m: m.chain(m.scale_by_adamax(), m.scale(-0.01)),
    "scale_by_lion_smooth": lambda m: m.chain(m.scale_by_lion(mode="smooth", smooth_beta=2.0),
                                              m.scale(-0.001)),
    "scale_by_lion_refined": lambda m: m.chain(m.scale_by_lion(mode="refined"), m.scale(-0.001)),
    "inject_hyperparams": lambda m: m.inject_hyperparams(m.adam)(learning_rate=0.01, b1=0.8),
    "inject_hyperparams_schedule": lambda m: m.inject_hyperparams(m.sgd)(
        learning_rate=m.cosine_decay_schedule(0.1, 150), momentum=0.9),
    "inject_hyperparams_static_mask": lambda m: m.inject_hyperparams(
        m.adamw, static_args="mask")(learning_rate=0.01, weight_decay=0.1, mask=weights_only),
}

# Each schedule drives the learning rate of SGD with momentum (and one drives Adam).
SCHEDULES = {
    "constant": lambda m: m.constant_schedule(0.05),
    "linear": lambda m: m.linear_schedule(0.1, 0.001, 150, transition_begin=20),
    "polynomial": lambda m: m.polynomial_schedule(0.1, 0.001, 2.0, 150, transition_begin=10),
    "exponential": lambda m: m.exponential_decay(0.1, 10, 0.8, transition_begin=5),
    "exponential_staircase_floor": lambda m: m.exponential_decay(0.1, 10, 0.8, staircase=True,
                                                                 end_value=0.02),
    "exponential_growth_ceiling": lambda m: m.exponential_decay(0.001, 20, 1.5,
                                                                end_value=0.05),
    "piecewise_constant": lambda m: m.piecewise_constant_schedule(0.1, {50: 0.5, 120: 0.1}),
    "cosine": lambda m: m.cosine_decay_schedule(0.1, 150, alpha=0.05),
    "cosine_exponent": lambda m: m.cosine_decay_schedule(0.1, 150, exponent=2.0),
    "warmup_cosine": lambda m: m.warmup_cosine_decay_schedule(0.0, 0.1, 20, 180,
                                                              end_value=0.001),
    "join": lambda m: m.join_schedules(
        [m.constant_schedule(0.1), m.linear_schedule(0.1, 0.01, 50),
         m.exponential_decay(0.01, 10, 0.9)], [60, 110]),
}
SCHEDULE_CASES = {f"sgd_{name}": (lambda m, s=s: m.sgd(s(m), momentum=0.9))
                  for name, s in SCHEDULES.items()}
SCHEDULE_CASES["adam_warmup_cosine"] = lambda m: m.adam(SCHEDULES["warmup_cosine"](m))

ALL_CASES = {**OPTIMIZERS, **PIECES, **SCHEDULE_CASES}
# Every case runs in float64 (the tight check of the formulas). float32 runs the same code
# paths with the dtype's rounding: one case per optimizer family (with its richest options),
# a wrapper, a mask and schedules, which keeps the float32 program (its compilation is most of
# this file's cold cost) a quarter of the size.
FLOAT32_CASES = ["sgd_nesterov", "adagrad_zero_start", "rmsprop_everything",
                 "adadelta_decay_mask", "adam_eps_root", "nadam", "adamw_mask_nesterov",
                 "amsgrad_paper", "adamax", "lion_mask", "clip_by_global_norm",
                 "scale_by_stddev", "scale_by_lion_smooth", "inject_hyperparams_static_mask",
                 "sgd_exponential_staircase_floor", "sgd_join", "adam_warmup_cosine"]
CASES = {"float32": FLOAT32_CASES, "float64": sorted(ALL_CASES)}


@pytest.fixture(scope="module")
def trajectories():
    """dtype -> (fnn trajectories, optax trajectories), computed once per dtype; the two
    programs compile in parallel threads (JAX config contexts are per thread)."""
    computed = {}

    def run(module, dtype):
        promotion = "strict" if module is fo else "standard"
        with jax.enable_x64(dtype == "float64"), jax.numpy_dtype_promotion(promotion):
            params, grads = mlp_problem(dtype)
            cases = {name: ALL_CASES[name] for name in CASES[dtype]}
            return all_trajectories(module, module.apply_updates, cases, params, grads)

    def get(dtype):
        if dtype not in computed:
            with concurrent.futures.ThreadPoolExecutor(max_workers=2) as pool:
                ours, theirs = pool.map(run, [fo, optax], [dtype, dtype])
            computed[dtype] = ours, theirs
        return computed[dtype]

    return get


# the module fixture computes a dtype's trajectories once per worker: a worker per dtype
@pytest.mark.parametrize("case, dtype", [
    pytest.param(c, d, marks=pytest.mark.xdist_group(f"optim_trajectories_{d}"))
    for d in ("float32", "float64") for c in CASES[d]])
def test_trajectory_matches_optax(case, dtype, trajectories):
    ours, theirs = trajectories(dtype)
    assert_trees_close(ours[case], theirs[case], **TOLERANCE[dtype])
    assert ours[case]["dense_0"]["w"].shape == (STEPS, 3, 5)  # every step was compared
    assert ours[case]["dense_0"]["w"].dtype == dtype


# ---- property tests: random hyperparameters, a few steps, float64, eager -------------------

# two leaf shapes (not four): half the eager programs each op dispatches to
SMALL_SHAPES = {"dense_0": {"w": (2, 2), "b": (2,)}, "dense_1": {"w": (2, 2), "b": (2,)}}
PROPERTY_STEPS = 5

learning_rates = st.floats(1e-4, 1.0)
decays = st.floats(0.0, 0.999)
epsilons = st.floats(1e-10, 1e-3)
weight_decays = st.floats(0.0, 0.5)
momenta = st.none() | st.floats(0.0, 0.99)


def assert_same_steps(make):
    """A few eager steps of fnn and optax from the same start, compared in float64."""
    with jax.enable_x64(True):
        params, grads = mlp_problem("float64", steps=PROPERTY_STEPS, shapes=SMALL_SHAPES, seed=1)
        ours, theirs = make(fo), make(optax)
        ours_state, theirs_state = ours.init(params), theirs.init(params)
        ours_params = theirs_params = params
        for t in range(PROPERTY_STEPS):
            g = jax.tree.map(lambda x: x[t], grads)
            updates, ours_state = ours.update(g, ours_state, ours_params)
            ours_params = fo.apply_updates(ours_params, updates)
            with jax.numpy_dtype_promotion("standard"):
                updates, theirs_state = theirs.update(g, theirs_state, theirs_params)
                theirs_params = optax.apply_updates(theirs_params, updates)
            assert_trees_close(ours_params, theirs_params, **TOLERANCE["float64"])


@settings(max_examples=8, deadline=None)
@given(name=st.sampled_from(["adam", "nadam", "amsgrad", "adamax"]), lr=learning_rates,
       b1=decays, b2=decays, eps=epsilons)
def test_adam_family_property(name, lr, b1, b2, eps):
    assert_same_steps(lambda m: getattr(m, name)(lr, b1=b1, b2=b2, eps=eps))


@settings(max_examples=8, deadline=None)
@given(lr=learning_rates, b1=decays, b2=decays, eps=epsilons, weight_decay=weight_decays,
       nesterov=st.booleans())
def test_adamw_property(lr, b1, b2, eps, weight_decay, nesterov):
    assert_same_steps(lambda m: m.adamw(lr, b1=b1, b2=b2, eps=eps, weight_decay=weight_decay,
                                        mask=weights_only, nesterov=nesterov))


@settings(max_examples=8, deadline=None)
@given(lr=learning_rates, momentum=momenta, nesterov=st.booleans())
def test_sgd_property(lr, momentum, nesterov):
    assert_same_steps(lambda m: m.sgd(lr, momentum=momentum, nesterov=nesterov))


@settings(max_examples=8, deadline=None)
@given(lr=learning_rates, decay=decays, eps=epsilons, momentum=momenta,
       centered=st.booleans(), eps_in_sqrt=st.booleans(), bias_correction=st.booleans())
def test_rmsprop_property(lr, decay, eps, momentum, centered, eps_in_sqrt, bias_correction):
    assert_same_steps(lambda m: m.rmsprop(lr, decay=decay, eps=eps, momentum=momentum,
                                          centered=centered, eps_in_sqrt=eps_in_sqrt,
                                          bias_correction=bias_correction))


@settings(max_examples=8, deadline=None)
@given(lr=learning_rates, initial=st.floats(0.0, 1.0), eps=epsilons)
def test_adagrad_property(lr, initial, eps):
    assert_same_steps(lambda m: m.adagrad(lr, initial_accumulator_value=initial, eps=eps))


@settings(max_examples=8, deadline=None)
@given(lr=learning_rates, rho=decays, eps=epsilons, weight_decay=weight_decays)
def test_adadelta_property(lr, rho, eps, weight_decay):
    assert_same_steps(lambda m: m.adadelta(lr, rho=rho, eps=eps, weight_decay=weight_decay))


@settings(max_examples=8, deadline=None)
@given(lr=learning_rates, b1=decays, b2=decays, weight_decay=weight_decays)
def test_lion_property(lr, b1, b2, weight_decay):
    assert_same_steps(lambda m: m.lion(lr, b1=b1, b2=b2, weight_decay=weight_decay))


@settings(max_examples=8, deadline=None)
@given(weight_decay=weight_decays, max_norm=st.floats(0.01, 10.0), max_delta=st.floats(0, 2.0),
       lr=learning_rates, momentum=momenta)
def test_clipping_and_weight_decay_property(weight_decay, max_norm, max_delta, lr, momentum):
    assert_same_steps(lambda m: m.chain(m.clip(max_delta), m.clip_by_global_norm(max_norm),
                                        m.add_decayed_weights(weight_decay),
                                        m.sgd(lr, momentum=momentum)))


def test_the_optax_table_covers_every_registered_optimizer():
    """The registry (fnn.optim.OPTIMIZERS) is the one list of optimizers: a new one there
    must get a trajectory case here."""
    import fnn.optim

    assert set(fnn.optim.OPTIMIZERS) <= set(OPTIMIZERS)
    assert all(any(case == name or case.startswith(name + "_") for case in FLOAT32_CASES)
               for name in fnn.optim.OPTIMIZERS)  # each also in float32
