"""The one epoch engine: every trainer in fnn (``fit``, ``evaluate``, the pure
:func:`fnn.train.run` and ``sweep``, its vmap, ``multi_step`` and the GAN trainer through
``fit``, the experiments' claim trainer through ``run``) runs its epochs here;
``fnn.data.epochs`` shuffles with its keys and order.

What a trainer passes in is a :class:`EpochLoop` (its step function and sizes) and a carry
``(ts, guard)`` whose ``ts`` is a :class:`~fnn.train.step.TrainState` (one tree, or a dict of
trees for several); what the engine owns is everything else:

* **Keys.** One base key gives ``(shuffle_key, step_key) = (fold_in(key, 0), fold_in(key,
  1))`` (:func:`epoch_keys`); epoch ``e`` is shuffled with ``fold_in(shuffle_key, e)``
  (:func:`epoch_order`) and step ``t`` gets ``fold_in(step_key, t)``, ``t = ts.step``. A
  run is a function of its key.
* **The minibatch scan.** Each epoch is one ``lax.scan`` over ``n // batch_size`` shuffled
  minibatches (the last partial batch is dropped); a full-batch epoch (``batch_size == n``) is
  one step on the whole, unshuffled set. Epochs are themselves a ``lax.scan``
  (:func:`run_epochs`), unrolled ``unroll`` times.
* **Metric means** over an epoch's steps (or every step's metrics, ``per_step=True``).
* **The validation pass** after each epoch (:func:`mean_metrics`, also ``evaluate``'s).
* **The NaN guard** (``guard``): None (off), ``'raise'`` (after the first step whose finite
  checks fail nothing is updated any more; :class:`Guard` records the step, the check and the
  loss) or ``'skip'`` (a failing step leaves params, model and optimizer state unchanged; the
  step counter still advances so later keys do not shift, and a loss scale goes on, halved:
  :func:`fnn.train.step.skip_failed`; metrics average the applied steps and ``skipped``
  counts the others).
* **Streaming**: :func:`run_steps` scans a chunk of host batches stacked on a leading axis
  (``fnn.train.stream`` pulls, checks, stacks and prefetches them), and
  :func:`finish_epoch` reduces an epoch's steps exactly as the in-memory epoch does.

Everything here is a pure, traceable function of arrays (:func:`fnn.train.run` is
:func:`run_epochs` from epoch 0, which ``sweep`` vmaps over runs); ``compiled_*`` are the
jitted, donating forms that ``fit`` calls, taken from the one compile cache
(:mod:`fnn.train.programs`). A trainer hands them ``loop_of(hp)``, a function building its
:class:`EpochLoop` from the hyperparameters ``hp`` (runtime inputs of the program), and the
program's key is

    (kind, fingerprint of loop_of(hp).step traced on (ts, one batch) and of its validation
     pass, hp as inputs; batch_size, num_examples, guard, per_step, val_batch_size, unroll,
     shuffle_blocks, placement; specs (structure, shapes, dtypes, shardings) of ts and data)

so rebuilt objects of the same structure share a program and two different programs never do.
The epoch count is a runtime trip count (:func:`run_epochs_upto`, at most
:data:`EPOCH_CHUNK` epochs per call): 5 and 7 epochs run the same program.
"""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from fnn.sharding import SINGLE_DEVICE
from fnn.train.programs import (PROGRAMS, fingerprint, hyperparameters, identity,
                                 remembered, spec, with_hyperparameters)
from fnn.train.step import TrainState, skip_failed

__all__ = ["EpochLoop", "Guard", "epoch_keys", "guarded_step", "epoch_order", "shuffled_batches",
           "finish_epoch", "run_epoch", "run_epochs", "run_steps", "mean_metrics",
           "initial_guard", "compiled_epochs", "compiled_steps", "run_last_steps",
           "compiled_last_steps", "run_epochs_upto", "program_key", "example_batch",
           "EPOCH_CHUNK", "epoch_chunk", "batch_metrics", "compiled_evaluation",
           "ArrayEpochs", "take_batch"]

GUARDS = (None, "raise", "skip")


