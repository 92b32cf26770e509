"""One page's training session: data, network, the train state, and the frames it sends.

Every frame is one call of fnn's compiled epoch engine (:func:`fnn.train.engine.compiled_epochs`,
the loop ``fnn.fit`` runs) training a chunk of epochs from the current state, so a page's run of
E epochs is bit for bit ``fnn.fit(objective, params, optimizer, train, epochs=E,
batch_size=B, seed=S)`` (what :meth:`Session.export_script` writes). The optimizer is
``fnn.optim.inject_hyperparams(fnn.optim.<name>)``: its learning rate and other numbers live in
the optimizer state, so changing them goes on training without a recompilation. The objective
has both penalties, L1 and L2, with their weights as runtime inputs (:func:`template`), so a
change of the regularization or its rate compiles nothing either. What a frame shows (losses,
norms, every neuron's map) is one compiled program, :func:`observe`, keyed by structure.

The plane: the data sets of :mod:`fnn.data.toy` live in about [-1, 1]^2; the network sees the
features of u = SCALE * x (TensorFlow Playground's [-6, 6] plane):
u1, u2, u1^2, u2^2, u1 u2, sin u1, sin u2 (those switched on, in that order).
Classification: ``fnn.MLP(shape + [2])`` with softmax cross-entropy (class 1 drawn blue, at
+1; the map shows p1 - p0 in [-1, 1]); regression: ``fnn.MLP(shape + [1])`` with mse.
"""
from __future__ import annotations

import base64
import functools
import json
import math
import time

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn import activations, initializers, losses, optim
from fnn.app.playground.config import (ACTIVATIONS, COMPARE_KEYS, DATASETS, FEATURES,
                                      INITIALIZERS, MAX_VARIANTS, OPTIMIZERS, REG_DATASETS,
                                      optimizer_hyperparams, validate)
from fnn.data import toy
from fnn.train import TrainState, checked_step
from fnn.train.engine import EpochLoop, compiled_epochs, epoch_keys, mean_metrics
from fnn.optim import hyperparams_of, with_hyperparams
from fnn.train.programs import with_hyperparameters

__all__ = ["Session", "SCALE", "GRID", "NEURON_GRID", "CHUNKS", "make_data", "features",
           "linear", "network", "output_sizes", "penalties", "build", "template", "structure",
           "init_params", "observe", "compiled_parts", "epoch_loop", "compare"]

SCALE = 5.0
GRID = 50            # output map: GRID x GRID cells
NEURON_GRID = 25     # each neuron's map
CHUNKS = (1, 10, 100)   # epochs per frame, chosen to keep frames near FRAME_S
FRAME_S = 0.08
_GENERATORS = {"circle": toy.circle, "xor": toy.xor, "gauss": toy.gaussian,
               "spiral": toy.spiral, "moons": toy.moons, "reg-plane": toy.plane,
               "reg-gauss": toy.multi_gaussian}
# Keys whose change rebuilds the data / the network (a new run); the others go on training.
DATA_KEYS = ("problem", "dataset", "regDataset", "noise", "percTrainData", "numPoints", "seed")
NET_KEYS = ("networkShape", "activation", "initializer", "optimizer", "batchSize", *FEATURES)
# Keys of runtime numbers: the penalty (any kind, any rate) and the optimizer's numbers.
PENALTY_KEYS = ("regularization", "regularizationRate")


# What the page's menus offer (sent with every full frame).
OPTIONS = {"datasets": list(DATASETS), "regDatasets": list(REG_DATASETS),
           "activations": list(ACTIVATIONS), "optimizers": list(OPTIMIZERS),
           "initializers": list(INITIALIZERS), "compareKeys": list(COMPARE_KEYS),
           "hyperparams": {o: optimizer_hyperparams(o) for o in OPTIMIZERS}}


def linear(z):
    """The 'linear' activation: the identity."""
    return z


def make_data(cfg: dict):
    """``(x_train, y_train, x_test, y_test)`` in data coordinates: ``numPoints`` points of the
    chosen set (noise = cfg['noise'] / 100, seed = cfg['seed']); the first ``percTrainData``
    percent train, the rest test. y: int32 classes, or float32 (n, 1) targets."""
    name = cfg["dataset"] if cfg["problem"] == "classification" else cfg["regDataset"]
    x, y = _GENERATORS[name](cfg["numPoints"], noise=cfg["noise"] / 100, seed=cfg["seed"])
    if cfg["problem"] == "regression":
        y = y[:, None]
    k = int(cfg["numPoints"] * cfg["percTrainData"] / 100)
    return x[:k], y[:k], x[k:], y[k:]


