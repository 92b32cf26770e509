"""fnn.optim and optax are interchangeable: pieces mix in either's chain and training loop;
signatures agree with optax's; every leaf keeps its dtype in mixed-precision trees."""
import inspect

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import fnn.optim as fo

PARAMS_SHAPES = {"dense_0": {"w": (3, 5), "b": (5,)}, "dense_1": {"w": (5, 2), "b": (2,)}}
STEPS = 30


def weights_only(params):
    return jax.tree.map(lambda x: x.ndim > 1, params)


@pytest.fixture
def problem():
    rng = np.random.default_rng(0)
    is_shape = lambda x: isinstance(x, tuple)
    params = jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s), jnp.float32), PARAMS_SHAPES,
                          is_leaf=is_shape)
    grads = [jax.tree.map(lambda s: jnp.asarray(rng.normal(size=s), jnp.float32), PARAMS_SHAPES,
                          is_leaf=is_shape) for _ in range(STEPS)]
    return params, grads


def train(optimizer, apply_updates, params, grads, before_step=None):
    """A plain training loop with a jitted step; returns the final params."""
    step = jax.jit(lambda g, s, p: optimizer.update(g, s, p))
    state = optimizer.init(params)
    for t, g in enumerate(grads):
        if before_step is not None:
            before_step(t, state)
        updates, state = step(g, state, params)
        params = apply_updates(params, updates)
    return params


def assert_close(a, b):
    jax.tree.map(lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-6, atol=1e-7), a, b)


# Interop runs optax code, so these tests use standard dtype promotion throughout.
standard_promotion = pytest.mark.usefixtures("standard_dtype_promotion")


@pytest.fixture
def standard_dtype_promotion():
    with jax.numpy_dtype_promotion("standard"):
        yield


@standard_promotion
def test_fnn_optimizer_in_an_optax_training_loop(problem):
    # the numbers against optax's adamw are test_optim_equivalence's; here the loop changes
    params, grads = problem
    optimizer = fo.adamw(0.01, weight_decay=0.1, mask=weights_only)
    in_optax_loop = train(optimizer, optax.apply_updates, params, grads)
    assert_close(in_optax_loop, train(optimizer, fo.apply_updates, params, grads))
    assert not np.allclose(in_optax_loop["dense_0"]["w"], params["dense_0"]["w"])


@standard_promotion
def test_fnn_piece_inside_optax_chain(problem):
    params, grads = problem
    mixed = optax.chain(fo.clip(1.0), optax.sgd(0.1))
    pure = optax.chain(optax.clip(1.0), optax.sgd(0.1))
    assert_close(train(mixed, optax.apply_updates, params, grads),
                 train(pure, optax.apply_updates, params, grads))


@standard_promotion
def test_optax_optimizer_through_fnn_chain_and_apply_updates(problem):
    params, grads = problem
    mixed = fo.chain(optax.clip_by_global_norm(1.0), optax.adam(0.01))
    pure = optax.chain(optax.clip_by_global_norm(1.0), optax.adam(0.01))
    assert_close(train(mixed, fo.apply_updates, params, grads),
                 train(pure, optax.apply_updates, params, grads))


@standard_promotion
def test_fnn_masked_wraps_an_optax_transform(problem):
    params, grads = problem
    ours = fo.chain(fo.masked(optax.scale_by_adam(), weights_only), fo.sgd(0.1))
    theirs = optax.chain(optax.masked(optax.scale_by_adam(), weights_only), optax.sgd(0.1))
    assert_close(train(ours, fo.apply_updates, params, grads),
                 train(theirs, optax.apply_updates, params, grads))


@standard_promotion
def test_inject_hyperparams_across_libraries(problem):
    """optax's inject_hyperparams drives an fnn optimizer and vice versa."""
    params, grads = problem
    reference = train(optax.inject_hyperparams(optax.adam)(learning_rate=0.01), optax.apply_updates,
                      params, grads)
    assert_close(train(optax.inject_hyperparams(fo.adam)(learning_rate=0.01),
                       optax.apply_updates, params, grads), reference)
    assert_close(train(fo.inject_hyperparams(optax.adam)(learning_rate=0.01), fo.apply_updates,
                       params, grads), reference)


