"""Data-parallel fit and evaluate, sweeps spread over devices, and checkpoints that restore
onto any device count, on 4 virtual CPU devices (tests/conftest.py): every result equals the
one-device run with the same global batch, seed and shuffle (float64 to 1e-10, float32 to
1e-5) over at least 100 steps."""
import shutil

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax.sharding import NamedSharding, PartitionSpec as P

import fnn
from fnn import checkpoint

DEVICES = jax.devices()


def mesh(n, axes=("data",)):
    shape = (n,) if len(axes) == 1 else n
    return jax.make_mesh(shape, axes, devices=DEVICES[:int(np.prod(shape))])


def close(a, b, dtype):
    rtol, atol = (1e-10, 1e-10) if dtype == np.float64 else (1e-5, 1e-6)
    for (path, u), v in zip(jax.tree_util.tree_flatten_with_path(a)[0], jax.tree.leaves(b)):
        np.testing.assert_allclose(np.asarray(u), np.asarray(v), rtol=rtol, atol=atol,
                                   err_msg=jax.tree_util.keystr(path))


def same_run(one, many, dtype):
    close((one.params, one.model_state, one.opt_state), (many.params, many.model_state,
                                                         many.opt_state), dtype)
    assert sorted(one.history) == sorted(many.history)
    close(one.history, many.history, dtype)


def cast(tree, dtype):
    return jax.tree.map(lambda a: np.asarray(a, dtype) if np.issubdtype(np.asarray(a).dtype,
                                                                        np.floating) else a, tree)


def blobs(n, features, classes, dtype, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, classes, n).astype(np.int32)
    x = (rng.randn(n, features) + 1.5 * np.eye(classes, features)[y]).astype(dtype)
    return x, y


def shard(data, m):
    return jax.device_put(data, NamedSharding(m, P("data")))


def in_order(data, batch_size, epochs, seed, blocks):
    """fit's batches for ``blocks`` data shards, epoch after epoch, as host batches."""
    key = jax.random.fold_in(jax.random.key(seed), 0)
    n = len(data[1])
    for e in range(epochs):
        index = np.asarray(fnn.train.engine.shuffled_batches(key, e, n, batch_size, blocks))
        for row in index:   # (blocks, batch / blocks) indices within each block
            rows = (row + (np.arange(blocks) * (n // blocks))[:, None]).ravel()
            yield jax.tree.map(lambda a: a[rows], data)


# ----------------------------------------------------------------------------- fit

# float64 arrays sharded by the caller, and a float32 stream fit shards batch by batch: each
# data path once, each dtype's tolerance once (the dtype does not change how fit shards)
@pytest.mark.parametrize("dtype, streaming", [(np.float64, False), (np.float32, True)])
def test_an_mlp_trains_on_4_devices_as_on_one(dtype, streaming, x64):
    x, y = blobs(256, 6, 3, dtype)
    net = fnn.serial(fnn.Dense(16), fnn.relu, fnn.Dropout(0.1), fnn.Dense(3))
    params = cast(net.init(jax.random.key(0), (6,))[0], dtype)
    objective, opt = fnn.supervised(net), fnn.optim.adam(1e-2)
    common = dict(epochs=13, seed=1, progress=False, validation_data=(x[:64], y[:64]),
                  epochs_per_call=1)                                 # 13 x 8 = 104 steps
    one = fnn.fit(objective, params, opt, (x, y), batch_size=32, shuffle_blocks=4, **common)
    if streaming:
        many = fnn.fit(objective, params, opt, in_order((x, y), 32, 13, 1, 4),
                       steps_per_epoch=8, stream_chunk=3, mesh=mesh(4), **common)
    else:
        many = fnn.fit(objective, params, opt, shard((x, y), mesh(4)), batch_size=32, **common)
    same_run(one, many, dtype)
    assert many.params["dense_0"]["w"].sharding.mesh.shape == {"data": 4}
    assert many.params["dense_0"]["w"].sharding.spec == P()          # replicated


def test_a_batchnorm_dropout_cnn_trains_on_4_devices_as_on_one(x64):
    rng = np.random.RandomState(1)
    x = rng.rand(64, 6, 6, 2)
    y = (x[..., 0].mean(axis=(1, 2)) > x[..., 1].mean(axis=(1, 2))).astype(np.int32)
    net = fnn.serial(fnn.Conv2D(4, 3, use_bias=False), fnn.BatchNorm(), fnn.relu,
                     fnn.MaxPool(2), fnn.Flatten(), fnn.Dropout(0.2), fnn.Dense(2))
    params, state = cast(net.init(jax.random.key(1), (6, 6, 2)), np.float64)
    common = dict(model_state=state, epochs=25, batch_size=16, seed=3, progress=False)  # 100
    one = fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1, momentum=0.9), (x, y),
                  shuffle_blocks=4, **common)
    many = fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1, momentum=0.9),
                   (x, y), mesh=mesh(4), **common)                    # host data, sharded by fit
    same_run(one, many, np.float64)      # BatchNorm's statistics are the global batch's