def features(cfg: dict, x):
    """(n, 2) data coordinates -> (n, F) float32 network inputs (u = SCALE * x)."""
    u1, u2 = SCALE * x[:, 0], SCALE * x[:, 1]
    cols = {"x": u1, "y": u2, "xSquared": u1 ** 2, "ySquared": u2 ** 2, "xTimesY": u1 * u2,
            "sinX": np.sin(u1), "sinY": np.sin(u2)}
    return np.stack([cols[k] for k in FEATURES if cfg[k]], axis=1).astype(np.float32)


def network(sizes, activation: str, initializer: str = "glorot_uniform"):
    """``(net, act)``: ``fnn.MLP(sizes)`` with the activation and weight initializer named."""
    act = linear if activation == "linear" else activations.get(activation)
    return fnn.MLP(list(sizes), activation=act, w_init=initializers.get(initializer)), act


def output_sizes(cfg: dict) -> tuple:
    """The MLP's layer sizes: the hidden shape, then 2 classes or 1 regression target."""
    return (*cfg["networkShape"], 2 if cfg["problem"] == "classification" else 1)


def penalties(cfg: dict) -> dict:
    """``{'l1': rate or 0, 'l2': rate or 0}``: the penalty weights of the configuration."""
    rate = cfg["regularizationRate"]
    return {"l1": rate if cfg["regularization"] == "L1" else 0.0,
            "l2": rate if cfg["regularization"] == "L2" else 0.0}


def build(cfg: dict):
    """``(net, objective, optimizer, activation)`` for a configuration (the objective with
    only its nonzero penalties, as ``fnn.supervised`` takes them)."""
    net, act = network(output_sizes(cfg), cfg["activation"], cfg["initializer"])
    loss = losses.softmax_cross_entropy if cfg["problem"] == "classification" else losses.mse
    objective = fnn.supervised(net, loss, **penalties(cfg))
    return net, objective, make_optimizer(cfg), act


def optimizer_args(cfg: dict) -> dict:
    """The optimizer's keyword arguments (sgd's momentum only when > 0)."""
    args = {"learning_rate": cfg["learningRate"], **cfg["optimizerArgs"]}
    if cfg["optimizer"] == "sgd" and not args.get("momentum"):
        args.pop("momentum", None)
    return args


def make_optimizer(cfg: dict):
    return optim.inject_hyperparams(getattr(optim, cfg["optimizer"]))(**optimizer_args(cfg))


@functools.lru_cache(maxsize=64)
def template(sizes: tuple, activation: str, classify: bool):
    """``(net, objective)`` of a structure, the objective with BOTH penalties present: its
    hyperparameters ``{'l1', 'l2'}`` (:func:`penalties`, zero for the kind switched off) are
    runtime inputs, so no penalty kind or rate is compiled in. A zero weight adds exact
    zeros (0 * penalty to the loss, 0 * w to the gradient): the numbers of the objective
    without that penalty."""
    net, _ = network(sizes, activation)
    loss = losses.softmax_cross_entropy if classify else losses.mse
    return net, fnn.supervised(net, loss, l1=1.0, l2=1.0)


def structure(cfg: dict) -> tuple:
    """What the compiled code of a configuration's network is made of (hashable)."""
    return output_sizes(cfg), cfg["activation"], cfg["problem"] == "classification"


# XLA's backend optimization level 0 compiles :func:`observe` (run once per frame: the speed of
# its code hardly matters) in about half the time; its losses may differ from fnn.evaluate's
# by an ulp. Not for init_params: its normal initializers would differ from the exported
# script's jax.jit(net.init) by an ulp.
FAST_COMPILE = {"xla_backend_optimization_level": 0}


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def init_params(sizes: tuple, activation: str, initializer: str, n_in: int, key):
    """``net.init(key, (n_in,))[0]`` as ONE compiled program per structure (eager, each new
    layer shape compiles its own small ops). The exported script initialises the same way:
    under jit, XLA may fuse a normal initializer's ops differently from eager (an ulp)."""
    return network(sizes, activation, initializer)[0].init(key, (n_in,))[0]


