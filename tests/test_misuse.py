"""Misuses a new user makes, each failing (or warning) early with a message that names who,
what was expected and what was given. Every row is (id, a small callable, the exception or
warning type, a regex of the message); rows marked 'silent before' ran without any error
before these checks existed and gave wrong numbers.

To add a row, append a tuple to ROWS: the callable takes no argument."""
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import fnn
from fnn.models.gan import GAN, dense_generator
from fnn.models.vae import VAE

KEY = jax.random.key(0)
X = np.random.RandomState(0).randn(4, 2).astype(np.float32)
NET = fnn.serial(fnn.Dense(50), fnn.relu, fnn.Dense(4))
PARAMS, _ = NET.init(KEY, (2,))
OTHER_PARAMS, _ = fnn.serial(fnn.Dense(60), fnn.relu, fnn.Dense(4)).init(KEY, (2,))
BN_NET = fnn.serial(fnn.Dense(3), fnn.BatchNorm(), fnn.relu)
BN_PARAMS, BN_STATE = BN_NET.init(KEY, (2,))
CONV = fnn.serial(fnn.Conv2D(4, 3), fnn.relu)
CONV_PARAMS, _ = fnn.serial(fnn.Conv2D(4, 5), fnn.relu).init(KEY, (8, 8, 1))
IMAGES = np.zeros((2, 8, 8, 1), np.float32)


def block(width):
    """A user's layer factory without a return annotation (passed uncalled below)."""
    return fnn.serial(fnn.Dense(width), fnn.relu)


Y = np.array([0, 1, 2, 3], np.int32)
NAN_X = np.where(np.arange(8)[:, None] == 3, np.nan, np.ones((8, 2), np.float32))


def fit(objective, params, data, **kwargs):
    return fnn.fit(objective, params, fnn.optim.sgd(0.1), data, progress=False, **kwargs)


def bn_gan_step_without_state():
    gan = GAN(dense_generator(2, 2, (4,), output_activation=None),
              fnn.serial(fnn.Dense(4), fnn.BatchNorm(), fnn.relu, fnn.Dense(1)), 2)
    trees, _ = gan.init(KEY, (2,))
    step = fnn.train.gan_step(gan, fnn.optim.sgd(0.1), fnn.optim.sgd(0.1))
    return step(trees, step.init(trees), X, KEY)          # state=... forgotten


