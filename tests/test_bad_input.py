"""Bad input fails early and clearly across the public API: each case raises ValueError or
TypeError whose message says what was expected and what was given (matched here)."""
import jax
import numpy as np
import pytest

import experiments
import fnn
from fnn import checkpoint
from fnn.app import cli

KEY = jax.random.key(0)
NET = fnn.serial(fnn.Dense(4), fnn.relu, fnn.Dense(3))
PARAMS, STATE = NET.init(KEY, (2,))
OTHER_PARAMS, _ = fnn.serial(fnn.Dense(4), fnn.relu, fnn.Dense(3), fnn.relu,
                             fnn.Dense(3)).init(KEY, (2,))
X = np.random.RandomState(0).randn(12, 2).astype(np.float32)
Y = (np.arange(12) % 3).astype(np.int32)
LOGITS = np.zeros((4, 3), np.float32)


def fit(**kwargs):
    args = dict(objective=fnn.supervised(NET), params=PARAMS, optimizer=fnn.optim.sgd(0.1),
                data=(X, Y), progress=False)
    args.update(kwargs)
    return fnn.fit(args.pop("objective"), args.pop("params"), args.pop("optimizer"),
                   args.pop("data"), **args)


def with_value(array, index, value):
    array = array.copy()
    array[index] = value
    return array


def a_file(tmp):
    path = tmp / "a_file.txt"
    path.write_text("not a directory")
    return path


def garbage(tmp, name="garbage.npz"):
    path = tmp / name
    path.write_bytes(np.random.RandomState(1).bytes(300))
    return path


def plain_npz(tmp):
    np.savez(tmp / "plain.npz", w=np.ones(3))
    return tmp / "plain.npz"


def saved(tmp):
    return checkpoint.save(tmp / "c.npz", {"params": PARAMS})


def read_idx(path):
    from fnn.data import read_idx
    return read_idx(path)


def compare_optimizers(tmp, *argv):
    args = cli.build_parser().parse_args(["compare-optimizers", "--out", str(tmp), *argv])
    return args.func(args)