class EpochLoop(NamedTuple):
    """What the engine runs: a step and the sizes and options of its loop (static; the
    compile cache keys a program by the step's fingerprint and these fields).

    ``step``: ``(ts, batch, key) -> (ts, metrics, finite)`` (:func:`fnn.train.checked_step`,
    :func:`fnn.train.multi_step`'s ``checked``, or any such function); ``batch_size`` and
    ``num_examples`` (None for a stream: only :func:`run_steps` then); ``guard``: None,
    ``'raise'`` or ``'skip'``; ``per_step``: keep every step's metrics, shape
    ``(steps_per_epoch, ...)``, instead of their epoch mean; ``objective`` and
    ``val_batch_size``: the validation pass (``mean_metrics(objective, ...)`` over the
    validation data, reported as ``val_<metric>``); ``unroll``: epochs per iteration of the
    epoch loop (results then depend, in the last bits, on how epochs are chunked into calls);
    ``shuffle_blocks``: B, the shuffle's blocks (:func:`shuffled_batches`; the number of data
    shards when data-parallel); ``parallel``: the placement, a :class:`fnn.sharding.DataParallel`
    (minibatches constrained to it, every output replicated) or the null placement
    :data:`fnn.sharding.SINGLE_DEVICE` (the default: one device, nothing to do).
    """
    step: Callable
    batch_size: int
    num_examples: int | None = None
    guard: str | None = None
    per_step: bool = False
    objective: Callable | None = None
    val_batch_size: int | None = None
    unroll: int = 1
    shuffle_blocks: int = 1
    parallel: Any = SINGLE_DEVICE

    @property
    def steps_per_epoch(self) -> int:
        return self.num_examples // self.batch_size

    @property
    def full_batch(self) -> bool:
        return self.batch_size == self.num_examples


class Guard(NamedTuple):
    """The ``'raise'`` guard's carry: the first non-finite step (-1: none yet), which finite
    check failed (an index into :func:`fnn.train.check_sites`) and the loss there."""
    bad_step: jax.Array
    bad_check: jax.Array
    bad_loss: jax.Array


def epoch_keys(key: jax.Array) -> tuple[jax.Array, jax.Array]:
    """``(shuffle_key, step_key) = (fold_in(key, 0), fold_in(key, 1))`` for a run's base key
    (``fit`` uses ``jax.random.key(seed)``)."""
    return jax.random.fold_in(key, 0), jax.random.fold_in(key, 1)


def initial_guard(loop: EpochLoop) -> Guard | None:
    """The guard's starting carry: a :class:`Guard` with no bad step for ``'raise'``, else None."""
    if loop.guard != "raise":
        return None
    return Guard(jnp.int32(-1), jnp.int32(-1), jnp.float32(jnp.nan))


def _select(ok, new, old):
    """``new`` where the scalar ``ok`` holds, else ``old`` (leafwise, no broadcasting)."""
    return jax.tree.map(lambda a, b: jnp.where(ok, a, b), new, old)


def step_loss(metrics: dict) -> jax.Array:
    """The loss a step reports: ``metrics['loss']``, or for a multi-tree step
    (:func:`fnn.train.multi_step`) the sum of its ``{name}_loss`` metrics."""
    if "loss" in metrics:
        return metrics["loss"]
    return sum(metrics[k] for k in sorted(metrics) if k.endswith("_loss"))


def guarded_step(loop: EpochLoop, carry, batch, step_key):
    """One step with key ``fold_in(step_key, ts.step)`` under the loop's NaN guard:
    ``(ts, guard), batch -> ((ts, guard), metrics, ok)``."""
    ts, g = carry
    new, metrics, finite = loop.step(ts, batch, jax.random.fold_in(step_key, ts.step))
    ok = jnp.all(finite)
    if loop.guard is None:
        return (new, g), metrics, ok
    if loop.guard == "skip":   # the step's params and states only; counters go on
        return (skip_failed(ok, new, ts), g), metrics, ok
    first = (g.bad_step < 0) & ~ok
    g = Guard(jnp.where(first, ts.step, g.bad_step),
              jnp.where(first, jnp.argmin(finite).astype(jnp.int32), g.bad_check),
              jnp.where(first, step_loss(metrics).astype(jnp.float32), g.bad_loss))
    return (_select(g.bad_step < 0, new, ts), g), metrics, ok