def test_a_masked_lstm_trains_on_4_devices_as_on_one(x64):
    rng = np.random.RandomState(2)
    lengths = rng.randint(2, 7, 64)
    mask = np.asarray(fnn.sequence_mask(jnp.asarray(lengths), 6))
    x = rng.randn(64, 6, 3)
    y = ((x * mask[..., None]).sum(axis=(1, 2)) > 0).astype(np.int32)
    net = fnn.serial(fnn.Recurrent(fnn.LSTMCell(8), return_sequences=False), fnn.Dense(2))
    params = cast(net.init(jax.random.key(0), ((6, 3), (6,)))[0], np.float64)
    common = dict(epochs=25, batch_size=16, seed=4, progress=False)   # 25 x 4 = 100 steps
    one = fnn.fit(fnn.supervised(net), params, fnn.optim.adam(1e-2), ((x, mask), y),
                  shuffle_blocks=4, **common)
    many = fnn.fit(fnn.supervised(net), params, fnn.optim.adam(1e-2),
                   shard(((x, mask), y), mesh(4)), **common)
    same_run(one, many, np.float64)
    sharded = fnn.evaluate(fnn.supervised(net), many.params, {}, shard(((x, mask), y), mesh(4)))
    alone = fnn.evaluate(fnn.supervised(net), one.params, {}, ((x, mask), y))
    close(sharded, alone, np.float64)


def test_the_shuffle_keeps_every_example_in_its_shard():
    index = np.asarray(fnn.train.engine.shuffled_batches(jax.random.key(0), 3, 64, 16, 4))
    assert index.shape == (4, 4, 4)                  # (steps, blocks, batch / blocks)
    assert index.min() >= 0 and index.max() < 16     # within each block of 64 / 4
    for d in range(4):                               # each block's rows are a permutation
        assert sorted(index[:, d].ravel()) == list(range(16))
    one_block = np.asarray(fnn.train.engine.shuffled_batches(jax.random.key(0), 3, 64, 16))
    key = jax.random.fold_in(jax.random.key(0), 3)
    np.testing.assert_array_equal(one_block.ravel(), np.asarray(jax.random.permutation(key, 64)))


# ----------------------------------------------------------------------------- sweep

def test_a_2d_sweep_over_runs_and_data_equals_the_unsharded_sweep(x64):
    x, y = blobs(128, 3, 4, np.float64, seed=7)
    net = fnn.serial(fnn.Dense(10), fnn.relu, fnn.Dense(4))
    init = lambda key: jax.tree.map(lambda a: a.astype(jnp.float64), net.init(key, (3,))[0])
    kw = dict(seeds=np.arange(4), hparams={"learning_rate": [0.3, 0.1, 0.03, 0.01]}, epochs=25,
              batch_size=32, validation_data=(x[:32], y[:32]))          # 25 x 4 = 100 steps
    alone = fnn.sweep(fnn.supervised(net), init, fnn.optim.sgd, (x, y), shuffle_blocks=2, **kw)
    spread = fnn.sweep(fnn.supervised(net), init, fnn.optim.sgd, (x, y),
                       mesh=mesh((2, 2), ("runs", "data")), **kw)
    close((alone.params, alone.opt_state, alone.history),
          (spread.params, spread.opt_state, spread.history), np.float64)
    assert spread.params["dense_0"]["w"].sharding.spec == P("runs")
    by_runs = fnn.sweep(fnn.supervised(net), init, fnn.optim.sgd, (x, y), mesh=mesh(4, ("runs",)),
                        **kw)
    plain = fnn.sweep(fnn.supervised(net), init, fnn.optim.sgd, (x, y), **kw)
    close((plain.params, plain.history), (by_runs.params, by_runs.history), np.float64)