@functools.partial(jax.jit, static_argnums=0, compiler_options=FAST_COMPILE)
def observe(struct: tuple, penalty: dict, params, train, test, grid):
    """Everything a frame shows of the state, as ONE compiled program per structure and
    shapes (the penalty weights are inputs). Returns a dict:

    * ``train``, ``test``: the data losses as ``fnn.evaluate`` computes them
      (:func:`fnn.train.engine.mean_metrics`, one batch, to an ulp: see FAST_COMPILE; NaN
      without test points);
    * ``weight``, ``grad``: ``[L]`` Frobenius norms of each layer's weights and of the
      training objective's gradient (penalty included);
    * ``layers``: ``[h_1, ..., h_L-1, out]`` on the ``grid`` features (``(G, units)``, the
      output ``(G,)`` in [-1, 1]: p1 - p0 for classification, the clipped prediction for
      regression);
    * ``dead`` (ReLU networks only): per hidden layer, ``(units,)`` True where the unit is <= 0 on
      every training point (a dead ReLU).
    """
    sizes, activation, classify = struct
    objective = with_hyperparams(template(*struct)[1], penalty)
    act = network(sizes, activation)[1]
    names = sorted(params, key=lambda k: int(k.split("_")[1]))

    def hidden_and_out(feats):
        h, outs = feats, []
        for i, name in enumerate(names):
            z = h @ params[name]["w"] + params[name]["b"][None, :]
            h = act(z) if i < len(names) - 1 else z
            outs.append(h)
        return outs

    loss = lambda d: mean_metrics(objective, params, {}, d, d[0].shape[0])["loss"]
    grads = jax.grad(lambda p: objective(p, {}, train, None, False)[0])(params)
    norm = lambda a: jnp.sqrt(jnp.sum(jnp.square(a)))
    outs = hidden_and_out(grid)
    last = outs[-1]
    outs[-1] = (jnp.tanh((last[:, 1] - last[:, 0]) / 2) if classify
                else jnp.clip(last[:, 0], -1, 1))
    out = {"train": loss(train),
           "test": loss(test) if test[0].shape[0] else jnp.float32(jnp.nan),
           "weight": jnp.stack([norm(params[k]["w"]) for k in names]),
           "grad": jnp.stack([norm(grads[k]["w"]) for k in names]), "layers": outs}
    if activation == "relu":
        out["dead"] = [jnp.all(h <= 0, axis=0) for h in hidden_and_out(train[0])[:-1]]
    return out


_PARTS: dict = {}     # build key -> compiled_parts(...), the newest MAX_PARTS kept
MAX_PARTS = 16


def compiled_parts(cfg: dict, n_train: int):
    """``(net, objective, loop)`` for a configuration: the :func:`template` objective (both
    penalties, runtime weights) and the engine's loop of it, cached on what shapes the
    compiled code (architecture, features, problem, optimizer kind and arguments' names,
    batch size, training points; not the penalty or any rate): a new data set of the same
    size, another penalty, or going back to earlier settings reuses the compiled engine
    (found by the identity of the loop's objects, without tracing it again)."""
    key = json.dumps([cfg[k] for k in NET_KEYS] + [cfg["problem"], n_train, cfg["numPoints"],
                                                    sorted(optimizer_args(cfg))])
    if key not in _PARTS:
        net, objective = template(*structure(cfg))
        loop = functools.partial(epoch_loop, objective, make_optimizer(cfg), cfg["batchSize"],
                                 n_train)
        _PARTS[key] = (net, objective, loop)
        while len(_PARTS) > MAX_PARTS:
            _PARTS.pop(next(iter(_PARTS)))
    parts = _PARTS.pop(key)
    _PARTS[key] = parts                    # newest last
    return parts


def epoch_loop(objective, optimizer, batch_size: int, n_train: int, hp) -> EpochLoop:
    """The engine's loop for ``objective`` and ``optimizer`` with their hyperparameters ``hp``
    (:func:`fnn.train.programs.hyperparameters`, runtime inputs of the compiled program)."""
    objects = with_hyperparameters(hp, objective=objective, optimizer=optimizer)
    return EpochLoop(checked_step(objects["objective"], objects["optimizer"]), batch_size,
                     n_train, None, objective=objects["objective"])

