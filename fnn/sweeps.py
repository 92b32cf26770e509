"""Vmapped sweeps: N training runs (seeds, learning rates, ...) in one compiled program.

``sweep`` trains N copies of a model side by side with ``jax.vmap``: run ``i`` is the same
run ``fit`` would do with ``seed=seeds[i]`` and the optimizer ``make_optimizer(**{name:
hparams[name][i]})``, but all N runs are one compiled ``lax.scan`` over epochs whose step
updates N stacked parameter trees at once: :func:`fnn.train.run` (the run ``fit`` makes, as a
pure function) vmapped over the runs, plus placement on a mesh. Small networks leave most of
the machine idle in a single run, so N runs cost much less than N times one::

    net = fnn.serial(fnn.Dense(50), fnn.relu, fnn.Dense(4))
    init = lambda key: net.init(key, (2,))[0]
    res = fnn.sweep(fnn.supervised(net), init, fnn.optim.sgd, (x, y),
                    seeds=jnp.arange(8), hparams={"learning_rate": jnp.full(8, 0.1)},
                    epochs=100, batch_size=32)
    res.history["loss"]          # (8, 100): run i's per-epoch loss
    res.params["dense_0"]["w"]   # (8, 2, 50): run i's final weights

Hyperparameters reach the optimizer as traced scalars, so any fnn (or optax) optimizer factory
whose numeric arguments may be arrays works (``fnn.optim.sgd``, ``adam``, ``adamw``'s
``weight_decay``, ...; ``fnn.optim.inject_hyperparams(f)`` for factories that need numbers).
"""
from __future__ import annotations

import warnings
from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

from fnn._cpu_grad import target_platform, value_and_grad
from fnn.precision import get_policy
from fnn.sharding import SINGLE_DEVICE, DataParallel, SingleDevice, auto_mesh
from fnn.train.config import batch_size_for, check_trainer, validation_batch_size
from fnn.train.objective import objective_value
from fnn.train.programs import PROGRAMS, fingerprint, identity, remembered, spec
from fnn.train.runs import run
from fnn.train.step import TrainState, checked_step
from fnn.validation import function, num_examples, positive_int

__all__ = ["sweep", "SweepResult"]


class SweepResult(NamedTuple):
    """What ``sweep`` returns. Every array has a leading run axis of length N.

    ``params``, ``model_state``, ``opt_state``: the final trees of all runs, stacked (run ``i``
    is ``jax.tree.map(lambda a: a[i], res.params)``); ``history``: ``{metric: np.ndarray[N,
    epochs]}`` as ``fit`` reports it per run (``val_`` prefixes for validation metrics);
    ``seeds`` (int array [N]) and ``hparams`` (``{name: array[N]}``): what each run used.
    """
    params: Any
    model_state: Any
    opt_state: Any
    history: dict
    seeds: np.ndarray
    hparams: dict

    def run(self, i: int) -> dict:
        """Run ``i``'s final ``params``, ``model_state``, ``history`` (unstacked)."""
        take = lambda tree: jax.tree.map(lambda a: a[i], tree)
        return {"params": take(self.params), "model_state": take(self.model_state),
                "history": {k: v[i] for k, v in self.history.items()}}


def _runs(seeds, hparams) -> tuple[int, np.ndarray, dict]:
    """N and the per-run seeds and hyperparameters (scalars broadcast to N)."""
    seeds_arr = np.asarray(seeds)
    if not (np.issubdtype(seeds_arr.dtype, np.integer) and seeds_arr.ndim <= 1):
        raise TypeError(f"sweep: seeds must be an int or a 1-D array of ints, got {seeds!r}")
    if not isinstance(hparams, dict):
        raise TypeError(f"sweep: hparams must be a dict {{optimizer argument: array[N]}}, got "
                        f"{type(hparams).__name__}")
    values = {}
    for name, v in hparams.items():
        if not isinstance(name, str):
            raise TypeError(f"sweep: hparams keys must be optimizer argument names, got {name!r}")
        a = np.asarray(jax.device_get(v))
        if a.ndim > 1 or not (np.issubdtype(a.dtype, np.number) or a.dtype == bool):
            raise ValueError(f"sweep: hparams[{name!r}] must be a number or a 1-D numeric array "
                             f"(one value per run), got shape {a.shape} dtype {a.dtype}")
        values[name] = a
    lengths = {"seeds": seeds_arr.shape[0]} if seeds_arr.ndim == 1 else {}
    lengths.update({f"hparams[{k!r}]": a.shape[0] for k, a in values.items() if a.ndim == 1})
    if len(set(lengths.values())) > 1:
        raise ValueError(f"sweep: every per-run array needs the same length N, got "
                         + ", ".join(f"{k}: {v}" for k, v in lengths.items()))
    n_runs = next(iter(lengths.values())) if lengths else 1
    if n_runs < 1:
        raise ValueError("sweep: no runs (the per-run arrays are empty)")
    seeds_arr = np.broadcast_to(seeds_arr, (n_runs,)).astype(np.int64)
    if seeds_arr.min() < 0 or seeds_arr.max() >= 2 ** 31:
        raise ValueError(f"sweep: seeds must lie in [0, 2**31), got {seeds_arr.min()} .. "
                         f"{seeds_arr.max()}")
    values = {k: np.broadcast_to(a, (n_runs,)) for k, a in values.items()}
    return n_runs, seeds_arr.astype(np.int32), values



