"""The page's run as a short Python program: the same data, network, seed and settings trained
by ``fnn.fit``; it prints its final training loss and checks it against the page's."""
from __future__ import annotations

from fnn.app.playground.config import FEATURES

__all__ = ["script"]

_DATA = {"circle": "circle", "xor": "xor", "gauss": "gaussian", "spiral": "spiral",
         "moons": "moons", "reg-plane": "plane", "reg-gauss": "multi_gaussian"}
_FEATURE_CODE = {"x": "u1", "y": "u2", "xSquared": "u1 ** 2", "ySquared": "u2 ** 2",
                 "xTimesY": "u1 * u2", "sinX": "np.sin(u1)", "sinY": "np.sin(u2)"}

TEMPLATE = '''"""fnn playground export: {title}.
{note}
Run: python this_file.py  (prints the final training loss; exits 1 if it differs from the
page's by more than 1e-6)."""
import sys

import jax
import numpy as np

import fnn

CONFIG = {config!r}
EPOCHS = {epochs}
PAGE_TRAIN_LOSS = {loss!r}
SCALE = {scale!r}  # the network sees features of u = SCALE * x (the playground's plane)

x, y = fnn.data.{data}({n}, noise={noise!r}, seed={seed})
{target}k = int({n} * {perc} / 100)                       # train:test = {perc}:{rest}


def features(x):
    u1, u2 = SCALE * x[:, 0], SCALE * x[:, 1]
    return np.stack([{feats}], axis=1).astype(np.float32)


def linear(z):
    return z


train, test = (features(x[:k]), y[:k]), (features(x[k:]), y[k:])
net = fnn.MLP({sizes}, activation={activation}, w_init=fnn.initializers.get({init!r}))
# net.init compiled as one program, as the page does (XLA may round a normal init by an ulp
# differently from the op-by-op net.init)
params = jax.jit(net.init, static_argnums=1)(jax.random.key({seed}), (train[0].shape[1],))[0]
objective = fnn.supervised(net, fnn.losses.{loss_fn}{penalty})
optimizer = fnn.optim.inject_hyperparams(fnn.optim.{optimizer})({opt_args})
res = fnn.fit(objective, params, optimizer, train, epochs=EPOCHS, batch_size={batch},
              seed={seed}, progress=False)
train_loss = fnn.evaluate(objective, res.params, {{}}, train)["loss"]
test_loss = fnn.evaluate(objective, res.params, {{}}, test)["loss"] if len(test[1]) else float("nan")
print(f"epochs {{EPOCHS}}: training loss {{train_loss:.8f}}, test loss {{test_loss:.8f}}")
if PAGE_TRAIN_LOSS is not None and not abs(train_loss - PAGE_TRAIN_LOSS) <= 1e-6:
    print(f"differs from the page's training loss {{PAGE_TRAIN_LOSS:.8f}}")
    sys.exit(1)
'''


def script(config: dict, epochs: int, train_loss: float, *, exact: bool = True) -> str:
    """The program for ``config`` trained ``epochs`` epochs; ``train_loss`` is the page's final
    training loss (checked to 1e-6 when ``exact``: the settings never changed mid-run)."""
    from fnn.app.playground.session import SCALE, optimizer_args
    classify = config["problem"] == "classification"
    name = config["dataset"] if classify else config["regDataset"]
    penalty = ""
    if config["regularization"] != "none" and config["regularizationRate"]:
        penalty = f", {config['regularization'].lower()}={config['regularizationRate']!r}"
    note = ("" if exact else "\nThe page changed a setting during the run; this program trains "
            "with the final settings throughout, so its loss is not checked.\n")
    loss = float(train_loss) if exact and train_loss == train_loss else None
    return TEMPLATE.format(
        title=f"{name}, {config['networkShape']} {config['activation']}, {epochs} epochs",
        note=note, config=config, epochs=epochs, loss=loss, scale=SCALE, data=_DATA[name],
        n=config["numPoints"], noise=config["noise"] / 100, seed=config["seed"],
        target="" if classify else "y = y[:, None]                      # regression targets (n, 1)\n",
        perc=config["percTrainData"], rest=100 - config["percTrainData"],
        feats=", ".join(_FEATURE_CODE[k] for k in FEATURES if config[k]),
        sizes=[*config["networkShape"], 2 if classify else 1],
        activation="linear" if config["activation"] == "linear" else repr(config["activation"]),
        init=config["initializer"], loss_fn="softmax_cross_entropy" if classify else "mse",
        penalty=penalty, optimizer=config["optimizer"], batch=config["batchSize"],
        opt_args=", ".join(f"{k}={v!r}" for k, v in optimizer_args(config).items()))
