"""Streaming input: training and evaluation on an iterable of host batches (a generator, a
data loader, ...) for data that do not fit on the device or are generated on the fly.

The engine pulls ``K`` batches (``chunk``) from the iterable, checks each against the first
(same tree structure, shapes and dtypes), stacks them on the host into one ``(K, batch, ...)``
pytree, places it on the device, and scans its ``K`` steps in one compiled call
(:func:`fnn.train.engine.run_steps`). A background thread (:class:`Prefetcher`) pulls,
checks and stacks the next chunk while one runs, and waits for that one to finish before it
pulls a third, so at most ``2K`` batches (the running chunk and the prefetched one) are ever
ahead of the device: memory is bounded by about two chunks whatever the data set's size. The
iterable is read on that thread; the transfer to the device happens on the caller's (where
JAX's thread-local settings, such as ``jax.enable_x64``, apply).

Fed the same batches in the same order, training is bit-identical to the in-memory path:
the same step, the same keys ``fold_in(step_key, t)``, the same epoch reductions
(:func:`fnn.train.engine.finish_epoch`).
"""
from __future__ import annotations

import queue
import threading
from typing import Callable, Iterable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from fnn.validation import finite_data
from fnn.train.engine import (compiled_evaluation, compiled_last_steps, compiled_steps,
                              initial_guard, run_steps)
from fnn.train.programs import hyperparameters, spec
from fnn.train.step import TrainState

__all__ = ["is_stream", "check_stream_options", "check_validation_stream", "HostBatches",
           "StreamEpochs", "stream_mean_metrics"]


def is_stream(data) -> bool:
    """Whether ``data`` is a stream of batches: a list of batches (every element a tuple,
    list or dict, e.g. ``[(x0, y0), (x1, y1), ...]``) or any other iterable that is not an
    array or a tuple/list/dict of arrays (those are in-memory data sets)."""
    if isinstance(data, list) and data and all(isinstance(b, (tuple, list, dict)) for b in data):
        return True
    if isinstance(data, (tuple, list, dict, np.ndarray, jax.Array, str, bytes)):
        return False
    return hasattr(data, "__iter__")


def check_stream_options(who: str, batch_size, val_data) -> None:
    """What a stream makes meaningless or impossible, refused before training: a
    ``batch_size`` (a stream's batches are used as they come) and a one-shot iterator as
    validation data (it would be used up by the first validation pass)."""
    if batch_size is not None:
        raise ValueError(f"{who}: batch_size={batch_size!r} has no effect on a stream of "
                         f"batches (they are used as they come); leave batch_size=None and "
                         f"batch the stream itself (e.g. a DataLoader's batch_size)")
    check_validation_stream(who, val_data)


def check_validation_stream(who: str, val_data) -> None:
    """Validation data are read once per epoch: a one-shot iterator (``iter(v) is v``, e.g. a
    generator) would be used up after epoch 0, so it is refused before training."""
    if is_stream(val_data) and iter(val_data) is val_data:
        raise ValueError(f"{who}: validation_data is a one-shot iterator "
                         f"({type(val_data).__name__}), used up by the first epoch's "
                         f"validation pass; pass something read afresh each epoch: arrays "
                         f"(x, y), a list of (x, y) batches, or a re-iterable such as a "
                         f"DataLoader")


