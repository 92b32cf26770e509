"""Record the reference training trajectories that tests/test_engine_reference.py checks the
training engine against, bit for bit.

They were written with the code from before the one-engine refactor (commit 6d72c6c, where
``fit``, ``sweep``, the GAN trainer and the claim helpers each had their own epoch loop), so
the test shows that moving every trainer onto one engine changed no bit of any result::

    .venv/bin/python scripts/make_engine_fixtures.py            # -> tests/fixtures/engine/
    .venv/bin/python scripts/make_engine_fixtures.py --out DIR  # elsewhere, e.g. to compare

Each case below trains through the public API only and returns a flat ``{name: array}`` of
its final params, model state, optimizer state and history; ``<case>.npz`` holds it, plus
under ``fingerprint`` (a JSON string) what decides its bits: see ``fingerprint()``. Runs in
float32 on the CPU, with the JAX settings of tests/conftest.py (four virtual CPU devices), a
few seconds. Re-record on a new machine to make the test demand bit-identity there.
"""
from __future__ import annotations

import argparse
import json
import os
import pathlib
import platform
import re
import tempfile

import jax
import jax.numpy as jnp
import numpy as np

import fnn
from fnn.models.gan import GAN, dense_discriminator, dense_generator
from fnn.train.gan import fit_gan

# The suite's settings (tests/conftest.py): the trajectories are recorded as the test runs them.
jax.config.update("jax_num_cpu_devices", 4)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "engine"


# The CPU features XLA:CPU compiles for (vector width, fused multiply-add, AMX, ...): two
# machines that differ in these may round float32 differently, by an ulp or so per op.
ISA_FEATURES = re.compile(r"^(sse4_[12]|ssse3|avx.*|fma.*|f16c|amx.*|bmi[12]|asimd.*|sve.*|neon)$")


def cpu_description() -> dict:
    """The CPU as /proc/cpuinfo names it (vendor, family, model, model name) and its ISA
    features that XLA:CPU dispatches on; ``platform`` names only, where there is no
    /proc/cpuinfo (macOS, Windows)."""
    try:
        text = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return {"processor": platform.processor(), "machine": platform.machine()}
    first = text.split("\n\n")[0]
    fields = dict(line.split(":", 1) for line in first.splitlines() if ":" in line)
    fields = {k.strip(): v.strip() for k, v in fields.items()}
    flags = fields.get("flags", fields.get("Features", "")).split()
    return {"machine": platform.machine(),
            **{k: fields[k] for k in ("vendor_id", "cpu family", "model", "model name",
                                      "CPU implementer", "CPU part") if k in fields},
            "isa": sorted(f for f in flags if ISA_FEATURES.match(f))}


# JAX settings that change the numbers a run draws or computes (not only how fast).
BIT_SETTINGS = ("jax_default_prng_impl", "jax_threefry_partitionable",
                "jax_default_matmul_precision")


def xla_flags() -> list[str]:
    """The flags of ``$XLA_FLAGS``, sorted, less the host device count (the fingerprint's
    ``device_count``): compiler options such as ``--xla_cpu_use_fusion_emitters=false`` or
    ``--xla_backend_optimization_level=0`` compile other kernels, which round otherwise."""
    return sorted(flag for flag in os.environ.get("XLA_FLAGS", "").split()
                  if not flag.startswith("--xla_force_host_platform_device_count"))


def fingerprint() -> dict:
    """What decides the bits of a float32 run here: the jax and jaxlib versions, the backend,
    the device count, the x64 flag, the CPU (``cpu_description``), the XLA flags
    (``xla_flags``) and the JAX settings of :data:`BIT_SETTINGS`. Equal fingerprints give
    bit-identical trajectories; unequal ones agree only to float32 rounding."""
    import jaxlib
    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__,
            "backend": jax.default_backend(), "device_count": jax.device_count(),
            "x64": bool(jax.config.jax_enable_x64), "cpu": cpu_description(),
            "xla_flags": xla_flags(),
            "settings": {name: getattr(jax.config, name) for name in BIT_SETTINGS}}


