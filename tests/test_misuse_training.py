"""Issue #22: the misuse cases that used to give a silent wrong result or a raw error in
training (early stopping, streams, data-parallel, evaluate, the train flag, divergence)."""
import re
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn

from training_problem import NET, OBJ, PARAMS, blobs  # the shared small problem


def fit(data, optimizer=None, **kw):
    kw = {"progress": False, **kw}
    return fnn.fit(OBJ, PARAMS, optimizer or fnn.optim.sgd(0.1), data, **kw)


# ----------------------------------------------------------------------------- item 5

def test_item5_stream_labels_are_range_checked_on_every_batch():
    x, y = blobs(160)
    bad = y.copy()
    bad[5 * 16 + 3] = 12                                   # a label 12 in batch 5, 3 outputs
    stream = [(x[i:i + 16], bad[i:i + 16]) for i in range(0, 160, 16)]
    with pytest.raises(ValueError, match=r"fit \(batch 5 of the stream\): integer labels must "
                                         r"lie in \[0, 3\) .* got values from 0 to 12"):
        fit(iter(stream), steps_per_epoch=10, epochs=1)
    with pytest.raises(ValueError, match=r"evaluate \(batch 5 of the stream\): integer labels"):
        fnn.evaluate(OBJ, PARAMS, iter(stream))


# ----------------------------------------------------------------------------- item 8

def test_item8_evaluate_takes_model_state_as_fit_does():
    x, y = blobs()
    new = fnn.evaluate(OBJ, PARAMS, (x, y))
    keyword = fnn.evaluate(OBJ, PARAMS, (x, y), model_state={})
    older = fnn.evaluate(OBJ, PARAMS, {}, (x, y))
    assert new == keyword == older
    assert set(new) == {"loss", "accuracy"} and np.isfinite(new["loss"])
    with pytest.raises(TypeError, match=r"evaluate: expected evaluate\(objective, params, data, "
                                        r"model_state=..."):
        fnn.evaluate(OBJ, PARAMS, {}, (x, y), model_state={})


# ----------------------------------------------------------------------------- item 9

def test_item9_a_traced_train_flag_gets_an_fnn_message():
    net = fnn.serial(fnn.Dense(3), fnn.Dropout(0.5))
    p, s = net.init(jax.random.key(0), (2,))
    x = jnp.ones((4, 2))
    with pytest.raises(TypeError, match=r"serial: train must be a Python bool, got a traced "
                                        r"value .*static_argnames='train'"):
        jax.jit(net.apply)(p, s, x, key=jax.random.key(0), train=True)
    y, _ = jax.jit(net.apply, static_argnames="train")(p, s, x, key=jax.random.key(0),
                                                        train=True)
    assert y.shape == (4, 3) and bool(jnp.any(y == 0))     # dropout ran


# ----------------------------------------------------------------------------- item 10

def test_item10_a_one_shot_validation_generator_is_refused_before_training():
    x, y = blobs()
    trained = []
    gen = ((x[i:i + 20], y[i:i + 20]) for i in range(0, 120, 20))
    with pytest.raises(ValueError, match=r"fit: validation_data is a one-shot iterator "
                                         r"\(generator\).*a list of \(x, y\) batches"):
        fit((x, y), epochs=2, validation_data=gen,
            callbacks=[lambda e, m: trained.append(e)])
    assert trained == []                                   # refused before epoch 0


def test_item10_a_list_of_batches_is_a_stream_for_training_validation_and_evaluate():
    x, y = blobs()
    batches = [(x[i:i + 20], y[i:i + 20]) for i in range(0, 120, 20)]
    listed = fit(batches, epochs=3, validation_data=batches)
    streamed = fit(lambda_iter(batches), epochs=3, validation_data=lambda_iter(batches))
    np.testing.assert_array_equal(listed.history["loss"], streamed.history["loss"])
    np.testing.assert_allclose(listed.history["val_loss"], streamed.history["val_loss"])
    assert listed.history["loss"][-1] < listed.history["loss"][0]
    np.testing.assert_allclose(fnn.evaluate(OBJ, listed.params, batches)["loss"],
                               fnn.evaluate(OBJ, listed.params, (x, y))["loss"], rtol=1e-5)


class lambda_iter:
    """A re-iterable over a list (what a DataLoader is)."""

    def __init__(self, items):
        self.items = items

    def __iter__(self):
        return iter(self.items)

    def __len__(self):
        return len(self.items)


# ----------------------------------------------------------------------------- item 11

def test_item11_batch_size_with_a_stream_is_refused():
    x, y = blobs()
    batches = [(x[i:i + 20], y[i:i + 20]) for i in range(0, 120, 20)]
    with pytest.raises(ValueError, match=r"fit: batch_size=32 has no effect on a stream of "
                                         r"batches"):
        fit(batches, batch_size=32)


# ----------------------------------------------------------------------------- item 12

def test_item12_data_parallel_fit_drops_the_remainder_and_says_so():
    x, y = blobs(1437)
    mesh = jax.make_mesh((4,), ("data",))
    with pytest.warns(UserWarning, match=r"fit: the data's 1437 examples do not divide by the "
                                         r"4 devices of mesh axis 'data'; training on the first "
                                         r"1436 \(the last 1 are dropped"):
        parallel = fit((x, y), batch_size=64, epochs=2, mesh=mesh, shuffle_blocks=None)
    alone = fit((x[:1436], y[:1436]), batch_size=64, epochs=2, shuffle_blocks=4)
    np.testing.assert_allclose(parallel.history["loss"], alone.history["loss"], rtol=1e-5)


# ----------------------------------------------------------------------------- item 1