# ----------------------------------------------------------------------------- checkpoints

def test_saved_on_4_devices_resumes_on_1_and_2(tmp_path, x64):
    x, y = blobs(128, 5, 3, np.float64, seed=3)
    net = fnn.serial(fnn.Dense(12), fnn.relu, fnn.Dense(3))
    params = cast(net.init(jax.random.key(6), (5,))[0], np.float64)
    objective, opt = fnn.supervised(net), fnn.optim.rmsprop(1e-2)
    common = dict(batch_size=16, seed=2, progress=False, shuffle_blocks=4)  # the 4-device order
    whole = fnn.fit(objective, params, opt, (x, y), epochs=13, mesh=mesh(4),
                    checkpoint_dir=tmp_path / "whole", **common)
    fnn.fit(objective, params, opt, (x, y), epochs=6, mesh=mesh(4), checkpoint_every=3,
            checkpoint_dir=tmp_path / "saved", **common)
    for resume_on in (1, 2):           # each from its own copy of the 4-device checkpoints
        shutil.copytree(tmp_path / "saved", tmp_path / f"on{resume_on}")
        data = (x, y) if resume_on == 1 else shard((x, y), mesh(2))
        # without shuffle_blocks, the resume reuses the checkpoint's recorded 4-block order
        resumed = fnn.fit(objective, params, opt, data, epochs=13, resume=True,
                          checkpoint_dir=tmp_path / f"on{resume_on}",
                          **{**common, "shuffle_blocks": None})
        same_run(whole, resumed, np.float64)


def test_a_checkpoint_of_sharded_arrays_restores_onto_any_mesh(tmp_path):
    x = shard(jnp.arange(32.0).reshape(16, 2), mesh(4))
    checkpoint.save(tmp_path / "a.npz", {"x": x, "n": 3})
    for devices in (1, 2, 4):
        target = {"x": jax.ShapeDtypeStruct((16, 2), jnp.float32,
                                            sharding=NamedSharding(mesh(devices), P("data"))),
                  "n": 0}
        restored = checkpoint.restore(tmp_path / "a.npz", target)
        assert len(restored["x"].sharding.device_set) == devices
        np.testing.assert_array_equal(restored["x"], np.arange(32.0).reshape(16, 2))


# ----------------------------------------------------------------------------- errors

def test_uneven_batches_missing_axes_and_mixed_meshes_are_clear_errors():
    x, y = blobs(64, 4, 3, np.float32)
    net = fnn.serial(fnn.Dense(3))
    params = net.init(jax.random.key(0), (4,))[0]
    fit = lambda data, **kw: fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.1), data,
                                     progress=False, **kw)
    with pytest.raises(ValueError, match=r"fit: the global batch \(30\) does not divide by the 4 "
                                         r"devices of mesh axis 'data'; use a batch size that is "
                                         r"a multiple of 4 \(e.g. 28 or 32\)"):
        fit(shard((x, y), mesh(4)), batch_size=30)
    with pytest.raises(ValueError, match=r"fit: the mesh has axes \('batch',\), none named "
                                         r"'data'"):
        fit((x, y), batch_size=32, mesh=mesh(4, ("batch",)))
    other = jax.device_put(params, NamedSharding(mesh(2), P()))
    with pytest.raises(ValueError, match=r"fit: the data are on a mesh \{'data': 4\} of devices "
                                         r"\[0, 1, 2, 3\] but the params on a mesh \{'data': 2\}"):
        fnn.fit(fnn.supervised(net), other, fnn.optim.sgd(0.1), shard((x, y), mesh(4)),
                batch_size=32, progress=False)
    with pytest.raises(ValueError, match=r"sweep: the 3 runs do not divide by the 4 devices of "
                                         r"mesh axis 'runs'"):
        fnn.sweep(fnn.supervised(net), lambda k: net.init(k, (4,))[0], fnn.optim.sgd, (x, y),
                  seeds=np.arange(3), hparams={"learning_rate": 0.1}, mesh=mesh(4, ("runs",)))
    with pytest.raises(ValueError, match=r"shard_data: data\[0\] has 62 examples, which does "
                                         r"not divide by the 4 devices"):
        fnn.sharding.shard_data((x[:62], y[:62]), mesh(4))


