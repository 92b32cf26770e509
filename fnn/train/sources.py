"""What ``fit`` reads its training data from, made in one place (:func:`input_source`): arrays
in memory (:class:`ArraySource`) or a stream of host batches (:class:`StreamSource`), checked
and with their placement. Both have one small interface, so ``fit`` never asks which it has:

* ``parallel``: the placement (:data:`fnn.sharding.SINGLE_DEVICE` or a
  :class:`fnn.sharding.DataParallel`);
* ``example``: the (placed) arrays, or the stream's first batch (what the objective's data
  check and the validation data's shapes are checked against);
* ``n``: the example count (None for a stream), ``batch_size`` (global),
  ``steps_per_epoch``;
* ``per_epoch``: host work follows every epoch (a stream), so compiled calls run one epoch;
* ``platform``: where the data are (:func:`fnn._cpu_grad.target_platform`);
* ``shuffle_blocks(requested)``: B of the shuffle (:func:`fnn.train.engine.shuffled_batches`;
  ``fit``'s ``shuffle_blocks``, None: the data shards), checked against the sizes;
* ``sizes(blocks)``: what checkpoints record of the data;
* ``runner(loop_of, hp, val_arrays, keys, evaluate_validation)``: the engine's runner over
  the data, ``(ts, first_epoch, count) -> (ts, metrics, guard)``.
"""
from __future__ import annotations

import functools
import warnings
from typing import Any, Callable, NamedTuple

import jax

from fnn._cpu_grad import target_platform
from fnn.sharding import DataParallel, SingleDevice, data_parallel
from fnn.train.config import FitConfig, batch_size_for
from fnn.train.engine import ArrayEpochs
from fnn.train.stream import (HostBatches, StreamEpochs, check_stream_options,
                              check_validation_stream, is_stream)
from fnn.validation import finite_data, num_examples

__all__ = ["ArraySource", "StreamSource", "input_source"]


class ArraySource(NamedTuple):
    """Arrays in memory (``data``: placed, a whole number of examples per device) with ``n``
    examples in minibatches of ``batch_size`` (shuffled each epoch)."""
    parallel: DataParallel | SingleDevice
    data: Any
    n: int
    batch_size: int
    per_epoch = False

    @property
    def example(self):
        return self.data

    @property
    def steps_per_epoch(self) -> int:
        return self.n // self.batch_size

    @property
    def platform(self) -> str:
        return target_platform(self.data)

    def shuffle_blocks(self, requested: int | None) -> int:
        """B of the shuffle: ``requested``, else the data shards when data-parallel (else 1);
        1 for a full batch. Any B gives the same order on any device count (a B other than
        the shards costs some communication), which is how a resume keeps a checkpoint's
        order."""
        self.parallel.check_batch("fit", self.batch_size)
        blocks = requested or self.parallel.size
        if blocks > 1 and (self.n % blocks or self.batch_size % blocks):
            raise ValueError(f"fit: shuffle_blocks={blocks} needs the example count ({self.n}) "
                             f"and the batch size ({self.batch_size}) to divide by {blocks}")
        return blocks if self.batch_size < self.n else 1

    def sizes(self, blocks: int) -> dict:
        return {"batch_size": self.batch_size, "num_examples": self.n, "shuffle_blocks": blocks}

    def runner(self, loop_of: Callable, hp, val_arrays, keys,
               evaluate_validation: Callable | None) -> ArrayEpochs:
        return ArrayEpochs(loop_of, hp, self.data, val_arrays, keys,
                           evaluate_validation=evaluate_validation)


class StreamSource(NamedTuple):
    """A stream of host batches (``batches``, checked as they come), ``steps_per_epoch``
    batches an epoch of ``batch_size`` examples each (all processes together), fed to the
    device ``chunk`` batches at a time; ``keep_input``: the runner keeps its input state
    valid through a call (there are checkpoints to save on an interrupt)."""
    parallel: DataParallel | SingleDevice
    batches: HostBatches
    batch_size: int
    steps_per_epoch: int
    chunk: int
    keep_input: bool
    n = None
    per_epoch = True

    @property
    def example(self):
        return self.batches.first

    @property
    def platform(self) -> str:
        return target_platform(None)

    def shuffle_blocks(self, requested: int | None) -> int:
        """1: a stream's batches are used as they come (the global batch must still divide
        by the data-parallel devices)."""
        self.parallel.check_batch("fit", self.batch_size)
        return 1

    def sizes(self, blocks: int) -> dict:
        return {"batch_size": self.batch_size, "num_examples": None,
                "steps_per_epoch": self.steps_per_epoch}

    def runner(self, loop_of: Callable, hp, val_arrays, keys,
               evaluate_validation: Callable | None) -> StreamEpochs:
        return StreamEpochs(loop_of, hp, self.batches, self.steps_per_epoch, self.chunk,
                            val_arrays, keys, place=functools.partial(self.parallel.data,
                                                                      batch_dim=1),
                            evaluate_validation=evaluate_validation,
                            keep_input=self.keep_input)