def _hp_dtypes(init, init_is_fn: bool, hp: dict, policy=None) -> tuple:
    """``((name, dtype), ...)``: float hyperparameters in the widest float dtype of the params
    (a precision policy's param dtype, with one)."""
    params_spec = jax.eval_shape(init, jax.random.key(0)) if init_is_fn else init
    floats = [np.dtype(a.dtype) for a in jax.tree.leaves(params_spec)
              if jnp.issubdtype(a.dtype, jnp.floating)]
    float_dtype = max(floats, key=lambda d: d.itemsize) if floats else np.dtype(np.float32)
    if policy is not None and floats:
        float_dtype = policy.param_dtype
    return tuple((k, float_dtype if np.issubdtype(a.dtype, np.floating) else a.dtype)
                 for k, a in sorted(hp.items()))


def _check_optimizers(make_optimizer, hp: dict, hp_dtypes: tuple, n_runs: int) -> None:
    """Fail early, outside the trace, on bad hyperparameter names or values."""
    for i in range(n_runs):
        values = {k: hp[k][i].astype(dt).item() for k, dt in hp_dtypes}
        try:
            make_optimizer(**values)
        except TypeError as err:
            raise TypeError(f"sweep: make_optimizer(**hparams) failed for run {i}'s hparams "
                            f"{values}: {err}") from err


def _matmuls_retrace(objective, leaves: tuple, treedef, platform: str, policy) -> bool:
    """Whether the objective's gradient (under the precision ``policy``, if not None) can be
    taken with canonical matmuls on these abstract ``(params, state, batch)``
    (``leaves``/``treedef``); if not, say so once (remembered for these objects, so a
    repeated sweep neither re-traces nor warns again). An error of the objective itself
    surfaces here, unchanged."""
    return remembered(("sweep_matmuls", identity(objective), leaves, treedef, platform,
                       policy), lambda: _probe_matmuls(objective, leaves, treedef, platform,
                                                       policy))


def _probe_matmuls(objective, leaves: tuple, treedef, platform: str, policy) -> bool:
    params, state, batch = jax.tree.unflatten(treedef, leaves)
    objective = objective_value(objective, policy).cast
    probe = lambda matmuls: jax.eval_shape(lambda p, s, b: value_and_grad(
        lambda p: objective(p, s, b, jax.random.key(0), True), has_aux=True,
        canonical_matmuls=matmuls, platform=platform)(p), params, state, batch)
    try:
        probe(True)
        return True
    except Exception as err:  # noqa: BLE001 - an optimisation only: run the original
        probe(False)
        warnings.warn(f"sweep: canonical_matmuls could not re-trace the objective "
                      f"({type(err).__name__}: {err}); running it unchanged", stacklevel=4)
        return False


class OneDeviceSweep(NamedTuple):
    """The null sweep placement (no mesh): every run on the default device, the arguments as
    they are, no vmap or jit options; runs may share an unbatched seed or hyperparameter
    (``shards_runs`` is False)."""
    data_axis = None
    shards_runs = False

    def data_parallel(self) -> SingleDevice:
        return SINGLE_DEVICE

    def vmap_options(self) -> dict:
        return {}

    def jit_options(self) -> dict:
        return {}

    def place(self, seeds, hp, hp_axes, params0, model_state, data, val_data):
        return seeds, hp, params0, model_state, data, val_data

    def returned(self, tree):
        return tree