def flat(prefix: str, tree) -> dict:
    """``{prefix + keystr(path): np.ndarray}`` for every leaf (PRNG keys as their raw data)."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(tree)[0]:
        if jnp.issubdtype(getattr(leaf, "dtype", np.float32), jax.dtypes.prng_key):
            leaf = jax.random.key_data(leaf)
        out[prefix + jax.tree_util.keystr(path)] = np.asarray(leaf)
    return out


def result_arrays(res) -> dict:
    """A FitResult or SweepResult as flat arrays."""
    return {**flat("params", res.params), **flat("model_state", res.model_state),
            **flat("opt_state", res.opt_state), **flat("history", res.history)}


def blobs(n: int, features: int, classes: int, seed: int):
    rng = np.random.RandomState(seed)
    y = rng.randint(0, classes, n).astype(np.int32)
    centres = rng.randn(classes, features).astype(np.float32) * 2
    x = (centres[y] + rng.randn(n, features).astype(np.float32)).astype(np.float32)
    return x, y


def mlp_minibatch_validation() -> dict:
    """An MLP, Adam, shuffled minibatches with a dropped remainder, a validation pass."""
    x, y = blobs(300, 6, 3, seed=1)
    net = fnn.serial(fnn.Dense(16), fnn.relu, fnn.Dense(16), fnn.tanh, fnn.Dense(3))
    params, _ = net.init(jax.random.key(1), (6,))
    res = fnn.fit(fnn.supervised(net), params, fnn.optim.adam(3e-3), (x[:250], y[:250]),
                  epochs=5, batch_size=32, seed=3, validation_data=(x[250:], y[250:]),
                  progress=False)
    return result_arrays(res)


def cnn_batchnorm_dropout() -> dict:
    """A CNN with BatchNorm (running statistics in the model state) and Dropout (per-step
    keys), SGD with momentum, minibatches and validation."""
    rng = np.random.RandomState(2)
    x = rng.rand(96, 8, 8, 1).astype(np.float32)
    y = (x[:, :4].mean(axis=(1, 2, 3)) > x[:, 4:].mean(axis=(1, 2, 3))).astype(np.int32)
    net = fnn.serial(fnn.Conv2D(4, 3), fnn.BatchNorm(), fnn.relu, fnn.MaxPool(2),
                     fnn.Flatten(), fnn.Dropout(0.3), fnn.Dense(2))
    params, state = net.init(jax.random.key(2), (8, 8, 1))
    res = fnn.fit(fnn.supervised(net), params, fnn.optim.sgd(0.05, momentum=0.9), (x[:80], y[:80]),
                  model_state=state, epochs=4, batch_size=16, seed=5,
                  validation_data=(x[80:], y[80:]), progress=False)
    return result_arrays(res)


def quadrant_full_batch() -> dict:
    """The notes' 2-50-4 quadrant net, full batch (one step per epoch), L2, plain SGD."""
    x = np.array([[2, 1], [-1, 1], [-1, -1], [1, -1]], np.float32)
    y = np.array([0, 1, 2, 3], np.int32)
    net = fnn.serial(fnn.Dense(50), fnn.relu, fnn.Dense(4))
    params, _ = net.init(jax.random.key(0), (2,))
    res = fnn.fit(fnn.supervised(net, l2=1e-3, accuracy=False), params, fnn.optim.sgd(0.01),
                  (x, y), epochs=300, batch_size=None, progress=False)
    return result_arrays(res)


def skip_injected_nan() -> dict:
    """``on_nonfinite='skip'`` with NaN in two examples: their minibatches change nothing."""
    x, y = blobs(64, 4, 2, seed=4)
    x[[5, 41]] = np.nan
    net = fnn.serial(fnn.Dense(8), fnn.tanh, fnn.Dense(2))
    params, _ = net.init(jax.random.key(4), (4,))
    res = fnn.fit(fnn.supervised(net), params, fnn.optim.adam(1e-2), (x, y), epochs=4,
                  batch_size=8, seed=1, on_nonfinite="skip", progress=False)
    return result_arrays(res)