def small_problem():
    x, y = blobs(200, seed=1)
    return (x[:120], y[:120]), (x[120:], y[120:])


def test_item1_early_stopping_maximises_an_accuracy_by_default():
    train, val = small_problem()
    rule = fnn.EarlyStopping(monitor="val_accuracy", patience=3)
    assert rule.mode == "auto"
    result = fnn.fit(OBJ, PARAMS, fnn.optim.sgd(0.02), train, epochs=30, batch_size=20,
                     validation_data=val, early_stopping=rule, progress=False)
    acc = result.history["val_accuracy"]
    best = fnn.evaluate(OBJ, result.params, val)["accuracy"]
    assert best == pytest.approx(acc.max(), abs=1e-6)        # the best epoch, by the maximum
    assert acc.max() > 0.8 and len(acc) > 4
    with pytest.warns(UserWarning, match=r"EarlyStopping: mode='min' minimises 'val_accuracy', "
                                         r"which reads as a metric to maximise"):
        fnn.fit(OBJ, PARAMS, fnn.optim.sgd(0.02), train, epochs=2, batch_size=20,
                validation_data=val, progress=False,
                early_stopping=fnn.EarlyStopping(monitor="val_accuracy", mode="min"))
    assert fnn.train.early_stopping.mode_of(fnn.EarlyStopping("val_loss")) == "min"
    assert fnn.train.early_stopping.mode_of(fnn.EarlyStopping("val_f1")) == "max"


def test_item1_the_monitor_is_checked_before_compiling():
    train, val = small_problem()
    seen = []
    with pytest.raises(ValueError, match=r"EarlyStopping: no metric 'val_acuracy'; did you mean "
                                         r"'val_accuracy'\?; this fit reports \['accuracy', "
                                         r"'loss', 'val_accuracy', 'val_loss'\]"):
        fnn.fit(OBJ, PARAMS, fnn.optim.sgd(0.02), train, epochs=3, validation_data=val,
                early_stopping=fnn.EarlyStopping(monitor="val_acuracy"), progress=False,
                callbacks=[lambda e, m: seen.append(e)])
    assert seen == []


def test_item1_early_stopping_says_when_it_stops_and_a_larger_patience_resumes(tmp_path, capsys):
    train, val = small_problem()
    rule = fnn.EarlyStopping(monitor="loss", patience=2, mode="max")   # loss falls: stops early
    common = dict(epochs=12, batch_size=20, validation_data=val, checkpoint_dir=tmp_path)
    first = fnn.fit(OBJ, PARAMS, fnn.optim.sgd(0.02), train, early_stopping=rule, **common)
    stop = first.early_stop
    assert (stop.epoch, stop.best_epoch, stop.restored) == (2, 0, True)
    assert stop.best_value == pytest.approx(first.history["loss"][0])
    assert len(first.history["loss"]) == 3
    err = capsys.readouterr().err
    assert ("fit: early stopping after epoch 2: loss has not improved for 2 epochs (mode "
            "'max'); best loss") in err and "returning epoch 0's params" in err
    with pytest.warns(UserWarning, match=r"fit: the resumed run was stopped early after epoch "
                                         r"2 .*nothing is trained. Pass a larger patience"):
        again = fnn.fit(OBJ, PARAMS, fnn.optim.sgd(0.02), train, early_stopping=rule,
                        resume=True, **common)
    assert len(again.history["loss"]) == 3 and again.early_stop == stop
    longer = fnn.fit(OBJ, PARAMS, fnn.optim.sgd(0.02), train, resume=True,
                     early_stopping=rule._replace(patience=5), **common)
    assert len(longer.history["loss"]) == 6                 # trained on, stopped at epoch 5
    assert longer.early_stop.epoch == 5 and longer.early_stop.best_epoch == 0
    assert "training continues" in capsys.readouterr().err


# ----------------------------------------------------------------------------- item 7

def test_item7_a_finite_divergence_warns():
    x, y = blobs(200)
    net = fnn.serial(fnn.Dense(8), fnn.tanh, fnn.Dense(3))    # tanh: huge but finite losses
    params = net.init(jax.random.key(0), (4,))[0]
    fit = lambda data, optimizer=None, **kw: fnn.fit(
        fnn.supervised(net), params, optimizer or fnn.optim.sgd(0.1), data, progress=False, **kw)
    with pytest.warns(fnn.DivergenceWarning, match=r"fit: the training loss diverged: .* times "
                                                   r"the initial params' .* \(warned above 1000 "
                                                   r"times\). Lower the learning rate"):
        wild = fit((x, y), epochs=5, batch_size=20, optimizer=fnn.optim.sgd(1e6))
    assert np.all(np.isfinite(wild.history["loss"])) and wild.history["loss"][-1] > 1e3
    with warnings.catch_warnings():
        warnings.simplefilter("error", fnn.DivergenceWarning)
        calm = fit((x, y), epochs=5, batch_size=20)               # a sane rate: no warning
    assert calm.history["loss"][-1] < calm.history["loss"][0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", fnn.DivergenceWarning)   # switched off
        fit((x, y), epochs=2, batch_size=20, optimizer=fnn.optim.sgd(1e6))


def test_the_early_stopper_names_a_monitor_missing_from_a_row_and_an_unstopped_run_resumes():
    from fnn.train.early_stopping import EarlyStopper
    stopper = EarlyStopper(fnn.EarlyStopping(monitor="val_loss", patience=2))
    with pytest.raises(ValueError, match=r"no metric 'val_loss'.*this fit reports \['loss'\]"):
        stopper.update({"loss": 1.0}, None, 0)
    assert stopper.resumed() is None          # never stopped: a resume trains on, silently