def epoch_order(shuffle_key, epoch, num_examples: int, blocks: int = 1) -> jax.Array:
    """Epoch ``epoch``'s order of the examples, ``k = fold_in(shuffle_key, epoch)``:
    ``permutation(k, n)``, shape ``(n,)``; ``blocks = B > 1``: row ``d`` is
    ``permutation(fold_in(k, d), n / B)`` (indices within block ``d``), shape ``(B, n / B)``.
    The one shuffle of fnn (:func:`shuffled_batches`, ``fnn.data.epochs``)."""
    key = jax.random.fold_in(shuffle_key, epoch)
    if blocks == 1:
        return jax.random.permutation(key, num_examples)
    return jax.vmap(lambda d: jax.random.permutation(jax.random.fold_in(key, d),
                                                     num_examples // blocks))(jnp.arange(blocks))


def shuffled_batches(shuffle_key, epoch, num_examples: int, batch_size: int,
                     blocks: int = 1) -> jax.Array:
    """Epoch ``epoch``'s minibatches as example indices, cut from :func:`epoch_order`.

    ``blocks = 1``: ``permutation(fold_in(shuffle_key, epoch), n)`` cut into ``n //
    batch_size`` rows of ``batch_size`` (the remainder dropped); shape ``(steps,
    batch_size)``.

    ``blocks = B > 1`` (data-parallel, one block per data shard): the ``n`` examples are ``B``
    contiguous blocks of ``n / B``, each permuted on its own (:func:`epoch_order`), and
    minibatch ``t`` takes rows ``[t b, (t + 1) b)``, ``b = batch_size / B``, of every
    permuted block (indices within the block); shape ``(steps, B, b)``. No example leaves its
    shard, so no device needs another's data.
    """
    order = epoch_order(shuffle_key, epoch, num_examples, blocks)
    if blocks == 1:
        steps = num_examples // batch_size
        return order[: steps * batch_size].reshape(steps, batch_size)
    per_block, per_batch = num_examples // blocks, batch_size // blocks
    steps = per_block // per_batch
    return order[:, : steps * per_batch].reshape(blocks, steps, per_batch).transpose(1, 0, 2)


def take_batch(loop: EpochLoop, data, index):
    """The minibatch of ``data`` (every leaf ``(n, ...)``) at one row of
    :func:`shuffled_batches`; data-parallel, each shard gathers from its own block."""
    if loop.shuffle_blocks == 1:
        batch = jax.tree.map(lambda a: a[index], data)
    else:
        blocks = loop.shuffle_blocks

        def gather(a):
            split = a.reshape(blocks, a.shape[0] // blocks, *a.shape[1:])
            return jax.vmap(lambda block, i: block[i])(split, index).reshape(
                -1, *a.shape[1:])

        batch = jax.tree.map(gather, data)
    return loop.parallel.constrain(batch)


def _masked_mean(metrics, ok):
    """Per-metric mean over the steps where ``ok`` (NaN when there are none)."""
    count = jnp.sum(ok)

    def mean(m):
        if not jnp.issubdtype(m.dtype, jnp.inexact):
            m = m.astype(jnp.float32)
        return jnp.sum(jnp.where(ok, m, jnp.zeros_like(m)), axis=0) / count.astype(m.dtype)

    return jax.tree.map(mean, metrics)


def finish_epoch(loop: EpochLoop, ts: TrainState, metrics, ok, val_data, *,
                 stacked: bool = True) -> dict:
    """An epoch's metrics from its steps' ``metrics`` and guard flags ``ok`` (leading axis:
    steps; ``stacked=False``: the one step of a full-batch epoch, unstacked): their mean (over
    the applied steps under ``'skip'``, plus ``skipped``), or every step's with ``per_step``;
    then ``val_<metric>`` of the validation pass on ``val_data`` (if not None)."""
    if loop.per_step:
        if not stacked:
            metrics, ok = jax.tree.map(lambda m: m[None], metrics), ok[None]
        if loop.guard == "skip":
            metrics["skipped"] = (~ok).astype(jnp.int32)
    elif loop.guard == "skip":
        if not stacked:
            metrics, ok = jax.tree.map(lambda m: m[None], metrics), ok[None]
        metrics = _masked_mean(metrics, ok)
        metrics["skipped"] = jnp.sum(~ok).astype(jnp.int32)
    elif stacked:
        metrics = jax.tree.map(lambda m: jnp.mean(m, axis=0), metrics)
    if val_data is not None:
        val = mean_metrics(loop.objective, ts.params, ts.model_state, val_data,
                           loop.val_batch_size)
        metrics.update({f"val_{k}": v for k, v in val.items()})
    return metrics


def run_steps(loop: EpochLoop, carry, batches, step_key):
    """Scan the steps of ``batches`` (every leaf with a leading step axis):
    ``-> (carry, (metrics, ok))``, each stacked over the steps."""

    def body(carry, batch):
        carry, metrics, ok = guarded_step(loop, carry, batch, step_key)
        return carry, (metrics, ok)

    return jax.lax.scan(body, carry, batches)


def run_epoch(loop: EpochLoop, carry, data, val_data, keys, epoch):
    """One epoch over ``data`` in memory (every leaf ``(n, ...)``): ``-> (carry, metrics)``."""
    shuffle_key, step_key = keys
    if loop.full_batch:  # one step on the whole set: no shuffle, no gather
        carry, metrics, ok = guarded_step(loop, carry, data, step_key)
        return carry, finish_epoch(loop, carry[0], metrics, ok, val_data, stacked=False)
    index = shuffled_batches(shuffle_key, epoch, loop.num_examples, loop.batch_size,
                             loop.shuffle_blocks)

    def body(carry, idx):
        carry, metrics, ok = guarded_step(loop, carry, take_batch(loop, data, idx), step_key)
        return carry, (metrics, ok)

    carry, (metrics, ok) = jax.lax.scan(body, carry, index)
    return carry, finish_epoch(loop, carry[0], metrics, ok, val_data)


def run_epochs(loop: EpochLoop, carry, data, val_data, keys, first_epoch, count: int):
    """Epochs ``first_epoch .. first_epoch + count - 1`` as one ``lax.scan``:
    ``-> (carry, metrics)``, each metric with a leading epoch axis of length ``count``."""
    epoch_ids = first_epoch + jnp.arange(count)
    return jax.lax.scan(lambda c, e: run_epoch(loop, c, data, val_data, keys, e), carry,
                        epoch_ids, unroll=min(loop.unroll, count))


def mean_metrics(objective: Callable, params, state, data, batch_size: int) -> dict:
    """Example-weighted mean of ``objective``'s metrics in evaluation mode (train=False, no
    key) over ``data`` (every leaf ``(n, ...)``): full batches of ``batch_size`` plus the
    remainder, ``sum_b |b| * metrics(b) / n``; ``'loss'`` is the objective's total."""
    n = jax.tree.leaves(data)[0].shape[0]
    full, rest = divmod(n, batch_size)

    metrics_of = lambda batch: batch_metrics(objective, params, state, batch)

    batches = jax.tree.map(lambda a: a[: full * batch_size].reshape(full, batch_size, *a.shape[1:]),
                           data)
    sums = jax.tree.map(lambda m: jnp.sum(m, axis=0) * batch_size, jax.lax.map(metrics_of, batches))
    if rest:
        tail = metrics_of(jax.tree.map(lambda a: a[full * batch_size:], data))
        sums = jax.tree.map(lambda s, m: s + m * rest, sums, tail)
    return jax.tree.map(lambda s: s / n, sums)


def run_epochs_upto(loop: EpochLoop, carry, data, val_data, keys, first_epoch, trips,
                    chunk: int):
    """Epochs ``first_epoch .. first_epoch + trips - 1`` as one loop whose trip count
    ``trips <= chunk`` is a runtime value: ``-> (carry, metrics)``, each metric with a leading
    axis of length ``chunk`` whose first ``trips`` rows are the epochs' (the rest zero). The
    loop runs ``loop.unroll`` epochs per iteration, then the remainder one at a time; each
    epoch is :func:`run_epoch`, as in :func:`run_epochs`."""
    one = lambda c, e: run_epoch(loop, c, data, val_data, keys, e)
    shapes = jax.eval_shape(one, carry, jnp.int32(0))[1]
    rows = jax.tree.map(lambda s: jnp.zeros((chunk, *s.shape), s.dtype), shapes)

    def epochs(width):
        def body(i, state):
            carry, rows = state
            for j in range(width):
                e = i * width + j
                carry, metrics = one(carry, first_epoch + e)
                rows = jax.tree.map(lambda r, m: jax.lax.dynamic_update_index_in_dim(r, m, e, 0),
                                    rows, metrics)
            return carry, rows
        return body

    trips = jnp.asarray(trips, jnp.int32)
    if loop.unroll == 1:
        return jax.lax.fori_loop(0, trips, epochs(1), (carry, rows))
    groups = trips // loop.unroll
    carry, rows = jax.lax.fori_loop(0, groups, epochs(loop.unroll), (carry, rows))
    return jax.lax.fori_loop(groups * loop.unroll, trips, epochs(1), (carry, rows))


# ----------------------------------------------------------------------------- compiled forms

EPOCH_CHUNK = 16384
"""The most epochs one compiled call of :func:`compiled_epochs` runs (its metric rows)."""


def epoch_chunk(loop: EpochLoop) -> int:
    """The metric rows (most epochs per call) of the loop's program: :data:`EPOCH_CHUNK`,
    or 1 when every step's metrics are kept (``per_step``: the GAN runs an epoch per call)."""
    return 1 if loop.per_step else EPOCH_CHUNK


def _placement(loop: EpochLoop) -> dict:
    """jit's keyword arguments for the loop's placement: every output replicated when
    data-parallel (so a donated carry comes back as it went in), else none."""
    return loop.parallel.jit_options()


def example_batch(loop: EpochLoop, data):
    """Shapes and dtypes (``jax.ShapeDtypeStruct``) of one minibatch the loop's step sees
    when it runs over ``data`` in memory (the whole set when full-batch)."""
    size = loop.num_examples if loop.full_batch else loop.batch_size
    return jax.tree.map(lambda a: jax.ShapeDtypeStruct((size, *a.shape[1:]), a.dtype), data)


def program_key(kind: str, loop_of: Callable, hp, ts: TrainState, batch, val_data) -> tuple:
    """The compile-cache key of a program built from ``loop_of(hp)`` (see
    :mod:`fnn.train.programs`): ``kind``, the fingerprint of its step traced on ``(ts,
    batch)`` (or of ``loop_of.step_parts(hp, ts, batch, key)``, with ``loop_of.static``,
    where ``loop_of`` has them) and of its validation pass on ``val_data`` (if any), all with
    the hyperparameters ``hp`` as inputs, and the loop's configuration."""
    loop = loop_of(hp)
    # A loop_of may say what determines its step more cheaply than the step's own trace
    # (fit: the objective's forward pass and the optimizer's update; the gradient follows
    # from the forward pass, given ``loop_of.static``: the precision policy and the platform).
    step_parts = getattr(loop_of, "step_parts", None)

    def traced(hp, ts, batch, key, val_data):
        traced_loop = loop_of(hp)
        out = (step_parts(hp, ts, batch, key) if step_parts is not None
               else traced_loop.step(ts, batch, key))
        if val_data is None:
            return out
        return out, mean_metrics(traced_loop.objective, ts.params, ts.model_state, val_data,
                                 loop.val_batch_size)

    fp = fingerprint(traced, hp, ts, batch, jax.random.key(0), val_data)
    return (kind, fp, getattr(loop_of, "static", None), loop.batch_size, loop.num_examples,
            loop.guard, loop.per_step, loop.val_batch_size, loop.unroll, loop.shuffle_blocks,
            loop.parallel)


def compiled_epochs(loop_of: Callable, hp, ts: TrainState, data, val_data) -> Callable:
    """``run(hp, ts, data, val_data, keys, first_epoch, trips) -> (ts, metrics[chunk],
    guard)``, ``chunk = epoch_chunk(loop)``: :func:`run_epochs_upto` of ``loop_of(hp)`` jitted with ``ts`` donated, from the
    compile cache (one program per structure: the epoch count and ``hp`` are runtime
    values). The epoch loop is not unrolled unless the loop asks, so chunking never changes
    a bit of the params, states or training metrics."""
    loop = loop_of(hp)
    chunk = epoch_chunk(loop)
    shapes = (spec(ts), spec(data), spec(val_data), chunk)
    key = remembered(("epochs", identity(loop_of), shapes), lambda: program_key(
        "epochs", loop_of, hp, ts, example_batch(loop, data), val_data) + shapes)

    def make():
        def fnn_epochs(hp, ts, data, val_data, keys, first_epoch, trips):
            loop = loop_of(hp)
            (ts, g), metrics = run_epochs_upto(loop, (ts, initial_guard(loop)), data, val_data,
                                               keys, first_epoch, trips, chunk)
            return ts, metrics, g
        return jax.jit(fnn_epochs, donate_argnums=(1,), **_placement(loop))

    return PROGRAMS.get(key, make)


def compiled_steps(loop_of: Callable, hp, ts: TrainState, batches) -> Callable:
    """``run(hp, (ts, guard), batches, step_key) -> ((ts, guard), (metrics, ok))``:
    :func:`run_steps` of ``loop_of(hp)`` jitted with the carry donated (one chunk of a
    stream), from the compile cache."""
    loop = loop_of(hp)
    batch = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), batches)
    shapes = (spec(ts), spec(batches))
    key = remembered(("steps", identity(loop_of), shapes),
                     lambda: program_key("steps", loop_of, hp, ts, batch, None) + shapes)
    def fnn_steps(hp, carry, batches, step_key):
        return run_steps(loop_of(hp), carry, batches, step_key)

    return PROGRAMS.get(key, lambda: jax.jit(fnn_steps, donate_argnums=(1,), **_placement(loop)))


def batch_metrics(objective: Callable, params, state, batch) -> dict:
    """``objective``'s metrics on one batch in evaluation mode (train=False, no key):
    ``{'loss': total, **metrics}``."""
    total, (_, metrics) = objective(params, state, batch, None, False)
    return {"loss": total, **metrics}


def compiled_evaluation(objective: Callable, params, state, data,
                        batch_size: int | None = None) -> Callable:
    """``run(hp, params, state, data) -> metrics`` from the compile cache:
    :func:`mean_metrics` over ``data`` in batches of ``batch_size`` (None: :func:`batch_metrics`
    of ``data`` as one batch), with the objective's hyperparameters ``hp =
    hyperparameters(objective=objective)`` as runtime inputs."""
    def fnn_evaluate(hp, params, state, data):
        objective_ = with_hyperparameters(hp, objective=objective)["objective"]
        if batch_size is None:
            return batch_metrics(objective_, params, state, data)
        return mean_metrics(objective_, params, state, data, batch_size)

    hp = hyperparameters(objective=objective)
    key = ("evaluate", fingerprint(fnn_evaluate, hp, params, state, data), batch_size,
           spec(data), spec((params, state)))
    return PROGRAMS.get(key, lambda: jax.jit(fnn_evaluate))


def run_last_steps(loop: EpochLoop, carry, batches, step_key, earlier, val_data):
    """The last chunk of a streamed epoch: :func:`run_steps` on ``batches``, then
    :func:`finish_epoch` over the epoch's steps (``earlier = (metrics, ok)`` of its previous
    chunks, then these): ``-> (carry, metrics)``, in one program as in the in-memory epoch."""
    carry, (metrics, ok) = run_steps(loop, carry, batches, step_key)
    metrics, ok = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), earlier, (metrics, ok))
    return carry, finish_epoch(loop, carry[0], metrics, ok, val_data)