def test_changing_the_learning_rate_during_training(problem):
    """Assigning state.hyperparams['learning_rate'] takes effect from the next step on, exactly
    as in optax."""

    def halve_at_10(t, state):
        if t == 10:
            state.hyperparams["learning_rate"] = state.hyperparams["learning_rate"] / 2

    params, grads = problem
    ours = fo.inject_hyperparams(fo.sgd)(learning_rate=0.1, momentum=0.9)
    changed = train(ours, fo.apply_updates, params, grads, before_step=halve_at_10)
    with jax.numpy_dtype_promotion("standard"):
        theirs = optax.inject_hyperparams(optax.sgd)(learning_rate=0.1, momentum=0.9)
        expected = train(theirs, optax.apply_updates, params, grads, before_step=halve_at_10)
    assert_close(changed, expected)
    unchanged = train(ours, fo.apply_updates, params, grads)
    assert not np.allclose(unchanged["dense_0"]["w"], changed["dense_0"]["w"])
    state = ours.init(params)
    assert set(state.hyperparams) == {"learning_rate", "momentum"}
    assert state.hyperparams["learning_rate"].dtype == jnp.float32


# ---- signatures ------------------------------------------------------------------------------

# Known, deliberate differences: optax.nadam is functools.partial(adam, nesterov=True) and so
# exposes a `nesterov` keyword; optax.masked has `mask_compatible_extra_args` for extra
# update arguments, which fnn transforms do not take.
SIGNATURE_EXCEPTIONS = {"nadam": {"nesterov"}, "masked": {"mask_compatible_extra_args"}}


def shared_functions():
    return sorted(name for name in fo.__all__
                  if hasattr(optax, name) and inspect.isfunction(getattr(fo, name)))


@pytest.mark.parametrize("name", shared_functions())
def test_signature_matches_optax(name):
    def parameters(function, skip=()):
        return [(p.name, p.kind, p.default)
                for p in inspect.signature(function).parameters.values() if p.name not in skip]

    skip = SIGNATURE_EXCEPTIONS.get(name, set())
    assert parameters(getattr(fo, name)) == parameters(getattr(optax, name), skip)


def test_every_optax_counterpart_is_covered():
    assert len(shared_functions()) >= 40


# ---- dtypes ----------------------------------------------------------------------------------

MIXED_OPTIMIZERS = {
    "sgd": lambda m: m.sgd(0.1, momentum=0.9, nesterov=True),
    "adagrad": lambda m: m.adagrad(0.1),
    "rmsprop": lambda m: m.rmsprop(0.01, centered=True, momentum=0.9, bias_correction=True),
    "adadelta": lambda m: m.adadelta(weight_decay=0.1),
    "adam": lambda m: m.adam(0.01),
    "nadam": lambda m: m.nadam(0.01),
    "adamw": lambda m: m.adamw(0.01, mask=weights_only),
    "amsgrad": lambda m: m.amsgrad(0.01),
    "adamax": lambda m: m.adamax(0.01),
    "lion": lambda m: m.lion(0.001),
    "clipping": lambda m: m.chain(m.clip(0.5), m.clip_by_global_norm(1.0), m.sgd(0.1)),
    "scheduled": lambda m: m.chain(m.add_decayed_weights(m.linear_schedule(0.1, 0.0, 10)),
                                   m.adam(m.warmup_cosine_decay_schedule(0.0, 0.1, 2, 10))),
}
MIXED_TOLERANCE = {"float64": 1e-12, "float32": 1e-5, "bfloat16": 1e-2}