ONE_DEVICE = OneDeviceSweep()


class SweepProgram(NamedTuple):
    """What one sweep program is built from: the objects (compared by identity for the compile
    cache's shortcut, :func:`fnn.train.programs.remembered`), the sizes and the run and
    placement options of :func:`_sweep_runner`. ``init``: ``key -> params``, or None when every
    run starts from the same params; ``seed_axis`` and ``hp_axes`` (``((name, axis), ...)``):
    0 for a per-run value, None for one shared by all runs."""
    objective: Callable
    init: Callable | None
    make_optimizer: Callable
    n_runs: int
    n: int
    batch_size: int
    val_batch_size: int | None
    epochs: int
    hp_dtypes: tuple
    seed_axis: int | None
    hp_axes: tuple
    placement: Any
    shuffle_blocks: int
    grad_options: tuple
    policy: Any


def _sweep_program(args: tuple, program: SweepProgram) -> Callable:
    """:func:`_sweep_runner` of ``program`` from the compile cache
    (:mod:`fnn.train.programs`), keyed by the fingerprint of the vmapped run traced on
    ``args`` (so rebuilt objects of the same structure share it), the placement and the
    inputs' specs; the fingerprint is skipped for the very objects of an earlier sweep."""
    shapes = spec(args)

    def key():
        return ("sweep", fingerprint(_sweep_runner(program), *args), program.placement, shapes)

    program_key = remembered(("sweep", tuple(identity(o) for o in program), shapes), key)
    return PROGRAMS.get(program_key, lambda: _sweep_runner(program))


def _sweep_runner(p: SweepProgram) -> Callable:
    """The jitted ``run(seeds[N], hparams{[N]}, params0, model_state, data, val_data) ->
    (ts[N], metrics{[N, epochs]})``: :func:`fnn.train.run` of each run's optimizer and
    initial state, vmapped over the runs (taken from the compile cache by
    :func:`_sweep_program`, so repeated sweeps reuse the compilation).

    A seed or hyperparameter shared by all runs is passed unbatched (axis None): then
    everything that depends only on it (the shuffles, the minibatch gathers, the first layer's
    input) is computed once, and a matmul of shared inputs by N weight matrices becomes one
    wide matmul instead of N small ones.

    With a :class:`SweepPlacement` the run axis is split over the mesh axis ``runs`` (and,
    on a 2-D mesh, each run's batch over ``data``, with the block shuffle of
    :func:`fnn.train.engine.shuffled_batches`): every output keeps the run axis sharded.

    With a precision ``policy`` every run trains as ``fit(..., precision=policy)`` does (a
    loss-scaled one under the ``'skip'`` guard)."""
    data_parallel = p.placement.data_parallel()
    objective = objective_value(p.objective, p.policy)   # cast once, for steps and validation
    guard = None if p.policy is None or p.policy.loss_scaling is None else "skip"

    def one_run(seed, hp, params0, model_state, data, val_data):
        key = jax.random.key(seed)
        optimizer = p.make_optimizer(**{k: hp[k].astype(dt) for k, dt in p.hp_dtypes})
        step = checked_step(objective, optimizer, precision=p.policy, **dict(p.grad_options))
        ts = TrainState.create(params0 if p.init is None else p.init(key), optimizer,
                               model_state, precision=p.policy)
        out = run(step, ts, data, key, epochs=p.epochs, batch_size=p.batch_size, guard=guard,
                  objective=objective.cast, val_data=val_data, val_batch_size=p.val_batch_size,
                  shuffle_blocks=p.shuffle_blocks, parallel=data_parallel)
        return out.ts, out.metrics

    in_axes = (p.seed_axis, dict(p.hp_axes), None, None, None, None)
    return jax.jit(jax.vmap(one_run, in_axes=in_axes, axis_size=p.n_runs,
                            **p.placement.vmap_options()), **p.placement.jit_options())