def test_summary_shows_each_layers_sharding():
    net = fnn.serial(fnn.Dense(8), fnn.relu, fnn.Dense(2))
    params, _ = net.init(jax.random.key(0), (3,))
    assert "sharding" not in str(fnn.summary(net, (3,), params=params))   # one device: no column
    placed = {"dense_0": jax.device_put(params["dense_0"], NamedSharding(mesh(4), P())),
              "dense_1": {"w": jax.device_put(params["dense_1"]["w"],
                                              NamedSharding(mesh(2), P("data", None))),
                          "b": jax.device_put(params["dense_1"]["b"], NamedSharding(mesh(2), P()))}}
    table = fnn.summary(net, (3,), params=placed)
    assert table.columns[-1] == "sharding"
    rows = {row[0]: row[-1] for row in table.rows}
    assert rows["dense_0"] == "P() on {'data': 4}" and rows["relu_0"] == ""
    assert rows["dense_1"] == "P() on {'data': 2}; P('data', None) on {'data': 2}"


def test_single_device_is_the_null_placement_with_data_parallels_methods():
    from fnn.sharding import SINGLE_DEVICE, data_parallel
    x = np.arange(6.0, dtype=np.float32).reshape(3, 2)
    assert data_parallel("fit", {"x": x}, {}) is SINGLE_DEVICE and SINGLE_DEVICE.size == 1
    placed = SINGLE_DEVICE.data({"x": x})
    assert isinstance(placed["x"], jax.Array) and placed["x"].dtype == jnp.float32
    copy = SINGLE_DEVICE.replicated(placed)
    assert copy["x"] is not placed["x"]
    np.testing.assert_array_equal(copy["x"], x)
    assert SINGLE_DEVICE.returned(placed) is placed and SINGLE_DEVICE.constrain(x) is x
    assert SINGLE_DEVICE.jit_options() == {}
    SINGLE_DEVICE.check_batch("fit", 7)    # any batch divides over one device


def test_a_gan_trains_through_fit_on_4_devices_as_on_one_with_4_shuffle_blocks():
    gan = fnn.models.GAN(fnn.models.dense_generator(4, 2, hidden=(16,), output_activation=None),
                         fnn.models.dense_discriminator(hidden=(16,)), latent_dim=4)
    trees, _ = gan.init(jax.random.key(8), (2,))
    data = np.random.RandomState(8).randn(64, 2).astype(np.float32)
    step = fnn.train.gan_step(gan, fnn.optim.adam(2e-3), fnn.optim.adam(2e-3))
    kw = dict(epochs=3, batch_size=16, seed=1, progress=False)
    one = fnn.fit(step, trees, None, data, shuffle_blocks=4, **kw)
    many = fnn.fit(step, trees, None, data, mesh=mesh(4), **kw)
    assert many.params["generator"]["dense_0"]["w"].sharding.mesh.shape["data"] == 4
    same_run(one, many, np.float32)


def test_placement_errors_say_what_is_wrong_and_replicate_copies_to_every_device():
    """The placement helpers' own checks (no training): a mesh that is not a Mesh, data on
    two meshes, an example count the devices do not divide; replicate gives P() copies."""
    x = np.arange(24, dtype=np.float32).reshape(8, 3)
    with pytest.raises(TypeError, match=r"fit: mesh must be a jax.sharding.Mesh .*got tuple"):
        fnn.sharding.data_parallel("fit", (x,), {}, mesh=(4,))
    on_4, on_2 = fnn.sharding.shard_data(x, mesh(4)), fnn.sharding.shard_data(x, mesh(2))
    with pytest.raises(ValueError, match=r"arrays on different meshes: \[0\] on .*, \[1\] on"):
        fnn.sharding.mesh_of((on_4, on_2))
    with pytest.raises(ValueError, match=r"shard_data: data\['x'\] has 6 examples, which does "
                                         r"not divide by the 4 devices of mesh axis 'data'"):
        fnn.sharding.shard_data({"x": x[:6]}, mesh(4))
    copy = fnn.sharding.replicate({"w": on_4}, mesh(4))["w"]
    assert copy.sharding.spec == P() and len(copy.sharding.device_set) == 4
    np.testing.assert_array_equal(copy, x)