@pytest.mark.parametrize("name", sorted(MIXED_OPTIMIZERS))
def test_mixed_dtype_tree_keeps_each_leaf_dtype(name, x64):
    rng = np.random.default_rng(0)
    params = {"dense_0": {"w": jnp.asarray(rng.normal(size=(3, 4)), jnp.bfloat16),
                          "b": jnp.asarray(rng.normal(size=(4,)), jnp.float32)},
              "dense_1": {"w": jnp.asarray(rng.normal(size=(4, 2)), jnp.float64),
                          "b": jnp.asarray(rng.normal(size=(2,)), jnp.bfloat16)}}
    dtypes = jax.tree.map(lambda x: x.dtype, params)
    make = MIXED_OPTIMIZERS[name]
    ours, theirs = make(fo), make(optax)
    ours_state, theirs_state = ours.init(params), theirs.init(params)
    ours_params = theirs_params = params
    for _ in range(3):
        grads = jax.tree.map(lambda p: jnp.asarray(rng.normal(size=p.shape), p.dtype), params)
        updates, ours_state = jax.jit(ours.update)(grads, ours_state, ours_params)
        assert jax.tree.map(lambda u: u.dtype, updates) == dtypes
        ours_params = fo.apply_updates(ours_params, updates)
        assert jax.tree.map(lambda p: p.dtype, ours_params) == dtypes
        with jax.numpy_dtype_promotion("standard"):
            updates, theirs_state = jax.jit(theirs.update)(grads, theirs_state, theirs_params)
            theirs_params = optax.apply_updates(theirs_params, updates)
    for a, b in zip(jax.tree.leaves(ours_params), jax.tree.leaves(theirs_params)):
        tolerance = MIXED_TOLERANCE[str(a.dtype)]
        np.testing.assert_allclose(np.asarray(a, np.float64), np.asarray(b, np.float64),
                                   rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize("make, field", [
    (lambda m: m.sgd(0.1, momentum=0.9, accumulator_dtype=jnp.bfloat16), lambda s: s[0].trace),
    (lambda m: m.adam(0.01, mu_dtype=jnp.bfloat16), lambda s: s[0].mu),
    (lambda m: m.amsgrad(0.01, mu_dtype=jnp.bfloat16), lambda s: s[0].mu),
    (lambda m: m.lion(0.001, mu_dtype=jnp.bfloat16), lambda s: s[0].mu),
], ids=["sgd_accumulator_dtype", "adam_mu_dtype", "amsgrad_mu_dtype", "lion_mu_dtype"])
def test_state_dtype_options(problem, make, field):
    """A bfloat16 moment with float32 params: state stays bfloat16, updates float32, and the
    numbers match optax."""
    params, grads = problem
    optimizer = make(fo)
    state = optimizer.init(params)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(field(state)))
    updates, state = jax.jit(optimizer.update)(grads[0], state, params)
    assert all(x.dtype == jnp.bfloat16 for x in jax.tree.leaves(field(state)))
    assert all(u.dtype == jnp.float32 for u in jax.tree.leaves(updates))
    ours = train(optimizer, fo.apply_updates, params, grads)
    with jax.numpy_dtype_promotion("standard"):
        theirs = train(make(optax), optax.apply_updates, params, grads)
    assert_close(ours, theirs)


def test_apply_updates_casts_back_and_keeps_none():
    params = {"a": jnp.ones(2, jnp.bfloat16), "b": None}
    updates = {"a": jnp.full(2, 0.25, jnp.float32), "b": None}
    new = fo.apply_updates(params, updates)
    assert new["b"] is None and new["a"].dtype == jnp.bfloat16
    np.testing.assert_allclose(np.asarray(new["a"], np.float32), 1.25)


def test_the_dtype_table_covers_every_registered_optimizer():
    """The registry (fnn.optim.OPTIMIZERS) is the one list of optimizers: a new one there
    must get a row here."""
    assert set(fo.OPTIMIZERS) <= set(MIXED_OPTIMIZERS)