class SweepPlacement(NamedTuple):
    """A sweep spread over a mesh: the run axis over ``run_axis`` and, if ``data_axis`` is
    set (a 2-D mesh), each run's batch over it. ``mesh`` is the ``Auto`` twin of the user's
    ``user_mesh``. Its null twin is :data:`ONE_DEVICE` (:class:`OneDeviceSweep`)."""
    mesh: Any
    user_mesh: Any
    run_axis: str
    data_axis: str | None
    shards_runs = True   # every seed and hyperparameter is passed per run, split over the mesh

    def vmap_options(self) -> dict:
        return {"spmd_axis_name": self.run_axis}

    def jit_options(self) -> dict:
        return {"out_shardings": self.runs_sharding()}

    def data_parallel(self) -> DataParallel | SingleDevice:
        """Each run's batch placement: over ``data_axis``, or :data:`SINGLE_DEVICE` (a 1-D
        mesh: each run's batch whole on its device)."""
        return (SINGLE_DEVICE if self.data_axis is None
                else DataParallel(self.mesh, self.data_axis, self.user_mesh))

    def runs_sharding(self, mesh=None) -> NamedSharding:
        return NamedSharding(mesh or self.mesh, P(self.run_axis))

    def place(self, seeds, hp, hp_axes, params0, model_state, data, val_data):
        """The runner's arguments, placed: per-run arrays over the runs, the data over the
        batch, everything else replicated."""
        runs = self.runs_sharding()
        replicated = DataParallel(self.mesh, self.run_axis, self.user_mesh).replicated
        dp = self.data_parallel()
        shard = (lambda t: replicated(t)) if self.data_axis is None else (
            lambda t: dp.data(t) if num_examples("sweep", t) % dp.size == 0 else replicated(t))
        hp = {k: jax.device_put(v, runs) if axis == 0 else v
              for (k, axis), v in zip(hp_axes, hp.values())}
        return (jax.device_put(seeds, runs), hp, None if params0 is None else replicated(params0),
                replicated(model_state), shard(data),
                None if val_data is None else shard(val_data))

    def returned(self, tree):
        """``tree`` (run axis leading) on the user's mesh."""
        return jax.device_put(tree, self.runs_sharding(self.user_mesh))


def _placement(mesh, run_axis: str, data_axis: str, n_runs: int, batch_size: int, n: int):
    """The sweep's :class:`SweepPlacement` on ``mesh`` (:data:`ONE_DEVICE` without one),
    checked."""
    if mesh is None:
        return ONE_DEVICE
    if not isinstance(mesh, Mesh):
        raise TypeError(f"sweep: mesh must be a jax.sharding.Mesh, got {type(mesh).__name__}")
    if run_axis not in mesh.axis_names:
        raise ValueError(f"sweep: the mesh has axes {tuple(mesh.axis_names)}, none named "
                         f"{run_axis!r} for the runs; make it with jax.make_mesh((n,), "
                         f"({run_axis!r},)) (or (runs, data) for a 2-D sweep)")
    if n_runs % mesh.shape[run_axis]:
        raise ValueError(f"sweep: the {n_runs} runs do not divide by the {mesh.shape[run_axis]} "
                         f"devices of mesh axis {run_axis!r}; sweep a multiple of "
                         f"{mesh.shape[run_axis]} runs")
    placement = SweepPlacement(auto_mesh(mesh), mesh, run_axis,
                               data_axis if data_axis in mesh.axis_names else None)
    dp = placement.data_parallel()
    dp.check_batch("sweep", batch_size)
    if n % dp.size:
        raise ValueError(f"sweep: the data's {n} examples do not divide by the {dp.size} "
                         f"devices of mesh axis {data_axis!r}; drop or pad examples")
    return placement