def compiled_last_steps(loop_of: Callable, hp, ts: TrainState, batches, earlier,
                        val_data) -> Callable:
    """:func:`run_last_steps` of ``loop_of(hp)`` jitted with the carry donated, from the
    compile cache: ``run(hp, carry, batches, step_key, earlier, val_data)``."""
    loop = loop_of(hp)
    batch = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), batches)
    shapes = (spec(ts), spec(batches), spec(earlier), spec(val_data))
    key = remembered(("last_steps", identity(loop_of), shapes), lambda: program_key(
        "last_steps", loop_of, hp, ts, batch, val_data) + shapes)
    def fnn_last_steps(hp, carry, batches, step_key, earlier, val_data):
        return run_last_steps(loop_of(hp), carry, batches, step_key, earlier, val_data)

    return PROGRAMS.get(key, lambda: jax.jit(fnn_last_steps, donate_argnums=(1,),
                                             **_placement(loop)))


class ArrayEpochs:
    """``fit``'s epochs over arrays in memory: ``runner(ts, first_epoch, count) -> (ts,
    metrics, guard)`` as device values (dispatched, not waited for; each metric has
    :func:`epoch_chunk` rows, the first ``count`` of them the epochs'); ``ts`` is donated.
    ``loop_of(hp)`` builds the loop with the hyperparameters ``hp`` (runtime inputs of the
    program, :mod:`fnn.train.programs`). ``evaluate_validation(ts) -> {name: value}``
    (optional, with ``count == 1``) adds metrics computed outside the compiled epoch (a
    streamed validation set)."""

    def __init__(self, loop_of: Callable, hp, data, val_data, keys, *,
                 evaluate_validation: Callable | None = None):
        self.loop_of, self.data, self.val_data, self.keys = loop_of, data, val_data, keys
        self.hp = jax.device_put(hp)  # device scalars (weak types kept), once
        self.evaluate_validation = evaluate_validation
        self.program = None

    def __call__(self, ts: TrainState, first_epoch: int, count: int):
        if self.program is None:
            self.program = compiled_epochs(self.loop_of, self.hp, ts, self.data, self.val_data)
        ts, metrics, guard = self.program(self.hp, ts, self.data, self.val_data, self.keys,
                                          first_epoch, count)
        if self.evaluate_validation is not None:
            extra = self.evaluate_validation(ts)
            metrics = {**metrics, **{k: jnp.full((count,), v, jnp.float32)
                                     for k, v in extra.items()}}
        return ts, metrics, guard