class HostBatches:
    """The batches of an iterable, pulled one at a time and checked.

    A one-shot iterator (``iter(data) is data``, e.g. a generator) is read on from where it
    stands, epoch after epoch; a re-iterable (a list, a data loader) starts afresh every
    epoch (:meth:`new_epoch`). Every batch must match the first one's tree structure, shapes
    and dtypes; errors name the batch's index in the stream (counting from 0). ``pulled``
    counts the batches taken so far. ``check_batch(batch, where)``, when set, checks each
    batch after the first (e.g. the objective's label range; the first is checked by the
    caller before anything compiles).
    """

    def __init__(self, data: Iterable, who: str, *, check_finite: bool = False,
                 fixed_batch: bool = True):
        self.data, self.who, self.check_finite = data, who, check_finite
        self.check_batch = None   # optional ``f(batch, where)``, run on every later batch
        self.fixed_batch = fixed_batch
        self.iterator = iter(data)
        self.one_shot = self.iterator is data
        self.pulled = 0
        self.first = self._next()
        if self.first is None:
            raise ValueError(f"{who}: the data stream is empty (its iterator yielded no batch)")
        self.spec = self._spec(self.first)
        self.structure = jax.tree.structure(self.first)
        self.pending = [self.first]  # pulled but not yet handed out
        self.batch_size = int(jax.tree.leaves(self.first)[0].shape[0])

    def _next(self):
        """The next batch, checked, or None when the iterable is exhausted."""
        try:
            batch = next(self.iterator)
        except StopIteration:
            return None
        index, self.pulled = self.pulled, self.pulled + 1
        batch = jax.tree.map(np.asarray, batch)
        if index and (jax.tree.structure(batch) != self.structure
                      or self._spec(batch) != self.spec):
            shapes = lambda b: jax.tree.map(lambda a: f"{a.dtype}{list(a.shape)}", b)
            same = ("structure, shapes and dtypes; drop or pad a short last batch"
                    if self.fixed_batch else "structure, dtypes and shapes after the batch axis")
            raise ValueError(f"{self.who}: batch {index} of the stream does not match batch 0: "
                             f"expected {shapes(self.first)}, got {shapes(batch)} (every batch "
                             f"needs the same {same})")
        if index == 0:
            leaves = jax.tree.leaves(batch)
            if not leaves or any(a.ndim == 0 for a in leaves) or len(
                    {a.shape[0] for a in leaves}) != 1:
                raise ValueError(f"{self.who}: every array of a batch needs the same leading "
                                 f"(batch) axis, got shapes of batch 0: "
                                 f"{[a.shape for a in leaves]}")
        if self.check_finite:
            finite_data(self.who, batch, f"batch {index} of the stream")
        if index and self.check_batch is not None:
            self.check_batch(batch, f"{self.who} (batch {index} of the stream)")
        return batch

    def _spec(self, batch):
        drop = 0 if self.fixed_batch else 1
        return jax.tree.map(lambda a: (a.shape[drop:], a.dtype), batch)

    def new_epoch(self) -> None:
        """Start an epoch: a re-iterable is iterated afresh (the first epoch uses the batch
        already peeked at)."""
        if not self.one_shot and self.pulled > len(self.pending):
            self.iterator = iter(self.data)

    def take(self, count: int, ended: Callable[[int], str]) -> list:
        """The next ``count`` batches; if the iterable ends first, a ``ValueError`` that says
        ``ended(i)`` for the first missing batch ``i`` (counting within these)."""
        out = self.pending[:count]
        self.pending = self.pending[count:]
        while len(out) < count:
            batch = self._next()
            if batch is None:
                raise ValueError(f"{self.who}: {ended(len(out))} (the iterable stopped after "
                                 f"{self.pulled} batches in all)")
            out.append(batch)
        return out

    def one_pass(self):
        """Every batch of one pass (a one-shot iterator: all that are left)."""
        self.new_epoch()
        pending, self.pending = self.pending, []
        yield from pending
        while (batch := self._next()) is not None:
            yield batch


class Prefetcher:
    """Runs a generator of chunks on a background thread, at most one chunk ahead of the
    device: iterate it for the chunks, and call :meth:`finished` with an output of each
    chunk's compiled call; that waits for the chunk to finish and lets the thread pull the
    next one but one. So while chunk ``i`` runs, chunk ``i + 1`` is pulled, checked and
    stacked, and chunk ``i + 2`` waits: at most two chunks are ever ahead of the device. An error in the generator (a short or mismatched stream) is raised in the
    caller's thread. Use as a context manager, so the thread stops when the caller does."""

    def __init__(self, chunks):
        self.chunks, self.queue = chunks, queue.Queue()
        self.slots, self.stop = threading.Semaphore(2), threading.Event()
        self.thread = threading.Thread(target=self._produce, daemon=True)

    def _produce(self) -> None:
        while True:
            self.slots.acquire()
            if self.stop.is_set():
                return
            try:
                item = next(self.chunks)
            except StopIteration:
                self.queue.put(_DONE)
                return
            except BaseException as err:  # noqa: BLE001 - handed to the consumer, raised there
                self.queue.put(_Failed(err))
                return
            self.queue.put(item)

    def __enter__(self) -> "Prefetcher":
        self.thread.start()
        return self

    def __iter__(self):
        while (item := self.queue.get()) is not _DONE:
            if isinstance(item, _Failed):
                raise item.error
            yield item

    def finished(self, output) -> None:
        """Wait for the chunk whose call returned ``output``; free its slot."""
        jax.block_until_ready(output)
        self.slots.release()

    def __exit__(self, *exc) -> None:
        self.stop.set()
        self.slots.release()  # wake the thread if it waits for a slot


_DONE = object()


class _Failed(NamedTuple):
    error: BaseException


def _stack(batches: list):
    return jax.tree.map(lambda *leaves: np.stack(leaves), *batches)