ROWS = [
    # ------------------------------------------------ params that do not fit (silent before)
    ("params of Dense(60) in a Dense(50) net", lambda: NET(OTHER_PARAMS, X), fnn.ParamsError,
     r"at \['dense_0'\]: dense: params hold w \(2, 60\), b \(60,\), but this layer has "
     r"units=50: expected w \(n_in, 50\), b \(50,\); were they made by another network's init"),
    ("gradient through params of another net",
     lambda: jax.grad(lambda p: jnp.sum(NET(p, X)))(OTHER_PARAMS), fnn.ParamsError,
     r"at \['dense_0'\]: dense: params hold w \(2, 60\)"),
    ("conv params with another kernel size", lambda: CONV(CONV_PARAMS, IMAGES), fnn.ParamsError,
     r"at \['conv_0'\]: conv: params hold w \(5, 5, 1, 4\), but this layer expects a kernel "
     r"\(3, 3, \*, 4\)"),
    ("check_params: a leaf of another shape",
     lambda: fnn.check_params(NET, (2,), OTHER_PARAMS), fnn.ParamsError,
     r"check_params: the params and state do not fit serial on inputs \(2,\):\n"
     r"  params\['dense_0'\]\['b'\]: expected float32\[50\], got float32\[60\]\n"
     r"  params\['dense_0'\]\['w'\]: expected float32\[2,50\], got float32\[2,60\]\n"
     r"  params\['dense_1'\]\['w'\]: expected float32\[50,4\], got float32\[60,4\]"),
    ("check_params: a missing and an unexpected layer",
     lambda: fnn.check_params(NET, (2,), {"dense_0": PARAMS["dense_0"],
                                          "dense_7": PARAMS["dense_1"]}),
     fnn.ParamsError, r"params\['dense_1'\]: missing \(expected \{'b': float32\[4\], "
                      r"'w': float32\[50,4\]\}\)\n  params\['dense_7'\]: unexpected entry"),
    ("check_params: ints where floats belong",
     lambda: fnn.check_params(NET, (2,), jax.tree.map(lambda a: a.astype(jnp.int32), PARAMS)),
     fnn.ParamsError, r"params\['dense_0'\]\['w'\]: expected float32\[2,50\], got int32\[2,50\]"),
    ("check_params: the input shape of another net",
     lambda: fnn.check_params(NET, (3,), PARAMS), fnn.ParamsError,
     r"params\['dense_0'\]\['w'\]: expected float32\[3,50\], got float32\[2,50\]"),
    ("check_params: a stateful net without its state",
     lambda: fnn.check_params(BN_NET, (2,), BN_PARAMS), fnn.ParamsError,
     r"state\['batchnorm_0'\]: missing \(expected \{'mean': float32\[3\], 'var': float32\[3\]\}\)"
     r"\nthis network carries state .*`fit\(\.\.\., model_state=state\)`"),
    ("per-example code without the batch axis", lambda: NET(PARAMS, X[0]), ValueError,
     r"dense: expected input of shape \(batch, \.\.\., 2\), got \(2,\); is it a single example\? "
     r"Layers take a batch: add the batch axis \(x\[None\]\), or apply fnn.per_example\(net\)"),
    # ------------------------------------------------ state
    ("BatchNorm without its state (KeyError before)",
     lambda: BN_NET.apply(BN_PARAMS, {}, X, train=True), fnn.ParamsError,
     r"at \['batchnorm_0'\]: batchnorm: state lacks \['mean', 'var'\] \(it holds \[\]\); this "
     r"layer keeps running statistics in the model state: pass the state that init returned"),
    ("BatchNorm with state None", lambda: BN_NET.apply(BN_PARAMS, None, X), fnn.ParamsError,
     r"serial: state is None, but this network carries state \(e.g. BatchNorm running "
     r"statistics\); pass the state that init returned"),
    ("BatchNorm GAN stepped without state=", bn_gan_step_without_state, fnn.ParamsError,
     r"at \['discriminator'\]\['batchnorm_0'\]: batchnorm: state lacks \['mean', 'var'\]"),
    ("per_example of a BatchNorm net in training",
     lambda: fnn.per_example(BN_NET).apply(BN_PARAMS, BN_STATE, X[0], train=True), ValueError,
     r"per_example\(serial\): in training this network's batch statistics \(BatchNorm\) need "
     r"the whole batch"),
    # ------------------------------------------------ constructors passed uncalled
    ("serial of the Dense class", lambda: fnn.serial(fnn.Dense, fnn.relu), TypeError,
     r"serial: child 0 is the layer constructor Dense, not a layer; did you mean Dense\(\.\.\.\)"),
    ("serial of Flatten uncalled", lambda: fnn.serial(fnn.Conv2D(2, 3), fnn.Flatten), TypeError,
     r"serial: child 1 is the layer constructor Flatten, not a layer"),
    ("residual of Dense uncalled", lambda: fnn.residual(fnn.Dense), TypeError,
     r"residual: child 'block' is the layer constructor Dense"),
    ("GAN of an uncalled MLP", lambda: GAN(fnn.MLP, fnn.Dense(1), 2), TypeError,
     r"GAN: generator is the layer constructor MLP, not a layer"),
    ("a user's factory uncalled", lambda: fnn.serial(block, fnn.Dense(2)).init(KEY, (3,)),
     ValueError, r"dense: units must be a positive int, got .* \(an array where a setting "
                 r"belongs: was a layer constructor passed without calling it"),
    ("Recurrent of a cell class", lambda: fnn.Recurrent(fnn.LSTMCell), TypeError,
     r"Recurrent: got the class LSTMCell, not a cell; did you mean LSTMCell\(hidden\)\?"),
    ("a layer constructor without its arguments", lambda: fnn.Dense(), TypeError,
     r"Dense\(\) missing 1 required positional argument: 'units'"),
    ("a class where a layer belongs", lambda: fnn.serial(fnn.Dense(2), fnn.Summary), TypeError,
     r"serial: child 1 is the class Summary, not a layer"),
    # ------------------------------------------------ bools are not ints
    ("VAE latent_dim True", lambda: VAE(fnn.Dense(2), fnn.Dense(2), True), ValueError,
     r"vae: latent_dim must be a positive int, got True"),
    ("GAN latent_dim True", lambda: GAN(fnn.Dense(2), fnn.Dense(1), True), ValueError,
     r"GAN: latent_dim must be a positive int, got True"),
    # ------------------------------------------------ keys
    ("GAN objective without a key",
     lambda: GAN(fnn.Dense(2), fnn.Dense(1), 2).objectives()["generator"](
         {"generator": {}, "discriminator": {}}, {}, X, None, False), ValueError,
     r"GAN: drawing z ~ N\(0, I\) and needs a key"),
    # ------------------------------------------------ training (fit, evaluate)
    ("fit given the network where the objective belongs", lambda: fit(NET, PARAMS, (X, Y)),
     TypeError, r"fit: got the network 'serial' where an objective belongs; wrap it: "
     r"fit\(fnn.supervised\(net, loss\), ...\)"),
    ("fit a BatchNorm net without its model state",
     lambda: fit(fnn.supervised(BN_NET), BN_PARAMS, (X, np.array([0, 1, 2, 0]))), fnn.ParamsError,
     r"(?s)fit: the params and state do not fit serial.*state\['batchnorm_0'\]: missing.*"
     r"fit\(..., model_state=state\)"),
    ("evaluate with params of another net (silent before)",
     lambda: fnn.evaluate(fnn.supervised(NET), OTHER_PARAMS, None, (X, Y)), fnn.ParamsError,
     r"evaluate: the params and state do not fit serial on inputs \(2,\)"),
    ("fit on NaN data without the guard (silent before)",
     lambda: fit(fnn.supervised(NET), PARAMS, (NAN_X, np.zeros(8, np.int32)), batch_size=4,
                 epochs=2), RuntimeWarning,
     r"fit: the loss became non-finite \(NaN or inf\) in epoch 0.*on_nonfinite='raise'"),
    ("fit validation data of another shape",
     lambda: fit(fnn.supervised(NET), PARAMS, (X, Y), validation_data=(np.ones((4, 3)), Y)),
     ValueError, r"fit\(validation_data\): its examples have shapes"),
    ("a stream whose batch changes shape",
     lambda: fit(fnn.supervised(NET), PARAMS, iter([(X, Y), (X[:3], Y[:3])]),
                 steps_per_epoch=2), ValueError,
     r"fit: batch 1 of the stream does not match batch 0"),
    ("data-parallel fit with a batch the devices do not divide",
     lambda: fit(fnn.supervised(NET), PARAMS, (np.ones((8, 2), np.float32), np.zeros(8, np.int32)),
                 batch_size=3, mesh=jax.make_mesh((2,), ("data",), devices=jax.devices()[:2])),
     ValueError, r"fit: the global batch \(3\) does not divide by the 2 devices of mesh axis "
     r"'data'"),
    # ------------------------------------------------ channels-first images
    ("an MNIST image given channels-first", lambda: CONV.init(KEY, (1, 28, 28)), UserWarning,
     r"conv: input_shape \(1, 28, 28\) looks channels-first; fnn is channels-last \(NHWC\): did "
     r"you mean \(28, 28, 1\)\?"),
]


def test_rows_have_distinct_ids():
    assert len({row[0] for row in ROWS}) == len(ROWS)


@pytest.mark.parametrize("call, kind, message", [pytest.param(*row[1:], id=row[0]) for row in ROWS])
def test_misuse_fails_clearly(call, kind, message):
    expect = pytest.warns if issubclass(kind, Warning) else pytest.raises
    with expect(kind, match=message):
        call()