def input_source(config: FitConfig, data, val_data, params,
                 check_batch: Callable) -> ArraySource | StreamSource:
    """``fit``'s training input: a :class:`StreamSource` for an iterable of batches
    (:func:`fnn.train.stream.is_stream`), else an :class:`ArraySource`; placed data-parallel
    over ``config.mesh`` or the arrays' own mesh, else on one device. Checks, in order: the
    placement, that ``val_data`` (a stream) can be read every epoch, then the options and the
    data of the source's kind (NaN/inf with ``config.check_finite_inputs``).
    ``check_batch(batch, where)`` checks each later batch of a stream (the objective's data
    check; the first batch, like arrays, is checked by the caller)."""
    streaming = is_stream(data)
    parallel = data_parallel("fit", None if streaming else data, params, mesh=config.mesh,
                             axis=config.data_axis)
    check_validation_stream("fit", val_data)
    if streaming:
        return _stream_source(config, parallel, data, val_data, check_batch)
    return _array_source(config, parallel, data)


def _array_source(config: FitConfig, parallel, data) -> ArraySource:
    if config.steps_per_epoch is not None:
        raise ValueError("fit: steps_per_epoch is for a stream of batches; arrays in memory "
                         "make n // batch_size steps per epoch")
    data, n = _whole_shards(parallel, data)
    batch_size = batch_size_for("fit", config.batch_size, n)
    if config.check_finite_inputs:
        finite_data("fit", data)
    return ArraySource(parallel, _placed(parallel, data), n, batch_size)


def _stream_source(config: FitConfig, parallel, data, val_data,
                   check_batch: Callable) -> StreamSource:
    check_stream_options("fit", config.batch_size, val_data)
    batches = HostBatches(data, "fit", check_finite=config.check_finite_inputs)
    batches.check_batch = check_batch
    return StreamSource(parallel, batches, batches.batch_size * jax.process_count(),
                        _stream_steps(config, data, batches), config.stream_chunk,
                        config.checkpoint_dir is not None)


def _whole_shards(parallel: DataParallel | SingleDevice, data):
    """``(data, n)``: data-parallel, the last ``n % devices`` examples are dropped with a
    warning (as a single-device epoch drops its last partial batch), so every device holds
    an equal shard; host data only (a global array is already split)."""
    n = num_examples("fit", data)
    rest = n % parallel.size
    if not rest or any(isinstance(a, jax.Array) and len(a.sharding.device_set) > 1
                       for a in jax.tree.leaves(data)):
        return data, n
    warnings.warn(f"fit: the data's {n} examples do not divide by the {parallel.size} devices "
                  f"of mesh axis {parallel.axis!r}; training on the first {n - rest} (the last "
                  f"{rest} are dropped, as a last partial batch is)", stacklevel=6)
    return jax.tree.map(lambda a: a[: n - rest], data), n - rest


def _placed(parallel: DataParallel | SingleDevice, data):
    n = num_examples("fit", data)
    if n % parallel.size:
        raise ValueError(f"fit: the data's {n} examples do not divide by the {parallel.size} "
                         f"devices of mesh axis {parallel.axis!r}; drop or pad examples")
    return parallel.data(data)


def _stream_steps(config: FitConfig, data, batches: HostBatches) -> int:
    if config.steps_per_epoch is not None:
        return config.steps_per_epoch
    if batches.one_shot or not hasattr(data, "__len__"):
        raise ValueError(f"fit: a stream of type {type(data).__name__} has no length; pass "
                         f"steps_per_epoch= (batches per epoch)")
    return len(data)