class StreamEpochs:
    """``fit``'s epochs over a stream: ``runner(ts, first_epoch, count) -> (ts, metrics,
    guard)``, each epoch ``steps_per_epoch`` batches in chunks of ``chunk`` (see the module
    docstring); ``place`` puts a stacked host chunk on the device(s). ``ts`` is donated.
    ``evaluate_validation(ts)`` (optional) adds metrics after each epoch (for streamed
    validation data; arrays go through the loop's own validation pass). ``keep_input``: the
    ``ts`` passed in is copied, not donated, so it stays valid until the call returns: a
    Ctrl-C anywhere in a streamed epoch (waiting for a batch, in a chunk) leaves the caller
    the state of the last complete epoch to save, as in memory."""

    def __init__(self, loop_of: Callable, hp, batches: HostBatches, steps_per_epoch: int,
                 chunk: int, val_data, keys, *, place: Callable = jax.device_put,
                 evaluate_validation: Callable | None = None, keep_input: bool = False):
        self.loop_of, self.hp, self.loop = loop_of, hp, loop_of(hp)
        self.batches, self.steps, self.chunk = batches, steps_per_epoch, chunk
        self.val_data, self.keys, self.place = val_data, keys, place
        self.evaluate_validation, self.keep_input = evaluate_validation, keep_input
        self.programs = {}  # (kind, chunk spec): the program from the compile cache

    def _program(self, carry, chunk, earlier=None):
        """The compiled chunk (``earlier`` given: the epoch's last chunk) for this shape."""
        key = ("last" if earlier is not None else "steps", spec(chunk), spec(earlier))
        if key not in self.programs:
            self.programs[key] = (
                compiled_steps(self.loop_of, self.hp, carry[0], chunk) if earlier is None else
                compiled_last_steps(self.loop_of, self.hp, carry[0], chunk, earlier,
                                    self.val_data))
        return self.programs[key]

    def _chunks(self, epoch: int):
        """The epoch's chunks, stacked on the host: ``(chunk, is_last)``."""
        self.batches.new_epoch()
        for start in range(0, self.steps, self.chunk):
            count = min(self.chunk, self.steps - start)
            ended = lambda i, start=start: (
                f"the stream ended in epoch {epoch}, which needs {self.steps} batches "
                f"(steps_per_epoch={self.steps}); batch {start + i} of the epoch is missing")
            yield _stack(self.batches.take(count, ended)), start + count == self.steps

    def epoch(self, carry, epoch: int):
        """One epoch: ``(ts, guard) -> ((ts, guard), metrics)``. Its chunks are pulled, stacked
        and placed by a :class:`Prefetcher` thread while the device runs the one before."""
        earlier, row = [], None
        with Prefetcher(self._chunks(epoch)) as chunks:
            for host_chunk, last in chunks:
                chunk = self.place(host_chunk)  # here: JAX's thread-local settings (x64) apply
                if last:  # the epoch's reductions and validation in one program with its steps
                    done = (jax.tree.map(lambda *a: jnp.concatenate(a), *earlier) if earlier
                            else self._no_steps(carry, chunk))
                    carry, row = self._program(carry, chunk, done)(
                        self.hp, carry, chunk, self.keys[1], done, self.val_data)
                    chunks.finished(row)
                else:
                    carry, (metrics, ok) = self._program(carry, chunk)(self.hp, carry, chunk,
                                                                      self.keys[1])
                    earlier.append((metrics, ok))
                    chunks.finished(ok)
        if self.evaluate_validation is not None:
            row.update(self.evaluate_validation(carry[0]))
        return carry, row

    def _no_steps(self, carry, chunk):
        """``(metrics, ok)`` of zero steps: what an epoch of one chunk had before it."""
        shapes = jax.eval_shape(lambda c, b: run_steps(self.loop, c, b, self.keys[1])[1],
                                carry, chunk)
        return jax.tree.map(lambda s: jnp.zeros((0, *s.shape[1:]), s.dtype), shapes)

    def __call__(self, ts: TrainState, first_epoch: int, count: int):
        if self.keep_input:
            ts = jax.tree.map(jnp.copy, ts)
        carry, rows = (ts, initial_guard(self.loop)), []
        for e in range(first_epoch, first_epoch + count):
            carry, row = self.epoch(carry, e)
            rows.append(row)
        metrics = jax.tree.map(lambda *vs: jnp.stack(vs), *rows)
        return carry[0], metrics, carry[1]


def stream_mean_metrics(objective: Callable, params, state, batches: HostBatches) -> dict:
    """Example-weighted mean of ``objective``'s metrics (evaluation mode) over every batch of
    a stream: ``sum_b |b| * metrics(b) / sum_b |b|``, accumulated in float64 on the host."""
    sums, n, programs = None, 0, {}
    hp = hyperparameters(objective=objective)
    for batch in batches.one_pass():
        size = int(jax.tree.leaves(batch)[0].shape[0])
        shape = spec(batch)
        if shape not in programs:
            programs[shape] = compiled_evaluation(objective, params, state, batch)
        metrics = jax.device_get(programs[shape](hp, params, state, batch))
        values = {k: np.float64(v) * size for k, v in metrics.items()}
        sums = values if sums is None else {k: sums[k] + values[k] for k in sums}
        n += size
    if not n:
        raise ValueError(f"{batches.who}: the data stream yielded no batch in this pass; a "
                         f"generator or iterator is used up after one pass: pass a re-iterable "
                         f"(a list of (x, y) batches, a data loader) or arrays to evaluate on "
                         f"more than once")
    return {k: v / n for k, v in sums.items()}