def sweep(objective: Callable, init, make_optimizer: Callable, data, *, seeds=0,
          hparams: dict | None = None, epochs: int = 1, batch_size: int | None = None,
          model_state=None, validation_data=None, canonical_matmuls: bool = True, mesh=None,
          run_axis: str = "runs", data_axis: str = "data",
          shuffle_blocks: int | None = None, precision=None) -> SweepResult:
    """Train N runs of ``objective`` at once (one compiled, vmapped program) and return them all.

    Run ``i`` (``i < N``) equals ::

        fnn.fit(objective, init(jax.random.key(seeds[i])), make_optimizer(**hp_i), data,
                seed=seeds[i], epochs=epochs, batch_size=batch_size, model_state=model_state,
                validation_data=validation_data)

    with ``hp_i = {name: hparams[name][i]}``: the same initial parameters, the same shuffles
    (``fold_in(fold_in(key(seed), 0), epoch)``) and per-step keys (``fold_in(fold_in(key(seed),
    1), step)``), the same updates and per-epoch metrics, up to float rounding (vmapped
    kernels may sum in another order).

    Args:
      objective: ``(params, state, batch, key, train) -> (loss, (state, metrics))``, e.g.
        ``fnn.supervised(net)``.
      init: ``key -> params`` (called with ``jax.random.key(seeds[i])``, traced under vmap),
        or one params pytree that every run starts from.
      make_optimizer: ``(**hparams) -> optimizer`` (``fnn.optim.sgd``, ``fnn.optim.adam``, a
        lambda, ...); called inside the compiled program with each run's hyperparameters as
        scalar arrays (float ones cast to the widest float dtype of the params).
      data: pytree of arrays with a leading example axis, shared by all runs.
      seeds: an int (every run) or int array [N] in [0, 2**31).
      hparams: ``{argument name: number or array[N]}``. N is the common length of ``seeds``
        and the ``hparams`` arrays (numbers are broadcast); N = 1 when all are scalars.
      epochs, batch_size, model_state, validation_data: as in ``fnn.fit`` (batch_size None:
        one full-batch step per epoch; the last partial minibatch is dropped).
      canonical_matmuls: on the CPU, differentiate each 2-D matmul ``x @ w`` of the objective
        with the backward pass written as standard (batched) matmuls on materialised
        transposes (same values up to rounding; :func:`fnn._cpu_grad.value_and_grad`). Under
        vmap this keeps the weight-gradient products on XLA:CPU's fast matmul kernels (the
        ``cpu_grad_matmul`` row of ``scripts/bench.py``). If the objective cannot be re-traced
        this way, the sweep warns and runs it unchanged. Off on GPU and TPU.
      precision: a mixed-precision policy (:class:`fnn.precision.Policy` or its string), as in
        ``fnn.fit``: every run keeps its params in the param dtype and computes in the compute
        dtype; with loss scaling (float16) overflowing steps are skipped (``history`` then
        has ``skipped``).

    Returns a :class:`SweepResult`: stacked final ``params``/``model_state``/``opt_state``
    (leading axis N) and ``history`` ``{metric: np.ndarray[N, epochs]}``.

    Cost: one compilation per (objective, init, make_optimizer, sizes, epochs), cached; the
    runs share every kernel launch, so N small runs take far less than N times one run.
    Memory grows N-fold (params, optimizer state, activations of one step).
    """
    c = _checked(objective, init, make_optimizer, data, seeds, hparams, epochs, batch_size,
                 model_state, validation_data, precision)
    program, args = _prepared(c, objective, make_optimizer, mesh, run_axis, data_axis,
                              shuffle_blocks, canonical_matmuls)
    ts, metrics = _sweep_program(args, program)(*args)
    ts = program.placement.returned(ts)
    history = {k: np.asarray(v) for k, v in jax.device_get(metrics).items()}
    return SweepResult(ts.params, ts.model_state, ts.opt_state, history, c.seeds,
                       {k: np.asarray(a) for k, a in c.hp.items()})


class CheckedSweep(NamedTuple):
    """``sweep``'s arguments, checked (:func:`_checked`): ``n_runs``, the per-run ``seeds``
    (int32 [N]) and ``hp`` (``{name: [N]}``) with the dtypes ``hp_dtypes`` they reach the
    optimizer in, the precision ``policy`` (or None), the sizes, ``init`` (``key -> params``,
    or None), ``p0`` (run 0's initial params), the model state and the data as arrays."""
    n_runs: int
    seeds: np.ndarray
    hp: dict
    hp_dtypes: tuple
    policy: Any
    n: int
    batch_size: int
    val_batch_size: int | None
    epochs: int
    init: Callable | None
    p0: Any
    model_state: Any
    data: Any
    validation_data: Any


