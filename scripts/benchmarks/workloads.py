"""What is measured: each workload's sizes, data, implementations, baseline and FLOPs per unit.

Every implementation of a workload gets the same NumPy data (made once by the driver and
saved to an ``.npz`` file, so a worker process need not import the library that made it)
and the same sizes. An implementation ``"lib"`` of workload ``w`` is the function ``w`` of
``benchmarks.lib_impl`` unless the workload names another function.
"""
from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Callable, NamedTuple

import numpy as np

class Runner(NamedTuple):
    """What an implementation returns: ``run()`` does ``work`` units of the workload (steps,
    samples, updates, runs, GFLOP) and returns only when they are done (on the device too)."""
    run: Callable[[], object]
    work: float


def shuffled_batches(x, y, batch_size: int, epochs: int, rng: np.random.Generator):
    """The peers' minibatches: for each of ``epochs`` epochs a NumPy permutation of the host
    arrays ``x, y``, cut into contiguous ``batch_size`` minibatches (the last partial one
    dropped, as ``fnn.fit`` drops it)."""
    n = len(x) // batch_size * batch_size
    for _ in range(epochs):
        perm = rng.permutation(len(x))
        xs, ys = x[perm], y[perm]
        yield from ((xs[i:i + batch_size], ys[i:i + batch_size]) for i in range(0, n, batch_size))