def _u8(a) -> str:
    """Values in [-1, 1] -> base64 of uint8 (0 = -1, 255 = +1), row-major."""
    q = np.round((np.clip(np.nan_to_num(np.asarray(a, np.float64)), -1, 1) + 1) * 127.5)
    return base64.b64encode(q.astype(np.uint8).tobytes()).decode("ascii")


def _finite(v: float):
    return v if math.isfinite(v) else None


class Session:
    """The state behind one tab. ``update(changes)`` applies settings (validated),
    ``frame(count)`` trains and returns the next frame, ``step()`` trains one epoch."""

    def __init__(self, config: dict | None = None):
        self.config = validate(config or {})
        self.compiles = 0
        self._new_data()
        self._new_run()

    # ------------------------------------------------------------------ building
    def _new_data(self):
        c = self.config
        self.raw = make_data(c)
        xs = np.concatenate([self.raw[0], self.raw[2]])
        self.extent = float(max(1.0, math.ceil(np.abs(xs).max() * 10 + 1) / 10))
        g = np.linspace(-self.extent, self.extent, GRID, dtype=np.float32)
        gx, gy = np.meshgrid(g, -g)          # row 0 is the top of the plane (largest x2)
        self.grid = np.stack([gx.ravel(), gy.ravel()], axis=1)

    def _new_run(self):
        """A fresh network and train state (epoch 0) for the current configuration."""
        c = self.config
        self.train = (jnp.asarray(features(c, self.raw[0])), jnp.asarray(self.raw[1]))
        self.test = (jnp.asarray(features(c, self.raw[2])), jnp.asarray(self.raw[3]))
        self.grid_feats = jnp.asarray(features(c, self.grid))
        n_train, n_in = (int(d) for d in self.train[0].shape)
        self.net, self.template, self.loop = compiled_parts(c, n_train)
        self.optimizer = make_optimizer(c)   # its numbers live in its state, not in the code
        self._set_penalty(c)
        params = init_params(output_sizes(c), c["activation"], c["initializer"], n_in,
                             jax.random.key(c["seed"]))
        self.ts = jax.tree.map(jnp.array, TrainState.create(params, self.optimizer))
        self.keys = epoch_keys(jax.random.key(c["seed"]))
        self.epoch, self.chunk, self.warm = 0, CHUNKS[1], set()
        self.history = {"epoch": [], "train": [], "test": []}
        self.norm_history = []
        self.constant_since = 0       # settings unchanged since this epoch (for the export)
        self.diverged = False
        self._measure()

    def _set_penalty(self, cfg: dict):
        """The penalty weights (runtime inputs) and the objective with them."""
        self.penalty = {k: jnp.asarray(v) for k, v in penalties(cfg).items()}
        self.objective = with_hyperparams(self.template, self.penalty)

    def update(self, changes: dict) -> str:
        """Apply ``changes`` (validated against the current config). Returns what happened:
        'data' (new data and run), 'run' (new network), 'hyper' (training goes on) or
        'view' (display only)."""
        old, new = self.config, validate(changes, self.config)
        self.config = new
        if any(old[k] != new[k] for k in DATA_KEYS):
            self._new_data()
            self._new_run()
            return "data"
        if any(old[k] != new[k] for k in NET_KEYS) or \
                set(optimizer_args(old)) != set(optimizer_args(new)):
            self._new_run()
            return "run"
        if penalties(old) != penalties(new):
            self._set_penalty(new)
        if optimizer_args(old) != optimizer_args(new):
            hp = dict(self.ts.opt_state.hyperparams)
            for k, v in optimizer_args(new).items():
                hp[k] = jnp.asarray(v, hp[k].dtype)
            self.ts = self.ts._replace(opt_state=self.ts.opt_state._replace(hyperparams=hp))
            self.optimizer = make_optimizer(new)
        if penalties(old) != penalties(new) or optimizer_args(old) != optimizer_args(new):
            self.constant_since = self.epoch
            return "hyper"
        return "view"

    def reset(self):
        """A fresh network (same data and settings), epoch 0."""
        self._new_run()

    # ------------------------------------------------------------------ training
    def train_epochs(self, count: int):
        """Train ``count`` epochs from the current state (one compiled call)."""
        if self.diverged:
            return
        hp = {"objective": self.penalty,      # the penalty weights and the optimizer's numbers
              "optimizer": jax.tree.map(jnp.asarray, hyperparams_of(self.loop.args[1]))}
        program = compiled_epochs(self.loop, hp, self.ts, self.train, None)
        self.ts, _, _ = program(hp, self.ts, self.train, None, self.keys, self.epoch, count)
        self.epoch += count
        self._measure()

    def frame(self) -> dict:
        """Train one chunk (its size adapted to keep frames near FRAME_S) and return the frame."""
        t, warm = time.perf_counter(), self.chunk in self.warm
        self.train_epochs(self.chunk)
        self.warm.add(self.chunk)
        dt = time.perf_counter() - t
        i = CHUNKS.index(self.chunk)
        if warm:                     # (a first call compiles: its time says nothing)
            if dt < FRAME_S / 3 and i + 1 < len(CHUNKS):
                self.chunk = CHUNKS[i + 1]
            elif dt > 2 * FRAME_S and i > 0:
                self.chunk = CHUNKS[i - 1]
        return self.snapshot()

    def step(self) -> dict:
        self.train_epochs(1)
        return self.snapshot()

    def _measure(self):
        """Training and test loss, weight and gradient norms per layer (one compiled call)."""
        seen = jax.device_get(observe(structure(self.config), self.penalty, self.ts.params,
                                      self.train, self.test, self.grid_feats))
        self.seen = seen
        train, test, w, g = (float(seen["train"]), float(seen["test"]), seen["weight"],
                             seen["grad"])
        self.train_loss, self.test_loss = train, test
        if not math.isfinite(train):
            self.diverged = True
        self.history["epoch"].append(self.epoch)
        self.history["train"].append(_finite(train))
        self.history["test"].append(_finite(test))
        self.norm_history.append({"epoch": self.epoch,
                                  "weight": [_finite(float(v)) for v in w],
                                  "grad": [_finite(float(v)) for v in g]})

    # ------------------------------------------------------------------ what the page sees
    def snapshot(self, full: bool = False) -> dict:
        """The frame: epoch, losses, the output map and each neuron's map (base64 uint8,
        -1..1), the weights, norms, dead ReLU units, and (``full``) the data and history."""
        c, params = self.config, jax.device_get(self.ts.params)
        hidden, out = self.seen["layers"][:-1], self.seen["layers"][-1]
        sub = (np.arange(NEURON_GRID) * (GRID - 1) / (NEURON_GRID - 1)).round().astype(int)
        pick = lambda v: np.asarray(v).reshape(GRID, GRID)[np.ix_(sub, sub)]
        scaled = lambda v: v / max(1.0, float(np.nanmax(np.abs(v))) if np.all(np.isfinite(v))
                                   else 1.0)
        feats = np.asarray(self.grid_feats)
        neurons = [[_u8(scaled(pick(feats[:, j]))) for j in range(feats.shape[1])]]
        neurons += [[_u8(scaled(pick(h[:, j]))) for j in range(h.shape[1])] for h in hidden]
        names = sorted(params, key=lambda k: int(k.split("_")[1]))
        weights = [np.round(np.asarray(params[k]["w"], np.float64), 4).tolist() for k in names]
        biases = [np.round(np.asarray(params[k]["b"], np.float64), 4).tolist() for k in names]
        dead = [np.flatnonzero(d).tolist() for d in self.seen.get("dead", [])]
        frame = {"type": "frame", "epoch": self.epoch, "trainLoss": _finite(self.train_loss),
                 "testLoss": _finite(self.test_loss), "diverged": self.diverged,
                 "output": _u8(out), "grid": GRID, "neuronGrid": NEURON_GRID,
                 "neurons": neurons, "weights": json_safe(weights),
                 "biases": json_safe(biases), "norms": self.norm_history[-1], "dead": dead,
                 "chunk": self.chunk, "extent": self.extent}
        if full:
            frame.update(self.describe())
        return frame

    def describe(self) -> dict:
        """The data points, the config, the histories (sent on a new run)."""
        xtr, ytr, xte, yte = self.raw
        flat = lambda y: np.asarray(y, np.float64).reshape(-1)
        return {"config": self.config,
                "train": {"x": np.round(xtr, 4).tolist(), "y": flat(ytr).round(4).tolist()},
                "test": {"x": np.round(xte, 4).tolist(), "y": flat(yte).round(4).tolist()},
                "history": self.history, "normHistory": self.norm_history,
                "featureNames": [FEATURES[k] for k in FEATURES if self.config[k]],
                "options": OPTIONS}

    def checkpoint(self, path) -> None:
        """Save the run as an fnn checkpoint (params and optimizer state, with the config)."""
        fnn.checkpoint.save(path, {"params": self.ts.params, "opt_state": self.ts.opt_state},
                            metadata={"playground": self.config, "epoch": self.epoch,
                                      "train_loss": _finite(self.train_loss)})

    def export_script(self) -> str:
        """A Python program that reproduces this run with ``fnn.fit`` (see export.py)."""
        from fnn.app.playground.export import script
        return script(self.config, self.epoch, self.train_loss, exact=self.constant_since == 0)


