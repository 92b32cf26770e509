"""The one compile cache (fnn.train.programs): programs keyed by the traced computation, so a
rebuilt net, objective and optimizer of the same structure compile nothing, different
structures never share, the epoch count and the learning rate are runtime values."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.train import programs
from fnn.train.programs import PROGRAMS, ProgramCache, fingerprint
from lowerings import Lowerings


def _data(n=128, features=6, classes=3, seed=0):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, classes, n).astype(np.int32)
    x = (rng.randn(classes, features)[y] + rng.randn(n, features)).astype(np.float32)
    return x, y


def _fit(lr, *, epochs=5, hidden=16, activation=fnn.relu, dropout=None, precision=None,
         mesh=None, batch_size=32, **kw):
    layers = [fnn.Dense(hidden), activation] + ([fnn.Dropout(dropout)] if dropout else [])
    net = fnn.serial(*layers, fnn.Dense(3))
    params, _ = net.init(jax.random.key(0), (6,))
    return fnn.fit(fnn.supervised(net), params, fnn.optim.adam(lr), _data(), epochs=epochs,
                   batch_size=batch_size, progress=False, precision=precision, mesh=mesh, **kw)


def test_host_data_of_a_new_shape_is_transferred_not_staged_by_a_compiled_program():
    """fit and evaluate put NumPy data on the device with a transfer (jax.device_put), and fit
    copies the params it donates the same way: no identity program ``jit(stage)`` (what
    ``jnp.asarray`` of a host array compiles) or ``jit(copy)`` per array shape."""
    x, y = _data(n=97)                                   # a data shape no other test uses
    params, _ = fnn.serial(fnn.Dense(16), fnn.relu, fnn.Dense(3)).init(jax.random.key(0), (6,))
    params = jax.tree.map(np.asarray, params)
    objective = fnn.supervised(fnn.serial(fnn.Dense(16), fnn.relu, fnn.Dense(3)))
    with Lowerings(every=True) as lowered:
        result = fnn.fit(objective, params, fnn.optim.adam(1e-2), (x, y), epochs=2,
                         batch_size=None, progress=False)
        metrics = fnn.evaluate(objective, result.params, (x, y))
    assert "jit(fnn_epochs)" in lowered.names and "jit(fnn_evaluate)" in lowered.names
    assert not {"jit(stage)", "jit(copy)"} & set(lowered.names), lowered.names
    # the transferred host data are the device data: the same metrics, bit for bit
    assert metrics == fnn.evaluate(objective, result.params, jax.device_put((x, y)))


def test_a_loop_of_fresh_objects_compiles_exactly_one_program():
    PROGRAMS.clear()
    results = {}
    with Lowerings() as lowered:
        for lr, epochs in [(1e-3, 5), (3e-3, 7), (3e-2, 3)]:
            results[lr, epochs] = _fit(lr, epochs=epochs).params
    assert lowered.names == ["jit(fnn_epochs)"]
    assert PROGRAMS.misses == 1 and PROGRAMS.hits == 2
    # the runs that reused the first run's program used their own learning rate and epoch
    # count: the same result as a run whose program was compiled for it alone
    for lr, epochs in [(3e-3, 7), (3e-2, 3)]:
        PROGRAMS.clear()
        alone = _fit(lr, epochs=epochs).params
        jax.tree.map(np.testing.assert_array_equal, results[lr, epochs], alone)
    w = [np.asarray(p["dense_0"]["w"]) for p in results.values()]
    assert all(np.abs(a - b).max() > 1e-4 for i, a in enumerate(w) for b in w[i + 1:])


def test_history_has_one_row_per_epoch_whatever_the_calls():
    one = _fit(1e-2, epochs=6, epochs_per_call=1, validation_data=_data(32, seed=1))
    all_ = _fit(1e-2, epochs=6, validation_data=_data(32, seed=1))
    assert {k: len(v) for k, v in all_.history.items()} == {"loss": 6, "accuracy": 6,
                                                           "val_loss": 6, "val_accuracy": 6}
    # one program whatever the chunking: validation metrics too are bit-identical now
    for k in all_.history:
        np.testing.assert_array_equal(one.history[k], all_.history[k])
    jax.tree.map(np.testing.assert_array_equal, one.params, all_.params)


CHANGES = dict(activation=dict(activation=fnn.tanh), hidden=dict(hidden=17),
               dropout=dict(dropout=0.2),
               precision=dict(precision="params=float32,compute=bfloat16,output=float32"),
               mesh=dict(mesh="data2"))


def test_different_programs_never_share():
    PROGRAMS.clear()
    base = {False: _fit(1e-2), True: _fit(1e-2, dropout=0.1)}    # dropout 0.1 vs 0.2
    others = {}
    for name, change in CHANGES.items():
        if name == "mesh":
            change = dict(mesh=jax.make_mesh((2,), ("data",), devices=jax.devices()[:2]))
        misses = PROGRAMS.misses
        others[name] = change, _fit(1e-2, **change)
        assert PROGRAMS.misses == misses + 1 and PROGRAMS.hits == 0, \
            f"{name}: a different program reused one"
        if name != "mesh":
            assert not np.array_equal(base["dropout" in change].history["loss"],
                                      others[name][1].history["loss"]), name
    # and each equals its own program run alone
    for name, (change, other) in others.items():
        PROGRAMS.clear()
        alone = _fit(1e-2, **change)
        jax.tree.map(np.testing.assert_array_equal, jax.device_get(other.params),
                     jax.device_get(alone.params))


def test_fingerprint_ignores_objects_and_sees_numbers():
    step = lambda lr: (lambda w, g: w - lr * g)
    w = jnp.ones(3)
    assert fingerprint(step(0.1), w, w) == fingerprint(step(0.1), w, w)
    assert fingerprint(step(0.1), w, w) != fingerprint(step(0.2), w, w)
    a, b = jnp.arange(3.0), jnp.arange(3.0) + 1
    assert fingerprint(lambda x: x + a, w) != fingerprint(lambda x: x + b, w)  # constants
    assert fingerprint(lambda x: 2 * x, w) != fingerprint(lambda x: 2 * x, jnp.ones(4))  # shapes


def test_plain_optax_keys_by_its_numbers_inject_hyperparams_does_not():
    optax = pytest.importorskip("optax")
    net = fnn.serial(fnn.Dense(8), fnn.relu, fnn.Dense(3))
    params, _ = net.init(jax.random.key(0), (6,))

    def fit(opt):  # optax's inject_hyperparams mixes int32 and float32 (strict promotion)
        with jax.numpy_dtype_promotion("standard"):
            return fnn.fit(fnn.supervised(net), params, opt, _data(), epochs=2, batch_size=32,
                           progress=False)

    PROGRAMS.clear()
    fit(optax.inject_hyperparams(optax.adam)(1e-3))
    fit(optax.inject_hyperparams(optax.adam)(2e-3))
    assert (PROGRAMS.misses, PROGRAMS.hits) == (1, 1)
    fit(optax.adam(1e-3))
    fit(optax.adam(1e-3))
    fit(optax.adam(2e-3))
    assert (PROGRAMS.misses, PROGRAMS.hits) == (3, 2)


def test_the_cache_is_bounded_least_recently_used_out():
    cache = ProgramCache(maxsize=2)
    made = []
    make = lambda k: (lambda: made.append(k) or k)
    for k in ["a", "b", "a", "c", "b"]:
        cache.get(k, make(k))
    assert made == ["a", "b", "c", "b"] and len(cache) == 2  # "b" was evicted by "c"
    assert (cache.hits, cache.misses) == (1, 4)


def test_persistent_cache_directory_and_switch(monkeypatch, tmp_path):
    before = jax.config.jax_compilation_cache_dir
    monkeypatch.setenv("FNN_CACHE_DIR", str(tmp_path / "c"))
    assert programs.persistent_cache_dir() == tmp_path / "c"
    monkeypatch.delenv("FNN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert programs.persistent_cache_dir() == tmp_path / "x" / "fnn" / "jax"
    try:
        monkeypatch.setenv("FNN_COMPILE_CACHE", "0")
        assert programs.use_persistent_cache(tmp_path / "d") is None
        assert not jax.config.jax_enable_compilation_cache
        monkeypatch.delenv("FNN_COMPILE_CACHE")
        assert programs.use_persistent_cache(tmp_path / "d") == tmp_path / "d"
        assert jax.config.jax_compilation_cache_dir == str(tmp_path / "d")
    finally:
        programs.use_persistent_cache(before)