CASES = [
    # ------------------------------------------------------------ init: shapes and keys
    ("init input rank 0", lambda t: fnn.Dense(3).init(KEY, ()), ValueError,
     r"dense: expected input_shape \(\.\.\., features\), got \(\)"),
    ("init negative size", lambda t: NET.init(KEY, (-2,)), ValueError,
     r"serial: input_shape must hold positive ints \(without the batch axis\), got \(-2,\)"),
    ("init shape not a tuple", lambda t: NET.init(KEY, "2"), TypeError,
     r"serial: input_shape must be a tuple of ints \(without the batch axis\), got '2'"),
    ("init with an int seed", lambda t: NET.init(0, (2,)), TypeError,
     r"serial: init needs a PRNG key such as jax.random.key\(0\) as its first argument, got 0"),
    ("residual changes the shape", lambda t: fnn.residual(fnn.Dense(3)).init(KEY, (2,)), ValueError,
     r"residual: the block maps \(2,\) to \(3,\) but the skip path gives \(2,\); add a projection"),
    ("fan_in_sum of unequal shapes",
     lambda t: fnn.serial(fnn.fan_out(2), fnn.parallel(fnn.Dense(2), fnn.Dense(3)),
                          fnn.fan_in_sum()).init(KEY, (2,)), ValueError,
     r"fan_in_sum: all inputs must have the same shape, got \(\(2,\), \(3,\)\)"),
    ("parallel given one shape", lambda t: fnn.parallel(fnn.Dense(2), fnn.Dense(2)).init(KEY, (2,)),
     ValueError, r"parallel: expected a tuple of 2 input shapes, got \(2,\)"),
    # ------------------------------------------------------------ apply: inputs and params
    ("apply wrong feature size", lambda t: NET(PARAMS, np.ones((4, 5), np.float32)), ValueError,
     r"dense: expected input of shape \(batch, \.\.\., 2\), got \(4, 5\)"),
    ("apply without a batch axis", lambda t: NET(PARAMS, np.ones(2, np.float32)), ValueError,
     r"dense: expected input of shape \(batch, \.\.\., 2\), got \(2,\)"),
    ("apply params of a bigger model", lambda t: NET(OTHER_PARAMS, X), ValueError,
     r"serial: params hold \['dense_2'\], which match no child of this network \(its children "
     r"are \['dense_0', 'relu_0', 'dense_1'\]\); were these params made by another network"),
    ("apply params missing a child", lambda t: NET({"dense_0": PARAMS["dense_0"]}, X), ValueError,
     r"serial: params hold no entry for child 'dense_1' \(they hold \['dense_0'\]\)"),
    ("apply params missing a leaf", lambda t: fnn.Dense(3).apply({"w": np.ones((2, 3))}, {}, X),
     ValueError, r"dense: params lack \['b'\] \(they hold \['w'\]\); pass the params made by"),
    ("apply params not a dict", lambda t: NET([1, 2], X), ValueError,
     r"serial: params must be a dict \(from serial.init\), got list"),
    ("dropout in training without a key",
     lambda t: fnn.serial(fnn.Dense(4), fnn.Dropout(0.5)).apply(
         {"dense_0": PARAMS["dense_0"]}, {}, X, train=True), ValueError,
     r"dropout: training draws random noise and needs a key; call net.apply\(params, state, x, "
     r"key=jax.random.key\(0\), train=True\)"),
    # ------------------------------------------------------------ construction
    ("dropout rate 1", lambda t: fnn.Dropout(1.0), ValueError,
     r"dropout: rate \(the probability of dropping a unit\) must be a finite number in \[0, 1\), got 1.0"),
    ("dropout rate negative", lambda t: fnn.Dropout(-0.1), ValueError,
     r"must be a finite number in \[0, 1\), got -0.1"),
    ("dense zero units", lambda t: fnn.Dense(0), ValueError, r"dense: units must be a positive int, got 0"),
    ("serial of nothing", lambda t: fnn.serial(), ValueError, r"serial: needs at least one layer, got none"),
    ("serial of a number", lambda t: fnn.serial(3), TypeError,
     r"serial: child 0: expected a Layer or a function of arrays, got int: 3"),
    ("fan_out of zero", lambda t: fnn.fan_out(0), ValueError, r"fan_out: n must be a positive int, got 0"),
    ("maxout zero pieces", lambda t: fnn.Maxout(3, 0), ValueError,
     r"maxout: pieces must be a positive int, got 0"),
    # ------------------------------------------------------------ unknown names
    ("unknown activation", lambda t: fnn.Activation("rleu"), ValueError,
     r"unknown activation 'rleu'; did you mean 'relu'\?"),
    ("activation argument it lacks", lambda t: fnn.Activation("relu", alpha=0.1), ValueError,
     r"activation 'relu' takes no argument\(s\) \['alpha'\]"),
    ("unknown MLP activation", lambda t: fnn.MLP([3], activation="sigmod"), ValueError,
     r"unknown activation 'sigmod'; did you mean 'sigmoid'\?"),
    ("unknown initializer", lambda t: fnn.Dense(3, w_init="he_nromal"), ValueError,
     r"unknown initializer 'he_nromal'; did you mean 'he_normal'\?"),
    ("initializer factory not called", lambda t: fnn.Dense(3, w_init=fnn.initializers.he_normal),
     ValueError, r"he_normal makes an initializer: pass he_normal\(\) \(with parentheses\)"),
    ("unknown experiment", lambda t: experiments.load("quadrnt"), ValueError,
     r"unknown experiment 'quadrnt'; did you mean 'quadrant'\?"),
    ("unknown experiment config key",
     lambda t: experiments.config_for("quadrant", overrides={"stpes": 3}), ValueError,
     r"quadrant: config key must be one of 'steps', .*, got 'stpes'; did you mean 'steps'\?"),
    ("unknown optimizer", lambda t: compare_optimizers(t, "--optimizers", "adamm"), ValueError,
     r"--optimizers must be one of 'sgd', .*, got 'adamm'; did you mean 'adam'\?"),
    ("unknown on_nonfinite", lambda t: fit(on_nonfinite="rasie"), ValueError,
     r"fit: on_nonfinite must be one of None, 'raise', 'skip', got 'rasie'; did you mean 'raise'\?"),
    ("unknown early-stopping metric",
     lambda t: fit(early_stopping=fnn.EarlyStopping(monitor="acuracy"), epochs=3), ValueError,
     r"EarlyStopping: no metric 'acuracy'; did you mean 'accuracy'\?"),
    # ------------------------------------------------------------ hyperparameters
    ("negative learning rate", lambda t: fnn.optim.sgd(-0.1), ValueError,
     r"sgd: learning_rate must be a finite number >= 0, got -0.1"),
    ("NaN learning rate", lambda t: fnn.optim.adam(float("nan")), ValueError,
     r"adam: learning_rate must be a finite number >= 0, got nan"),
    ("infinite learning rate", lambda t: fnn.optim.rmsprop(float("inf")), ValueError,
     r"rmsprop: learning_rate must be a finite number >= 0, got inf"),
    ("negative momentum", lambda t: fnn.optim.sgd(0.1, momentum=-0.5), ValueError,
     r"sgd: momentum must be a finite number >= 0, got -0.5"),
    ("adam b1 of 1", lambda t: fnn.optim.adam(1e-3, b1=1.0), ValueError,
     r"adam: b1 must be a finite number in \[0, 1\), got 1.0"),
    ("clip norm 0", lambda t: fnn.optim.clip_by_global_norm(0.0), ValueError,
     r"clip_by_global_norm: max_norm must be a finite number > 0, got 0.0"),
    ("negative l2", lambda t: fnn.supervised(NET, l2=-1e-3), ValueError,
     r"supervised: l2 must be a finite number >= 0, got -0.001"),
    ("NaN l1", lambda t: fnn.supervised(NET, l1=float("nan")), ValueError,
     r"supervised: l1 must be a finite number >= 0, got nan"),
    ("negative init stddev", lambda t: fnn.initializers.normal(-1.0), ValueError,
     r"normal: stddev must be a finite number > 0, got -1.0"),
    ("supervised of a plain function", lambda t: fnn.supervised(lambda x: x), TypeError,
     r"supervised: net must be an fnn Layer \(e.g. fnn.serial\(\.\.\.\)\), got function"),
    # ------------------------------------------------------------ losses
    ("labels out of range", lambda t: fnn.losses.softmax_cross_entropy(LOGITS, np.array([0, 1, 2, 3])),
     ValueError, r"integer labels must lie in \[0, 3\) for 3 classes, got values from 0 to 3"),
    ("float labels", lambda t: fnn.losses.softmax_cross_entropy(LOGITS, np.zeros(4, np.float32)),
     ValueError, r"one-hot targets must have the logits' shape \(4, 3\), got \(4,\) \(integer "
                 r"labels must have an integer dtype\)"),
    ("logits without a class axis", lambda t: fnn.losses.softmax_cross_entropy(np.zeros(3), np.zeros(3, int)),
     ValueError, r"expected logits of shape \(batch, classes\), got \(3,\)"),
    ("mse of unequal shapes", lambda t: fnn.losses.mse(np.zeros((4, 3)), np.zeros((4, 2))), ValueError,
     r"mse: predictions and targets must have the same shape, got \(4, 3\) and \(4, 2\)"),
    # ------------------------------------------------------------ fit: data
    ("fit labels out of range", lambda t: fit(data=(X, with_value(Y, 4, 5))), ValueError,
     r"fit: integer labels must lie in \[0, 3\) for a network with 3 outputs, got values from 0 to 5"),
    ("fit float labels", lambda t: fit(data=(X, Y.astype(np.float32))), ValueError,
     r"one-hot targets must have the logits' shape \(12, 3\), got \(12,\)"),
    ("fit wrong feature size", lambda t: fit(data=(np.ones((12, 5), np.float32), Y)), ValueError,
     r"fit: the params and state do not fit serial on inputs \(5,\):\n  params\['dense_0'\]"
     r"\['w'\]: expected float32\[5,4\], got float32\[2,4\]"),
    ("fit validation of the wrong size",
     lambda t: fit(validation_data=(np.ones((4, 3), np.float32), Y[:4])), ValueError,
     r"fit\(validation_data\): its examples have shapes \(\(3,\), \(\)\), the training data's "
     r"\(\(2,\), \(\)\)"),
    ("fit x and y of different lengths", lambda t: fit(data=(X, Y[:10])), ValueError,
     r"fit: every array in data needs the same leading \(example\) axis, got shapes "
     r"\[\(12, 2\), \(10,\)\]"),
    ("fit empty dataset", lambda t: fit(data=(X[:0], Y[:0])), ValueError, r"fit: data has 0 examples"),
    ("fit no arrays", lambda t: fit(data=()), ValueError, r"fit: data is empty \(a pytree without arrays\); expected e.g. \(x, y\)"),
    ("fit data not a pair", lambda t: fit(data=(X,)), ValueError,
     r"fit: supervised data must be a pair \(x, y\), got tuple of 1"),
    ("fit NaN input", lambda t: fit(data=(with_value(X, (3, 1), np.nan), Y), check_finite_inputs=True),
     ValueError, r"fit: data\[0\] holds 1 non-finite value\(s\) \(NaN or inf\), the first at "
                 r"index \(3, 1\) \(nan\)"),
    ("fit inf in validation data",
     lambda t: fit(validation_data=(with_value(X, (0, 0), np.inf), Y), check_finite_inputs=True),
     ValueError, r"fit\(validation_data\): data\[0\] holds 1 non-finite value\(s\)"),
    # ------------------------------------------------------------ fit: arguments
    ("fit batch size 0", lambda t: fit(batch_size=0), ValueError,
     r"fit: batch_size must be a positive int or None \(full batch\), got 0"),
    ("fit batch larger than the data", lambda t: fit(batch_size=13), ValueError,
     r"fit: batch_size \(13\) is larger than the dataset \(12 examples\)"),
    ("fit fractional batch size", lambda t: fit(batch_size=2.5), ValueError,
     r"fit: batch_size must be a positive int or None \(full batch\), got 2.5"),
    ("fit zero epochs", lambda t: fit(epochs=0), ValueError, r"fit: epochs must be a positive int, got 0"),
    ("evaluate batch size 0", lambda t: fnn.evaluate(fnn.supervised(NET), PARAMS, {}, (X, Y), batch_size=0),
     ValueError, r"evaluate: batch_size must be a positive int or None \(full batch\), got 0"),
    ("fit optimizer by name", lambda t: fit(optimizer="sgd"), TypeError,
     r"fit: optimizer must have init and update \(an fnn.optim or optax optimizer such as "
     r"fnn.optim.sgd\(0.1\)\), got str"),
    ("fit objective not callable", lambda t: fit(objective=NET.init(KEY, (2,))), TypeError,
     r"fit: objective must be a function \(params, state, batch, key, train\)"),
    ("fit epochs_per_call 0", lambda t: fit(epochs_per_call=0), ValueError,
     r"fit: epochs_per_call must be a positive int or None, got 0"),
    ("fit checkpoint_every 0", lambda t: fit(checkpoint_dir=t, checkpoint_every=0), ValueError,
     r"fit: checkpoint_every must be a positive int or None, got 0"),
    ("fit resume without a directory", lambda t: fit(resume=True), ValueError,
     r"fit: resume=True needs checkpoint_dir"),
    ("fit early stopping patience 0",
     lambda t: fit(early_stopping=fnn.EarlyStopping(monitor="loss", patience=0)), ValueError,
     r"EarlyStopping: patience must be a positive int, got 0"),
    ("fit callback not callable", lambda t: fit(callbacks=[3]), TypeError,
     r"fit: callbacks must be a function f\(epoch, metrics\) -> stop\?, f\(epoch, metrics, "
     r"state\) -> stop\? or an fnn.train.hooks.Hook, got 3"),
    # ------------------------------------------------------------ files and directories
    ("checkpoint of random bytes", lambda t: checkpoint.restore(garbage(t)), ValueError,
     r"garbage.npz' is not a readable fnn checkpoint \(truncated, corrupted or not an .npz archive\)"),
    ("checkpoint that is a plain npz", lambda t: checkpoint.restore(plain_npz(t)), ValueError,
     r"plain.npz' is an .npz archive without manifest.json: not an fnn checkpoint"),
    ("checkpoint that does not exist", lambda t: checkpoint.restore(t / "nope.npz"), ValueError,
     r"no checkpoint file at '.*nope.npz'"),
    ("checkpoint of another model",
     lambda t: checkpoint.restore(saved(t), {"params": OTHER_PARAMS}), ValueError,
     r"key path \['params'\]\['dense_2'\]\['b'\] is in the target but not in the checkpoint"),
    ("checkpoint dtype mismatch",
     lambda t: checkpoint.restore(saved(t), {"params": jax.tree.map(lambda a: a.astype("float16"),
                                                                     PARAMS)}), ValueError,
     r"at \['params'\]\['dense_0'\]\['b'\]: dtype float32 in the checkpoint, float16 in the target"),
    ("checkpoint into a missing directory",
     lambda t: checkpoint.save(a_file(t) / "c.npz", {"w": X}), ValueError,
     r"cannot write checkpoint '.*a_file.txt/c.npz': '.*a_file.txt' is not an existing directory"),
    ("checkpoint manager under a file",
     lambda t: checkpoint.CheckpointManager(a_file(t) / "ckpt").save(0, {"w": X}), ValueError,
     r"cannot create the checkpoint directory '.*a_file.txt/ckpt': Not a directory"),
    ("fit checkpoint_dir is a file", lambda t: fit(checkpoint_dir=a_file(t)), ValueError,
     r"CheckpointManager: '.*a_file.txt' exists and is not a directory"),
    ("checkpoint of a string leaf", lambda t: checkpoint.save(t / "c.npz", {"name": "text"}), TypeError,
     r"checkpoint: cannot save the leaf at \['name'\]: str is not an array or number"),
    ("checkpoint file name", lambda t: checkpoint.save(t / "c.ckpt", {"w": X}), ValueError,
     r"checkpoint.save: the file name must end in .npz, got '.*c.ckpt'"),
    ("checkpoint keep 0", lambda t: checkpoint.CheckpointManager(t, keep=0), ValueError,
     r"CheckpointManager: keep must be a positive int or None, got 0"),
    ("data file of the wrong format", lambda t: read_idx(garbage(t, "images.idx")), ValueError,
     r"read_idx: .*images.idx is not an IDX file: magic number"),
    ("experiment output dir not writable",
     lambda t: experiments.run_experiment("backprop_example", a_file(t)), ValueError,
     r"run_experiment: cannot write results to '.*a_file.txt/backprop_example': Not a directory; "
     r"pass an out_dir you can write to"),
]


def test_there_are_at_least_forty_distinct_cases():
    assert len(CASES) >= 40
    assert len({name for name, *_ in CASES}) == len(CASES)


@pytest.mark.parametrize("call, error, message",
                         [pytest.param(c, e, m, id=name) for name, c, e, m in CASES])
def test_bad_input_fails_clearly(tmp_path, call, error, message):
    with pytest.raises(error, match=message):
        call(tmp_path)