def resumed_from_checkpoint() -> dict:
    """Three epochs with checkpoints, then a second call that resumes and trains to six."""
    x, y = blobs(120, 5, 3, seed=6)
    net = fnn.serial(fnn.Dense(12), fnn.relu, fnn.Dense(3))
    params, _ = net.init(jax.random.key(6), (5,))
    objective, opt = fnn.supervised(net), fnn.optim.rmsprop(1e-2)
    with tempfile.TemporaryDirectory() as directory:
        common = dict(batch_size=20, seed=2, validation_data=(x[:30], y[:30]), progress=False,
                      checkpoint_dir=directory, checkpoint_every=1)
        fnn.fit(objective, params, opt, (x, y), epochs=3, **common)
        res = fnn.fit(objective, params, opt, (x, y), epochs=6, resume=True, **common)
    return result_arrays(res)


def sweep_four_runs() -> dict:
    """A 4-run sweep: four seeds (init, shuffles, keys) and four learning rates."""
    x, y = blobs(128, 3, 4, seed=7)
    net = fnn.serial(fnn.Dense(10), fnn.relu, fnn.Dense(4))
    res = fnn.sweep(fnn.supervised(net), lambda key: net.init(key, (3,))[0], fnn.optim.sgd,
                    (x, y), seeds=np.arange(4), hparams={"learning_rate": [0.3, 0.1, 0.03, 0.01]},
                    epochs=3, batch_size=32, validation_data=(x[:32], y[:32]))
    return result_arrays(res)


def gan_multi_step() -> dict:
    """A dense GAN on 2-D points: both trees, both Adam states and the per-step history."""
    rng = np.random.RandomState(8)
    data = (rng.randn(128, 2) * [0.5, 2.0] + [1.0, -1.0]).astype(np.float32)
    gan = GAN(dense_generator(4, 2, hidden=(16,), output_activation=None),
              dense_discriminator(hidden=(16,)), latent_dim=4)
    trees, _ = gan.init(jax.random.key(8), (2,))
    run = fit_gan(gan, trees, fnn.optim.adam(2e-3, b1=0.5), fnn.optim.adam(2e-3, b1=0.5), data,
                  epochs=3, batch_size=32, seed=9)
    return {**flat("params", run.trees), **flat("opt_state", run.opt_states),
            **flat("history", run.history)}


def claims_trainer() -> dict:
    """experiments/_claims.py's pure trainer, vmapped over two learning rates and jitted:
    minibatches, every step's loss, the params after every step and an evaluation pass."""
    import sys
    sys.path.insert(0, str(OUT.parent.parent.parent))
    from experiments._training import trainer
    x, y = blobs(96, 4, 3, seed=10)
    net = fnn.serial(fnn.Dense(8), fnn.tanh, fnn.Dense(3))
    params, state = net.init(jax.random.key(10), (4,))
    train = trainer(fnn.supervised(net), lambda lr: fnn.optim.sgd(lr, momentum=0.9), n=80,
                    batch_size=16, epochs=3, record_params=True, evaluate=True)
    run = jax.jit(jax.vmap(train, in_axes=(None, None, None, 0, None, None)))
    params, state, out = run(params, state, (x[:80], y[:80]), jnp.array([0.1, 0.02]),
                             jax.random.key(11), (x[80:], y[80:]))
    return {**flat("params", params), **flat("model_state", state), **flat("out", out)}


CASES = {f.__name__: f for f in (mlp_minibatch_validation, cnn_batchnorm_dropout,
                                 quadrant_full_batch, skip_injected_nan, resumed_from_checkpoint,
                                 sweep_four_runs, gan_multi_step, claims_trainer)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=OUT)
    parser.add_argument("--case", action="append", choices=sorted(CASES),
                        help="record only this case (repeatable; default: all)")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    made_with = {"fingerprint": np.array(json.dumps(fingerprint(), sort_keys=True))}
    for name, case in CASES.items():
        if args.case and name not in args.case:
            continue
        arrays = case()
        np.savez_compressed(args.out / f"{name}.npz", **arrays, **made_with)
        print(f"{name}: {len(arrays)} arrays -> {args.out / name}.npz")


if __name__ == "__main__":
    main()