def json_safe(tree):
    """Nested lists with NaN/inf replaced by None (JSON has neither)."""
    if isinstance(tree, list):
        return [json_safe(t) for t in tree]
    return tree if isinstance(tree, (int, float)) and math.isfinite(tree) else (
        None if isinstance(tree, float) else tree)


def compare(config: dict, key: str, values: list, epochs: int) -> dict:
    """Train len(values) variants of ``config`` that differ in ``key`` for ``epochs`` epochs with
    ``fnn.sweep``: learning rates and seeds as one vmapped sweep of N runs, other keys (the
    optimizer, activation, batch size) one sweep per value. Returns loss curves and maps."""
    if key not in COMPARE_KEYS:
        raise ValueError(f"compare: key must be one of {list(COMPARE_KEYS)}, got {key!r}")
    if not isinstance(values, list) or not 1 <= len(values) <= MAX_VARIANTS:
        raise ValueError(f"compare: values must be a list of 1 to {MAX_VARIANTS} settings, "
                         f"got {values!r}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or not 1 <= epochs <= 5000:
        raise ValueError(f"compare: epochs must be an integer in [1, 5000], got {epochs!r}")
    cfgs = [validate({key: v}, config) for v in values]
    raw = make_data(cfgs[0])
    variants = []
    if key in ("learningRate", "seed"):
        groups = [(cfgs, True)]
    else:
        groups = [([c], False) for c in cfgs]
    for group, vector in groups:
        c = group[0]
        net, objective, _, _ = build(c)
        train = (features(c, raw[0]), raw[1])
        n_in = train[0].shape[1]
        args = {k: v for k, v in optimizer_args(c).items()}
        hparams = {"learning_rate": np.array([g["learningRate"] for g in group], np.float32)}
        args.pop("learning_rate")
        make = lambda learning_rate, _a=args, _o=c["optimizer"]: getattr(optim, _o)(
            learning_rate, **_a)
        res = fnn.sweep(objective, lambda k: net.init(k, (n_in,))[0], make, train,
                        seeds=np.array([g["seed"] for g in group], np.int32), hparams=hparams,
                        epochs=epochs, batch_size=c["batchSize"])
        extent = float(max(1.0, math.ceil(np.abs(np.concatenate([raw[0], raw[2]])).max()
                                          * 10 + 1) / 10))
        g = np.linspace(-extent, extent, GRID, dtype=np.float32)
        gx, gy = np.meshgrid(g, -g)
        grid = features(c, np.stack([gx.ravel(), gy.ravel()], axis=1))
        for i, gc in enumerate(group):
            p = res.run(i)["params"]
            curve = np.asarray(res.history["loss"][i], np.float64)
            final = fnn.evaluate(objective, p, {}, train)["loss"]
            variants.append({"value": gc[key], "loss": json_safe(curve.round(5).tolist()),
                             "finalLoss": _finite(final), "diverged": not math.isfinite(final),
                             "output": _u8(jax.device_get(observe(
                                 structure(c), penalties(c), p, train, train, grid)
                                 ["layers"][-1]))})
    return {"type": "compare", "key": key, "epochs": epochs, "variants": variants,
            "grid": GRID}