def _checked(objective, init, make_optimizer, data, seeds, hparams, epochs, batch_size,
             model_state, validation_data, precision) -> CheckedSweep:
    """``sweep``'s arguments checked before anything is traced (errors name ``sweep``): the
    objective, the factory called with every run's hyperparameters, the sizes, the seeds, and
    the data (and validation data) against the objective on run 0's initial params."""
    check_trainer("sweep", objective, None)
    function("sweep", "make_optimizer", make_optimizer, "(**hparams) -> optimizer, e.g. "
             "fnn.optim.sgd")
    epochs = positive_int("sweep", "epochs", epochs)
    policy = None if precision is None else get_policy(precision, who="sweep")
    n = num_examples("sweep", data)
    batch_size = batch_size_for("sweep", batch_size, n)
    n_runs, seeds_arr, hp = _runs(seeds, {} if hparams is None else hparams)
    model_state = {} if model_state is None else model_state
    data = jax.device_put(data)
    val_batch_size = None
    if validation_data is not None:
        n_val = num_examples("sweep(validation_data)", validation_data)
        val_batch_size = validation_batch_size(n_val, batch_size)
        validation_data = jax.device_put(validation_data)
    hp_dtypes = _hp_dtypes(init, callable(init), hp, policy)
    _check_optimizers(make_optimizer, hp, hp_dtypes, n_runs)
    p0 = init(jax.random.key(int(seeds_arr[0]))) if callable(init) else init
    check_data = objective_value(objective).check_data
    check_data(p0, model_state, data, "sweep")
    if validation_data is not None:
        check_data(p0, model_state, validation_data, "sweep(validation_data)")
    return CheckedSweep(n_runs, seeds_arr, hp, hp_dtypes, policy, n, batch_size, val_batch_size,
                        epochs, init if callable(init) else None, p0, model_state, data,
                        validation_data)


def _prepared(c: CheckedSweep, objective, make_optimizer, mesh, run_axis: str, data_axis: str,
              shuffle_blocks, canonical_matmuls: bool) -> tuple[SweepProgram, tuple]:
    """The program to run and its arguments ``(seeds, hparams, params0, model_state, data,
    val_data)``, placed: the placement on ``mesh``, the shuffle's blocks, which seeds and
    hyperparameters are shared (passed unbatched), and the gradient's form."""
    placement = _placement(mesh, run_axis, data_axis, c.n_runs, c.batch_size, c.n)
    shared = lambda a: not placement.shards_runs and bool(np.all(a == a[0]))
    seed_axis = None if shared(c.seeds) else 0
    hp_axes = tuple((k, None if shared(a) else 0) for k, a in sorted(c.hp.items()))
    program = SweepProgram(objective, c.init, make_optimizer, c.n_runs, c.n, c.batch_size,
                           c.val_batch_size, c.epochs, c.hp_dtypes, seed_axis, hp_axes,
                           placement, _shuffle_blocks(placement, shuffle_blocks, c),
                           _grad_options(objective, c, canonical_matmuls), c.policy)
    args = placement.place(jnp.asarray(c.seeds if seed_axis == 0 else c.seeds[0]),
                           {k: jnp.asarray(c.hp[k] if axis == 0 else c.hp[k][0])
                            for k, axis in hp_axes}, hp_axes,
                           None if c.init is not None else c.p0, c.model_state, c.data,
                           c.validation_data)
    return program, args


def _shuffle_blocks(placement, shuffle_blocks, c: CheckedSweep) -> int:
    """B of each run's shuffle: the data shards on a 2-D mesh, else ``shuffle_blocks`` (None:
    1); 1 for a full batch (no shuffle)."""
    blocks = positive_int("sweep", "shuffle_blocks", shuffle_blocks, none_ok=True) or 1
    if placement.data_axis:
        blocks = placement.data_parallel().size
    if c.batch_size >= c.n:
        return 1
    if blocks > 1 and (c.n % blocks or c.batch_size % blocks):
        raise ValueError(f"sweep: shuffle_blocks={blocks} needs the example count ({c.n}) and "
                         f"the batch size ({c.batch_size}) to divide by {blocks}")
    return blocks


def _grad_options(objective, c: CheckedSweep, canonical_matmuls: bool) -> tuple:
    """``checked_step``'s gradient options ``(('canonical_matmuls', bool), ('platform',
    name))``: canonical matmuls only if the objective re-traces with them (see ``sweep``)."""
    platform = target_platform(c.data)
    if canonical_matmuls:
        abstract = lambda t: jax.tree.map(lambda a: jax.ShapeDtypeStruct(np.shape(a), a.dtype),
                                          t)
        leaves, treedef = jax.tree.flatten(abstract((c.p0, c.model_state, jax.tree.map(
            lambda a: a[:c.batch_size], c.data))))
        canonical_matmuls = _matmuls_retrace(objective, tuple(leaves), treedef, platform,
                                             c.policy)
    return (("canonical_matmuls", canonical_matmuls), ("platform", platform))
