"""Properties of random networks (hypothesis): the shapes init infers are the shapes apply
produces, init is a pure function of the key, and jax.grad of any small smooth network
agrees with central differences (fnn.gradcheck)."""
import jax
import jax.numpy as jnp
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import fnn

SMOOTH = ["tanh", "sigmoid", "softplus", "gelu", "swish", "elu"]
KINKED = ["relu", "leaky_relu"]
SETTINGS = dict(deadline=None, database=None, derandomize=True)


@st.composite
def stacks(draw, features: int, smooth: bool, depth: int = 0):
    """``(layer, output features)``: a serial stack of 1-3 random layers for ``features``
    inputs: Dense, activations, residual blocks (with or without a projection) and branches
    (fan_out -> parallel -> fan_in_sum / fan_in_concat), nested one level."""
    activations = SMOOTH if smooth else SMOOTH + KINKED
    kinds = ["dense", "activation", "residual", "projection", "sum", "concat"] if depth < 1 \
        else ["dense", "activation"]
    layers, f = [], features
    for _ in range(draw(st.integers(1, 3 if depth == 0 else 2))):
        kind = draw(st.sampled_from(kinds))
        if kind == "dense":
            f = draw(st.integers(1, 4))
            layers.append(fnn.Dense(f))
        elif kind == "activation":
            layers.append(fnn.Activation(draw(st.sampled_from(activations))))
        elif kind == "residual":          # f(x) + x: the block must end with f features
            inner, g = draw(stacks(f, smooth, depth + 1))
            layers.append(fnn.residual(fnn.serial(inner, fnn.Dense(f)) if g != f else inner))
        elif kind == "projection":        # f(x) + P(x)
            inner, g = draw(stacks(f, smooth, depth + 1))
            layers.append(fnn.residual(inner, projection=fnn.Dense(g)))
            f = g
        else:
            k = draw(st.integers(1, 2))
            branches = [draw(stacks(f, smooth, depth + 1)) for _ in range(k)]
            if kind == "sum":             # every branch must end with the same width
                g = draw(st.integers(1, 3))
                branches = [(fnn.serial(b, fnn.Dense(g)), g) for b, _ in branches]
                f = g
            else:
                f = sum(g for _, g in branches)
            merge = fnn.fan_in_sum() if kind == "sum" else fnn.fan_in_concat()
            layers.append(fnn.serial(fnn.fan_out(k), fnn.parallel(*(b for b, _ in branches)),
                                     merge))
    return fnn.serial(*layers), f


@st.composite
def networks(draw, smooth=False):
    features = draw(st.integers(1, 3))
    shape = draw(st.sampled_from([(features,), (draw(st.integers(1, 3)), features)]))
    net, _ = draw(stacks(features, smooth))
    out = draw(st.integers(1, 3))                    # end with a Dense: every net has params
    return fnn.serial(net, fnn.Dense(out)), shape, out


def count(tree):
    return sum(int(np.size(a)) for a in jax.tree.leaves(tree))


@settings(max_examples=15, **SETTINGS)
@given(networks(), st.integers(1, 3), st.integers(0, 2**16))
def test_init_infers_the_shapes_that_apply_produces(case, batch, seed):
    # jax.eval_shape runs init and apply as traced (every shape they make and check) without
    # compiling them: the shapes are the ones a real call produces
    net, shape, features = case
    params, state = jax.eval_shape(lambda k: net.init(k, shape), jax.random.key(seed))
    inferred = net.output_shape(shape)
    assert inferred == (*shape[:-1], features)
    x = jax.ShapeDtypeStruct((batch, *shape), jnp.float32)
    y, new_state = jax.eval_shape(net.apply, params, state, x)
    assert y.shape == (batch, *inferred)
    assert jax.tree.structure(new_state) == jax.tree.structure(state)
    assert str(fnn.summary(net, shape)).splitlines()[-1].startswith(
        f"total params: {count(params):,}")


@settings(max_examples=12, **SETTINGS)
@given(networks(), st.integers(0, 2**16))
def test_init_is_a_pure_function_of_the_key(case, seed):
    net, shape, _ = case
    a, _ = net.init(jax.random.key(seed), shape)
    b, _ = net.init(jax.random.key(seed), shape)
    c, _ = net.init(jax.random.key(seed + 1), shape)
    assert jax.tree.structure(a) == jax.tree.structure(b) == jax.tree.structure(c)
    for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b)):
        assert x.dtype == y.dtype and np.array_equal(x, y)
    weights = [(x, z) for (p, x), z in zip(jax.tree_util.tree_flatten_with_path(a)[0],
                                           jax.tree.leaves(c)) if p[-1].key == "w"]
    assert weights                                   # every network here has a Dense
    assert any(not np.array_equal(x, z) for x, z in weights)


@settings(max_examples=6, **SETTINGS)
@given(networks(smooth=True), st.integers(0, 2**16))
def test_gradients_of_random_smooth_networks_pass_gradcheck(case, seed):
    net, shape, features = case
    params, _ = net.init(jax.random.key(seed), shape)
    # flat draws (fnn.initializers.draw): jax.random.normal's numbers, a program per power of 2
    normal = lambda key, shape: fnn.initializers.draw(jax.random.normal, key, shape, jnp.float32)
    x = normal(jax.random.key(seed + 1), (2, *shape))
    target = normal(jax.random.key(seed + 2), (2, *shape[:-1], features))

    def loss(p, x, target):
        return 0.5 * jnp.sum((net(p, x) - target) ** 2)

    report = fnn.gradcheck(jax.jit(loss), params, x, target)   # jit: one compile, not one per op
    assert set(report) == {jax.tree_util.keystr(p)
                           for p, _ in jax.tree_util.tree_flatten_with_path(params)[0]}