def shuffled_epochs(train, data, batch_size: int) -> Runner:
    """The peers' epoch: per call ``train(batches)`` over one epoch of ``shuffled_batches``."""
    x, y = data["x"], data["y"]
    rng = np.random.default_rng(0)
    return Runner(lambda: train(shuffled_batches(x, y, batch_size, 1, rng)),
                  len(x) // batch_size * batch_size)


REFIT_TASKS = ("digits", "quadrant")


def refit_loop(build, fit, config, fresh: bool) -> Callable[[], list]:
    """The ``refit`` row's loop, the same for every library: ``run()`` makes
    ``config['fits']`` fits of each task of ``REFIT_TASKS`` (a digits fit, then a quadrant
    fit, per learning rate) and returns the ``2 * fits`` trained parameter sets.

    ``build(task, lr)`` makes a task's net, objective and optimizer (whatever the library
    calls them) with learning rate ``lr``; ``fit(task, objects)`` trains them on the task's
    data and returns the trained parameters. ``fresh``: every fit builds its objects anew,
    with its own learning rate (digits: ``geomspace(*learning_rates, fits)``; quadrant: that
    times the quadrant config's rate), as a learning-rate loop does; else the objects are
    built once, before ``run`` (digits 0.1, quadrant its config's rate), and shared by all
    fits."""
    quad_lr = config["quadrant"]["learning_rate"]
    lrs = [float(lr) for lr in np.geomspace(*config["digits"]["learning_rates"], config["fits"])]
    shared = {"digits": build("digits", 0.1), "quadrant": build("quadrant", quad_lr)}

    def run():
        out = []
        for lr in lrs:
            for task, task_lr in zip(REFIT_TASKS, (lr, lr * quad_lr)):
                out.append(fit(task, build(task, task_lr) if fresh else shared[task]))
        return out

    return run


def refit_sizes(data, config) -> dict:
    """``{task: (inputs, hidden, outputs)}`` of the refit row's two MLPs (the digits net, the
    quadrant net), as every library's ``build`` makes them."""
    digits, quad = config["digits"], config["quadrant"]
    return {"digits": (data["digits_x"].shape[1], digits["hidden"], 10),
            "quadrant": (2, quad["hidden"], 4)}


def refit_batches(data, config, asarray) -> dict:
    """The peers' data for one ``refit`` fit, by task: ``digits`` ``epochs`` shuffled epochs of
    ``batch_size`` minibatches (``shuffled_batches``, host arrays), ``quadrant`` the whole
    batch (``asarray``: on the device) ``steps`` times. Each value is a function returning a
    fresh iterator; fnn's ``fit`` takes the same number of steps."""
    digits, quad = config["digits"], config["quadrant"]
    rng = np.random.default_rng(0)
    whole = (asarray(data["quadrant_x"]), asarray(data["quadrant_y"]))
    return {"digits": lambda: shuffled_batches(data["digits_x"], data["digits_y"],
                                               digits["batch_size"], digits["epochs"], rng),
            "quadrant": lambda: itertools.repeat(whole, quad["steps"])}


PEERS = ("flax", "equinox", "haiku", "torch")
MODELS = ("fnn", "jax", *PEERS)


@dataclass(frozen=True)
class Workload:
    """``impls``: {label: "module.function"} in table order; ``baseline``: the label every
    rate is divided by; ``flops``: floating-point operations per unit of work (None where
    they are not well defined)."""
    unit: str
    description: str
    config: dict
    impls: dict
    baseline: str = "jax"
    flops: float | None = None
    peers: tuple = field(default=PEERS)


def _impls(workload: str, labels) -> dict:
    return {label: f"{label}_impl.{workload}" for label in labels}


def _devices(workload: str) -> dict:
    return {f"fnn {n} device{'s' if n > 1 else ''}": f"fnn_impl.{workload}_devices_{n}"
            for n in (1, 2, 4)}


def _bf16_impls(workload: str) -> dict:
    """The bfloat16-compute rows of a workload (float32 params and optimizer state): fnn's
    ``fit(..., precision=...)`` and the baseline cast by hand, beside their float32 rows."""
    return {f"{label} bf16": f"{label}_impl.{workload}_bf16" for label in ("fnn", "jax")}


def _dense_macs(sizes) -> int:
    return sum(a * b for a, b in zip(sizes[:-1], sizes[1:]))


def _training_flops(macs: int, first_layer_macs: int) -> float:
    """Forward 2·MAC, weight gradients 2·MAC, input gradients 2·MAC except the first layer's."""
    return 2.0 * macs + 2.0 * macs + 2.0 * (macs - first_layer_macs)


QUADRANT = {"hidden": 50, "learning_rate": 0.001, "l2": 0.001, "steps": 10_000}
MLP = {"sizes": (784, 256, 256, 10), "n": 60_000, "batch_size": 128, "learning_rate": 1e-3}
CNN = {"n": 1024, "batch_size": 128, "channels": (16, 32), "learning_rate": 1e-3}
LSTM = {"batch": 64, "length": 100, "features": 32, "hidden": 128, "steps": 10,
        "learning_rate": 1e-3}
GRU = {"hidden": 6, "batch_size": 100, "learning_rate": 1e-2}  # MNIST-1D: 4000 x 40, one epoch
ADAM = {"leaves": 50, "size": 200_000, "steps": 10, "learning_rate": 1e-3}
GEMM = {"size": 2048}
SWEEP_QUADRANT = {**QUADRANT, "runs": 32}
SWEEP_DIGITS = {"hidden": 64, "runs": 16, "epochs": 10, "batch_size": 32,
                "learning_rates": (1e-3, 0.5)}
REFIT = {"fits": 10, "digits": {**SWEEP_DIGITS, "epochs": 5}, "quadrant": {**QUADRANT,
                                                                          "steps": 1000}}
CPU_GRAD = {"batch": 32, "size": 14, "channels": (16, 32), "classes": 10, "steps": 10,
            "learning_rate": 1e-2}
CPU_GRAD_MATMUL = {**SWEEP_QUADRANT, "steps": 1000}


def _cnn_macs() -> tuple[int, int]:
    c1, c2 = CNN["channels"]
    conv1 = 28 * 28 * 9 * 1 * c1
    conv2 = 14 * 14 * 9 * c1 * c2
    return conv1 + conv2 + 7 * 7 * c2 * 10, conv1


def _cpu_grad_flops() -> float:
    c_in, c_out = CPU_GRAD["channels"]
    conv = CPU_GRAD["size"] ** 2 * 9 * c_in * c_out
    return CPU_GRAD["batch"] * _training_flops(conv + c_out * CPU_GRAD["classes"], conv)


def _lstm_flops() -> float:
    f, h, t = LSTM["features"], LSTM["hidden"], LSTM["length"]
    macs = t * (f + h) * 4 * h + h
    return _training_flops(macs, t * f * 4 * h)


def _gru_flops() -> float:
    h, t = GRU["hidden"], 40
    macs = 2 * t * (1 + h) * 3 * h + 2 * t * h * 10
    return _training_flops(macs, 2 * t * 3 * h)


WORKLOADS = {
    "gemm": Workload(
        "GFLOP/s", f"{GEMM['size']}^3 float32 matmul: the machine's ceiling", GEMM,
        {"jax": "jax_impl.gemm", "numpy": "numpy_impl.gemm", "torch": "torch_impl.gemm"},
        flops=1e9, peers=("torch",)),
    "quadrant": Workload(
        "steps/s", "the notes' 2-50-4 quadrant net, full-batch SGD with L2 (float32)", QUADRANT,
        {**_impls("quadrant", MODELS[:2]), "numpy": "numpy_impl.quadrant",
         **_impls("quadrant", PEERS)},
        flops=4 * _training_flops(_dense_macs((2, 50, 4)), 2 * 50)),
    "mlp": Workload(
        "samples/s", "784-256-256-10 ReLU MLP, Adam, batch 128, 60000 examples per epoch", MLP,
        {**_impls("mlp", MODELS), **_bf16_impls("mlp")},
        flops=_training_flops(_dense_macs(MLP["sizes"]), 784 * 256)),
    "cnn": Workload(
        "samples/s", "conv3x3(16)-pool-conv3x3(32)-pool-dense(10) on 28x28x1, Adam, batch 128",
        CNN, {**_impls("cnn", MODELS), **_bf16_impls("cnn")}, flops=_training_flops(*_cnn_macs())),
    "lstm": Workload(
        "samples/s", "LSTM (input 32, hidden 128, 100 steps, batch 64) -> last h -> dense(1), "
        "MSE, Adam", LSTM, _impls("lstm", MODELS), flops=_lstm_flops()),
    "gru_mnist1d": Workload(
        "samples/s", "MNIST-1D bidirectional GRU (hidden 6) -> flatten -> dense(10), Adam 1e-2, "
        "batch 100", GRU, _impls("gru_mnist1d", MODELS), flops=_gru_flops()),
    "adam": Workload(
        "updates/s", "one Adam update of 10M parameters in 50 leaves (jitted, donated)", ADAM,
        {"fnn": "fnn_impl.adam", "optax": "jax_impl.adam", "torch": "torch_impl.adam"},
        baseline="optax", peers=("torch",)),
    "sweep_quadrant": Workload(
        "runs/s", "32 seeds of the quadrant net (10000 steps each)", SWEEP_QUADRANT,
        {"fnn sweep": "fnn_impl.sweep_quadrant", "fnn fits": "fnn_impl.fits_quadrant",
         "jax vmap": "jax_impl.vmap_quadrant"},
        baseline="fnn fits", peers=()),
    "sweep_digits": Workload(
        "runs/s", "16 SGD learning rates of a 64-64-10 digits MLP (10 epochs, batch 32)",
        SWEEP_DIGITS,
        {"fnn sweep": "fnn_impl.sweep_digits", "fnn fits": "fnn_impl.fits_digits"},
        baseline="fnn fits", peers=()),
    # What a learning-rate loop pays per fit for building its net, objective and optimizer
    # afresh ("<lib> refit", each its own learning rate) over sharing them ("<lib> shared"):
    # (1/rate_refit - 1/rate_shared) is the overhead per refit; for fnn and for the peers'
    # idiomatic loops (Equinox, Flax NNX), in the same run (refit_loop).
    "refit": Workload(
        "fits/s", "10 fits of the 64-64-10 digits MLP (5 epochs, batch 32) and 10 of the "
        "2-50-4 quadrant net (1000 full-batch steps, L2), SGD: freshly built objects with their "
        "own learning rate vs shared objects", REFIT,
        {f"{lib} {kind}": f"{lib}_impl.refit_{'fresh' if kind == 'refit' else kind}"
         for lib in ("fnn", "equinox", "flax") for kind in ("shared", "refit")},
        baseline="fnn shared", peers=()),
    # The XLA:CPU workaround for jax-ml/jax#12868 (fnn/_cpu_grad.py): the same training scan
    # with jax.value_and_grad ("jax") and with fnn's rewritten gradient ("fnn"). When the two
    # rates meet, upstream has fixed it and the rewrite can go.
    "cpu_grad": Workload(
        "steps/s", "10 SGD steps in one scan of conv3x3(16->32) on 32x14x14x16, 2x2 max pool, "
        "dense: jax.value_and_grad vs fnn's rewritten gradient", CPU_GRAD,
        _impls("cpu_grad", ("fnn", "jax")), flops=_cpu_grad_flops(), peers=()),
    "cpu_grad_matmul": Workload(
        "steps/s", "32 vmapped quadrant runs, 1000 SGD steps in one scan: jax.value_and_grad vs "
        "fnn's canonical_matmuls", CPU_GRAD_MATMUL,
        _impls("cpu_grad_matmul", ("fnn", "jax")), peers=()),
    # Data-parallel fit (and the run-sharded sweep) on 1, 2 and 4 virtual CPU devices
    # (JAX_NUM_CPU_DEVICES): on a 2-core machine a correctness-and-overhead figure, not a
    # speed-up; on a machine with that many accelerators, the scaling.
    "mlp_devices": Workload(
        "samples/s", "the mlp workload, fit data-parallel over a ('data',) mesh of N devices",
        MLP, _devices("mlp"), baseline="fnn 1 device", peers=()),
    "cnn_devices": Workload(
        "samples/s", "the cnn workload, fit data-parallel over a ('data',) mesh of N devices",
        CNN, _devices("cnn"), baseline="fnn 1 device", peers=()),
    "sweep_devices": Workload(
        "runs/s", "the 32-run quadrant sweep with its runs over a ('runs',) mesh of N devices",
        SWEEP_QUADRANT, _devices("sweep"), baseline="fnn 1 device", peers=()),
}


def make_data(name: str) -> dict[str, np.ndarray]:
    """The arrays every implementation of workload ``name`` trains on (float32 / int32)."""
    rng = np.random.default_rng(0)
    name = {"mlp_devices": "mlp", "cnn_devices": "cnn", "sweep_devices": "sweep_quadrant"}.get(
        name, name)
    if name in ("quadrant", "sweep_quadrant", "cpu_grad_matmul"):
        from experiments import quadrant

        w1, b1, w2, b2 = quadrant.initial_weights(QUADRANT["hidden"], 1)
        return {"x": quadrant.POINTS.astype(np.float32), "y": quadrant.LABELS.astype(np.int32),
                "w1": w1.astype(np.float32), "b1": b1[0].astype(np.float32),
                "w2": w2.astype(np.float32), "b2": b2[0].astype(np.float32)}
    if name == "mlp":
        return {"x": rng.standard_normal((MLP["n"], 784), np.float32),
                "y": rng.integers(0, 10, MLP["n"]).astype(np.int32)}
    if name == "cnn":
        return {"x": rng.standard_normal((CNN["n"], 28, 28, 1), np.float32),
                "y": rng.integers(0, 10, CNN["n"]).astype(np.int32)}
    if name == "cpu_grad":
        c = CPU_GRAD
        return {"x": rng.standard_normal((c["batch"], c["size"], c["size"], c["channels"][0]),
                                         np.float32),
                "y": rng.integers(0, c["classes"], c["batch"]).astype(np.int32)}
    if name == "lstm":
        c = LSTM
        return {"x": rng.standard_normal((c["batch"], c["length"], c["features"]), np.float32),
                "y": rng.standard_normal((c["batch"], 1), np.float32)}
    if name == "gru_mnist1d":
        from fnn.data import load_mnist1d

        split = load_mnist1d()
        return {"x": split.x_train.astype(np.float32), "y": split.y_train.astype(np.int32)}
    if name == "refit":
        return {**{f"digits_{k}": v for k, v in make_data("sweep_digits").items()},
                **{f"quadrant_{k}": v for k, v in make_data("quadrant").items()}}
    if name == "sweep_digits":
        from fnn.data import load_digits

        split = load_digits()
        return {"x": split.x_train.astype(np.float32), "y": split.y_train.astype(np.int32)}
    return {}  # adam, gemm: made inside the implementation, from fixed seeds
