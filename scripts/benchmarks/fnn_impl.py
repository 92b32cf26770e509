"""fnn, written the way a user would: ``fnn.fit`` for an epoch (``precision=`` for the
bfloat16 rows), ``fnn.train_step`` for a step, ``fnn.sweep`` for many runs; and, for the ``cpu_grad`` rows, the baseline's own training
scan with fnn's XLA:CPU gradient rewrite (``fnn._cpu_grad.value_and_grad``) in place of
``jax.value_and_grad``."""
from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from benchmarks.jax_common import blocked, donated_updates, sgd_steps
from benchmarks.jax_impl import cpu_grad_matmul_model, cpu_grad_model
from fnn._cpu_grad import value_and_grad
from benchmarks.workloads import REFIT_TASKS, Runner, refit_loop


BF16 = "params=float32,compute=bfloat16,output=float32"


def _epoch(net, input_shape, data, config, loss=fnn.losses.softmax_cross_entropy,
           precision=None) -> Runner:
    """One ``fnn.fit`` epoch of Adam per call (under the mixed-precision policy ``precision``)."""
    params, _ = net.init(jax.random.key(0), input_shape)
    objective = fnn.supervised(net, loss, accuracy=False)
    opt = fnn.optim.adam(config["learning_rate"])
    x, y = jnp.asarray(data["x"]), jnp.asarray(data["y"])
    batch = config["batch_size"]
    run = lambda: fnn.fit(objective, params, opt, (x, y), epochs=1, batch_size=batch,
                          progress=False, precision=precision).params
    return Runner(blocked(run), (len(x) // batch) * batch)


def quadrant(data, config) -> Runner:
    from experiments import quadrant as q

    cfg = {**q.CONFIG, "steps": config["steps"]}
    _, train = q.fnn_trainer(cfg)  # fnn.fit, full batch, all steps in one scan
    return Runner(blocked(lambda: train().params), config["steps"])


def mlp(data, config, precision=None) -> Runner:
    *hidden, out = config["sizes"][1:]
    layers = [l for h in hidden for l in (fnn.Dense(h), fnn.relu)] + [fnn.Dense(out)]
    return _epoch(fnn.serial(*layers), (config["sizes"][0],), data, config, precision=precision)


def mlp_bf16(data, config) -> Runner:
    """The mlp row with bfloat16 compute (float32 params and Adam state)."""
    return mlp(data, config, precision=BF16)


def cnn(data, config, precision=None) -> Runner:
    c1, c2 = config["channels"]
    net = fnn.serial(fnn.Conv2D(c1, 3), fnn.relu, fnn.MaxPool(2), fnn.Conv2D(c2, 3), fnn.relu,
                     fnn.MaxPool(2), fnn.Flatten(), fnn.Dense(10))
    return _epoch(net, (28, 28, 1), data, config, precision=precision)


def cnn_bf16(data, config) -> Runner:
    """The cnn row with bfloat16 compute (float32 params and Adam state)."""
    return cnn(data, config, precision=BF16)


def gru_mnist1d(data, config) -> Runner:
    from experiments.mnist1d_gru import model

    return _epoch(model(config["hidden"]), (40,), data, config)


def lstm(data, config) -> Runner:
    """``config['steps']`` calls of the jitted, donating ``fnn.train_step``."""
    net = fnn.serial(fnn.Recurrent(fnn.LSTMCell(config["hidden"]), return_sequences=False),
                     fnn.Dense(1))
    params, state = net.init(jax.random.key(1), (config["length"], config["features"]))
    opt = fnn.optim.adam(config["learning_rate"])
    step = jax.jit(fnn.train_step(fnn.supervised(net, fnn.losses.mse), opt), donate_argnums=0)
    batch = (jnp.asarray(data["x"]), jnp.asarray(data["y"]))
    box = [fnn.TrainState(params, state, opt.init(params), jnp.zeros((), jnp.int32))]

    def run():
        for _ in range(config["steps"]):
            box[0], _ = step(box[0], batch, None)
        return box[0].params

    return Runner(blocked(run), config["steps"] * config["batch"])


def adam(data, config) -> Runner:
    return donated_updates(fnn.optim.adam(config["learning_rate"]), fnn.optim.apply_updates,
                           config)


def _quadrant_runs(data, config):
    from experiments import quadrant as q

    net = q.network(config["hidden"])
    objective = fnn.supervised(net, fnn.losses.softmax_cross_entropy, l2=config["l2"],
                               accuracy=False)
    init = lambda key: net.init(key, (2,))[0]
    return objective, init, (jnp.asarray(data["x"]), jnp.asarray(data["y"]))


def sweep_quadrant(data, config) -> Runner:
    objective, init, xy = _quadrant_runs(data, config)
    seeds = np.arange(config["runs"])
    run = lambda: fnn.sweep(objective, init, fnn.optim.sgd, xy, seeds=seeds,
                            hparams={"learning_rate": config["learning_rate"]},
                            epochs=config["steps"]).params
    return Runner(blocked(run), config["runs"])


def fits_quadrant(data, config) -> Runner:
    objective, init, xy = _quadrant_runs(data, config)
    starts = [init(jax.random.key(s)) for s in range(config["runs"])]
    opt = fnn.optim.sgd(config["learning_rate"])
    run = lambda: [fnn.fit(objective, p, opt, xy, seed=s, epochs=config["steps"],
                           progress=False).params for s, p in enumerate(starts)]
    return Runner(blocked(run), config["runs"])


def _digits_runs(data, config):
    net = fnn.serial(fnn.Dense(config["hidden"]), fnn.relu, fnn.Dense(10))
    params, _ = net.init(jax.random.key(0), (data["x"].shape[1],))
    lrs = np.geomspace(*config["learning_rates"], config["runs"]).astype(np.float32)
    return fnn.supervised(net), params, (jnp.asarray(data["x"]), jnp.asarray(data["y"])), lrs


def sweep_digits(data, config) -> Runner:
    objective, p0, xy, lrs = _digits_runs(data, config)
    run = lambda: fnn.sweep(objective, p0, fnn.optim.sgd, xy, seeds=0,
                            hparams={"learning_rate": lrs}, epochs=config["epochs"],
                            batch_size=config["batch_size"]).params
    return Runner(blocked(run), config["runs"])


def fits_digits(data, config) -> Runner:
    objective, p0, xy, lrs = _digits_runs(data, config)
    opts = [fnn.optim.sgd(float(lr)) for lr in lrs]
    run = lambda: [fnn.fit(objective, p0, o, xy, seed=0, epochs=config["epochs"],
                           batch_size=config["batch_size"], progress=False).params for o in opts]
    return Runner(blocked(run), config["runs"])


def _refits(data, config, fresh: bool) -> Runner:
    """fnn's side of the ``refit`` row (``workloads.refit_loop``): a fit is ``fnn.fit`` of
    ``fnn.supervised(net)`` (the quadrant net's with ``l2``) and ``fnn.optim.sgd(lr)`` from
    the same initial params each time, the data on the device; ``fresh`` builds the net (a new
    ``fnn.serial``), objective and optimizer for every fit."""
    from experiments import quadrant as q

    digits, quad = config["digits"], config["quadrant"]
    xy = {task: (jnp.asarray(data[f"{task}_x"]), jnp.asarray(data[f"{task}_y"]))
          for task in REFIT_TASKS}
    nets = {"digits": lambda: fnn.serial(fnn.Dense(digits["hidden"]), fnn.relu, fnn.Dense(10)),
            "quadrant": lambda: q.network(quad["hidden"])}
    params = {task: nets[task]().init(jax.random.key(0), xy[task][0].shape[1:])[0]
              for task in REFIT_TASKS}
    penalty = {"digits": {}, "quadrant": {"l2": quad["l2"], "accuracy": False}}
    options = {"digits": {"epochs": digits["epochs"], "batch_size": digits["batch_size"]},
               "quadrant": {"epochs": quad["steps"]}}

    def build(task, lr):
        return fnn.supervised(nets[task](), **penalty[task]), fnn.optim.sgd(lr)

    def fit(task, objects):
        objective, opt = objects
        return fnn.fit(objective, params[task], opt, xy[task], progress=False,
                       **options[task]).params

    return Runner(blocked(refit_loop(build, fit, config, fresh)), 2 * config["fits"])


def refit_shared(data, config) -> Runner:
    return _refits(data, config, fresh=False)


def refit_fresh(data, config) -> Runner:
    return _refits(data, config, fresh=True)


def cpu_grad(data, config) -> Runner:
    """The rewritten side of the cpu_grad row (jax_impl.cpu_grad is the plain one)."""
    return sgd_steps(value_and_grad, *cpu_grad_model(data, config), config)


def cpu_grad_matmul(data, config) -> Runner:
    """The rewritten side of the cpu_grad_matmul row: ``canonical_matmuls=True``."""
    canonical = lambda loss: value_and_grad(loss, canonical_matmuls=True)
    return sgd_steps(canonical, *cpu_grad_matmul_model(data, config), config, vmapped=True)


# ----------------------------------------------------------------------------- scaling rows

def _mesh(devices: int, axis: str):
    """A mesh over ``devices`` virtual CPU devices (each implementation runs in a fresh process,
    so JAX's backend starts only now, with that many devices)."""
    jax.config.update("jax_num_cpu_devices", devices)
    return jax.make_mesh((devices,), (axis,))


def _sharded_epoch(net, input_shape, data, config, devices: int) -> Runner:
    """One data-parallel ``fnn.fit`` epoch over ``devices`` devices (1: no mesh at all)."""
    mesh = _mesh(devices, "data") if devices > 1 else None
    params, _ = net.init(jax.random.key(0), input_shape)
    objective = fnn.supervised(net, accuracy=False)
    opt = fnn.optim.adam(config["learning_rate"])
    xy = (data["x"], data["y"])
    xy = fnn.sharding.shard_data(xy, mesh) if mesh is not None else jax.tree.map(jnp.asarray, xy)
    batch = config["batch_size"]
    run = lambda: fnn.fit(objective, params, opt, xy, epochs=1, batch_size=batch,
                          progress=False).params
    return Runner(blocked(run), (len(data["x"]) // batch) * batch)


def _mlp_net(config):
    *hidden, out = config["sizes"][1:]
    return fnn.serial(*[l for h in hidden for l in (fnn.Dense(h), fnn.relu)], fnn.Dense(out))


def _cnn_net(config):
    c1, c2 = config["channels"]
    return fnn.serial(fnn.Conv2D(c1, 3), fnn.relu, fnn.MaxPool(2), fnn.Conv2D(c2, 3), fnn.relu,
                      fnn.MaxPool(2), fnn.Flatten(), fnn.Dense(10))


def mlp_devices_1(data, config): return _sharded_epoch(_mlp_net(config), (784,), data, config, 1)
def mlp_devices_2(data, config): return _sharded_epoch(_mlp_net(config), (784,), data, config, 2)
def mlp_devices_4(data, config): return _sharded_epoch(_mlp_net(config), (784,), data, config, 4)
def cnn_devices_1(data, config): return _sharded_epoch(_cnn_net(config), (28, 28, 1), data, config, 1)
def cnn_devices_2(data, config): return _sharded_epoch(_cnn_net(config), (28, 28, 1), data, config, 2)
def cnn_devices_4(data, config): return _sharded_epoch(_cnn_net(config), (28, 28, 1), data, config, 4)


def _sweep_over(devices: int, data, config) -> Runner:
    mesh = _mesh(devices, "runs") if devices > 1 else None
    objective, init, xy = _quadrant_runs(data, config)
    seeds = np.arange(config["runs"])
    run = lambda: fnn.sweep(objective, init, fnn.optim.sgd, xy, seeds=seeds,
                            hparams={"learning_rate": config["learning_rate"]},
                            epochs=config["steps"], mesh=mesh).params
    return Runner(blocked(run), config["runs"])


def sweep_devices_1(data, config): return _sweep_over(1, data, config)
def sweep_devices_2(data, config): return _sweep_over(2, data, config)
def sweep_devices_4(data, config): return _sweep_over(4, data, config)
