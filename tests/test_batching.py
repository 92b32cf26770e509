"""Batching for lax.scan: shapes, every example once per epoch, the pad mask, determinism."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from fnn.data import batches, epochs


def make(n=10):
    """x (n, 3) whose row i is filled with i, y = i: the ids of the examples can be read back."""
    ids = np.arange(n)
    return {"x": np.repeat(ids[:, None], 3, axis=1).astype(np.float32), "y": ids.astype(np.int32)}


def ids_of(batched):
    y = np.asarray(batched["y"])
    np.testing.assert_array_equal(np.asarray(batched["x"]), np.repeat(y[..., None], 3, axis=-1))  # rows stay paired
    return y


def test_drop_shapes_and_order_without_key():
    out = batches(make(10), 3)
    assert out["x"].shape == (3, 3, 3) and out["y"].shape == (3, 3)
    assert isinstance(out["x"], jax.Array) and out["x"].dtype == jnp.float32
    assert out["y"].dtype == jnp.int32
    np.testing.assert_array_equal(ids_of(out), np.arange(9).reshape(3, 3))


def test_shuffled_drop_each_example_at_most_once():
    out = batches(make(10), 3, key=jax.random.key(0))
    y = ids_of(out).ravel()
    assert len(set(y.tolist())) == 9 and set(y.tolist()) <= set(range(10))
    assert not np.array_equal(y, np.arange(9))
    again = batches(make(10), 3, key=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(again["y"]), np.asarray(out["y"]))
    other = batches(make(10), 3, key=jax.random.key(1))
    assert not np.array_equal(np.asarray(other["y"]), np.asarray(out["y"]))
    perm = np.asarray(jax.random.permutation(jax.random.key(0), 10))
    np.testing.assert_array_equal(y, perm[:9])


def test_pad_mask_marks_real_examples():
    out, mask = batches(make(10), 4, key=jax.random.key(2), remainder="pad")
    assert out["x"].shape == (3, 4, 3) and mask.shape == (3, 4) and mask.dtype == jnp.bool_
    np.testing.assert_array_equal(np.asarray(mask).ravel(), np.arange(12) < 10)
    y = ids_of(out).ravel()
    assert sorted(y[:10].tolist()) == list(range(10))        # every example exactly once
    np.testing.assert_array_equal(y[10:], y[:2])              # pad repeats the first ones
    # A batch larger than the data is one padded batch.
    out, mask = batches(make(3), 8, remainder="pad")
    np.testing.assert_array_equal(np.asarray(out["y"]), [[0, 1, 2, 0, 1, 2, 0, 1]])
    assert int(mask.sum()) == 3


def test_error_policy_and_exact_division():
    out = batches(make(12), 4, remainder="error")
    assert out["y"].shape == (3, 4)
    out2, mask = batches(make(12), 4, remainder="pad")
    assert bool(mask.all())
    np.testing.assert_array_equal(np.asarray(out2["y"]), np.asarray(out["y"]))
    with pytest.raises(ValueError, match=r"batches: batch_size \(4\) does not divide the number of examples \(10\)"):
        batches(make(10), 4, remainder="error")


def test_single_array_and_tuple_pytrees():
    x = np.arange(20.0, dtype=np.float32).reshape(10, 2)
    out = batches(x, 5)
    assert out.shape == (2, 5, 2)
    xs, ys = batches((x, np.arange(10)), 5, key=jax.random.key(0))
    np.testing.assert_array_equal(np.asarray(xs)[..., 0] / 2, np.asarray(ys))


@pytest.mark.parametrize("n, batch_size", [(1, 1), (7, 1), (7, 3), (8, 4), (5, 5), (9, 4)])
def test_every_example_once_under_each_policy(n, batch_size):
    data = make(n)
    key = jax.random.key(n * 10 + batch_size)
    y = ids_of(batches(data, batch_size, key=key)).ravel()
    assert len(y) == n - n % batch_size and len(set(y.tolist())) == len(y)  # drop: all but remainder
    out, mask = batches(data, batch_size, key=key, remainder="pad")
    assert out["y"].shape == (-(-n // batch_size), batch_size)
    assert sorted(np.asarray(out["y"])[np.asarray(mask)].tolist()) == list(range(n))
    np.testing.assert_array_equal(np.asarray(out["y"]).ravel()[: len(y)], y)  # same order


def test_result_feeds_lax_scan():
    data = make(10)
    xs, mask = batches(data, 4, remainder="pad")
    total = jax.lax.scan(lambda c, b: (c + jnp.sum(jnp.where(b[1], b[0]["y"], 0)), None),
                         jnp.zeros((), jnp.int32), (xs, mask))[0]
    assert int(total) == sum(range(10))  # the mask removes the repeated examples


def test_epochs_every_example_once_per_epoch_and_fold_in_keys():
    data = make(10)
    out = epochs(data, 3, 4, seed=7)
    assert out["x"].shape == (4, 3, 3, 3) and out["y"].shape == (4, 3, 3)
    y = ids_of(out).reshape(4, 9)
    for e in range(4):
        assert len(set(y[e].tolist())) == 9
        key = jax.random.fold_in(jax.random.fold_in(jax.random.key(7), 0), e)
        np.testing.assert_array_equal(y[e], np.asarray(batches(data, 3, key=key)["y"]).ravel())
    assert len({tuple(r) for r in y.tolist()}) == 4  # epochs differ
    np.testing.assert_array_equal(np.asarray(epochs(data, 3, 4, seed=7)["y"]), np.asarray(out["y"]))
    out, mask = epochs(data, 4, 2, seed=0, remainder="pad")
    assert mask.shape == (2, 3, 4)
    for e in range(2):
        ids = np.asarray(out["y"][e])[np.asarray(mask[e])]
        assert sorted(ids.tolist()) == list(range(10))


def test_validation_messages():
    with pytest.raises(ValueError, match=r"batches: batch_size must be a positive int, got 0"):
        batches(make(), 0)
    with pytest.raises(ValueError, match=r"batches: batch_size must be a positive int, got 2.0"):
        batches(make(), 2.0)
    with pytest.raises(ValueError, match=r"batches: batch_size must be a positive int, got True"):
        batches(make(), True)
    with pytest.raises(ValueError, match=r"batches: batch_size \(11\) is larger than the dataset \(10 examples\)"):
        batches(make(), 11)
    with pytest.raises(ValueError, match=r"batches: every array in data needs the same leading"):
        batches((np.zeros((4, 2)), np.zeros(5)), 2)
    with pytest.raises(ValueError, match=r"batches: data is empty"):
        batches({}, 2)
    with pytest.raises(ValueError, match=r"batches: data has 0 examples"):
        batches(np.zeros((0, 3)), 2)
    with pytest.raises(ValueError, match=r"batches: every array in data needs a leading example axis"):
        batches((np.zeros(4), np.float32(1)), 2)
    with pytest.raises(ValueError, match=r"batches: remainder must be one of.*got 'pads'.*did you mean 'pad'"):
        batches(make(), 2, remainder="pads")
    with pytest.raises(TypeError, match=r"batches: key must be a PRNG key such as jax.random.key\(0\), got int"):
        batches(make(), 2, key=0)
    with pytest.raises(TypeError, match=r"batches: key must be a PRNG key"):   # the one rule
        batches(make(), 2, key=np.zeros(2, np.float32))       # (fnn.validation.prng_key)
    with pytest.raises(ValueError, match=r"epochs: num_epochs must be a positive int, got 0"):
        epochs(make(), 2, 0, seed=0)
    with pytest.raises(ValueError, match=r"epochs: seed must be an int"):
        epochs(make(), 2, 1, seed=None)
    assert batches(make(), 2, key=jax.random.PRNGKey(0))["y"].shape == (5, 2)  # raw keys work


@pytest.mark.parametrize("remainder", ["drop", "pad"])
def test_epochs_are_the_minibatches_fit_trains_on(remainder):
    """An objective that reports its batch's example ids: fit(seed=s, step_metrics=True)
    records every step's ids, which are epochs(..., seed=s)'s (under 'pad', its full rows)."""
    import fnn

    data = make(37)

    def objective(params, state, batch, key, train):
        return jnp.mean((batch["x"] @ params["w"]) ** 2), (state, {"ids": batch["y"]})

    res = fnn.fit(objective, {"w": jnp.ones((3,))}, fnn.optim.sgd(0.01), data, epochs=3,
                  batch_size=8, seed=5, step_metrics=True, progress=False)
    out = epochs(data, 8, 3, seed=5, remainder=remainder)
    batched = out[0] if remainder == "pad" else out
    trained = res.history["ids"]                     # (epochs, steps, batch): 37 // 8 = 4 steps
    assert trained.shape == (3, 4, 8)
    np.testing.assert_array_equal(ids_of(batched)[:, :4], trained)
