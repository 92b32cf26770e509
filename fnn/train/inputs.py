"""What ``fit`` trains on (:func:`prepare`): its input source (:mod:`fnn.train.sources`:
arrays in memory or a stream of batches, on one device or data-parallel over a mesh) and the
validation data, checked against the objective (:class:`fnn.train.objective.TrainObjective`),
and the engine's runner over them with the run's loop (:class:`FitLoop`, or an engine-form
step's :class:`StepLoop`)."""
from __future__ import annotations

from typing import Any, Callable, NamedTuple

import jax
import jax.numpy as jnp

from fnn.train.config import FitConfig, validation_batch_size
from fnn.train.engine import EpochLoop, epoch_keys
from fnn.train.multi_step import is_engine_step
from fnn.train.objective import TrainObjective, no_data_check
from fnn.train.programs import hyperparameters, with_hyperparameters
from fnn.train.step import TrainState, checked_step
from fnn.train.sources import input_source
from fnn.train.stream import HostBatches, is_stream, stream_mean_metrics
from fnn.validation import finite_data, num_examples

__all__ = ["Inputs", "prepare", "fit_loop", "StepLoop"]


class Inputs(NamedTuple):
    """``runner(ts, first_epoch, count) -> (ts, metrics, guard)``; ``steps_per_epoch``;
    ``sizes`` (recorded in checkpoints); ``per_epoch``: host work follows every epoch (a
    stream), so calls run one epoch each; ``place(ts)`` copies a train state to where the
    runner wants it; ``returned(tree)`` puts results back where the user's arrays were;
    ``example``: the training data (arrays) or a stream's first batch; ``losses``: the
    structure of the step's losses for :func:`fnn.train.step.check_sites` (None: one
    scalar; an engine-form step's ``{name: 0}``)."""
    runner: Callable
    steps_per_epoch: int
    sizes: dict
    per_epoch: bool
    place: Callable
    returned: Callable
    example: Any = None
    losses: Any = None


def prepare(config: FitConfig, objective, optimizer, params, state, data, val_data) -> Inputs:
    """Check ``data`` and ``val_data`` (shapes against the objective, optionally for NaN/inf),
    take the input source with its placement (:func:`fnn.train.sources.input_source`: arrays
    or a stream, on one device or data-parallel over ``config.mesh`` or the data's own mesh)
    and build the engine's runner over it. ``objective``: the run's
    :class:`fnn.train.objective.TrainObjective` (cast under ``config.precision``), or an
    engine-form step (which checks no data)."""
    check_data = (objective.check_data if isinstance(objective, TrainObjective)
                  else no_data_check)
    source = input_source(config, data, val_data, params,
                          lambda batch, where: check_data(params, state, batch, where))
    blocks = source.shuffle_blocks(config.shuffle_blocks)
    check_data(params, state, source.example, "fit")
    val_arrays, val_batch_size, evaluate_validation = _validation(
        config, objective, source.parallel, params, state, val_data, source.batch_size,
        source.example)
    loop_of, hp = _loop(config, objective, optimizer, source, blocks, val_batch_size)
    runner = source.runner(loop_of, hp, val_arrays, epoch_keys(jax.random.key(config.seed)),
                           evaluate_validation)
    losses = {name: 0 for name in objective.names} if is_engine_step(objective) else None
    return Inputs(runner, source.steps_per_epoch, source.sizes(blocks),
                  source.per_epoch or evaluate_validation is not None,
                  source.parallel.replicated, source.parallel.returned, source.example, losses)


def _loop(config: FitConfig, objective, optimizer, source, blocks: int,
          val_batch_size) -> tuple[Callable, dict]:
    """``(loop_of, hp)``: the run's :class:`FitLoop` (or an engine-form step's
    :class:`StepLoop`) over ``source`` and its hyperparameters, the program's runtime
    inputs."""
    options = (("batch_size", source.batch_size), ("n", source.n), ("guard", config.guard),
               ("per_step", config.step_metrics), ("unroll", config.unroll),
               ("blocks", blocks), ("parallel", source.parallel))
    if is_engine_step(objective):
        return (StepLoop(objective, (*options, ("precision", config.precision))),
                objective.hyperparameters())
    return (FitLoop(objective, optimizer, (*options, ("val_batch_size", val_batch_size),
                                           ("platform", source.platform))),
            hyperparameters(objective=objective.fn, optimizer=optimizer))


def _validation(config, objective, parallel, params, state, val_data, batch_size, example):
    """``(val_arrays, val_batch_size, evaluate_validation)``: arrays go through the engine's
    validation pass; a stream is evaluated after every epoch. Its examples must have the
    training data's structure and shapes (``example``: the data, or a stream's first batch)."""
    if val_data is None:
        return None, None, None
    if is_engine_step(objective):
        raise ValueError("fit: validation_data needs an objective to evaluate; an engine-form "
                         "step (multi_step, gan_step) has none: evaluate in a hook instead")
    _same_examples(val_data if not is_stream(val_data) else None, example)
    if is_stream(val_data):
        stream = HostBatches(val_data, "fit(validation_data)", fixed_batch=False,
                             check_finite=config.check_finite_inputs)
        objective.check_data(params, state, stream.first, "fit(validation_data)")
        return None, None, lambda ts: {f"val_{k}": v for k, v in stream_mean_metrics(
            objective.cast, ts.params, ts.model_state, stream).items()}
    n_val = num_examples("fit(validation_data)", val_data)
    if config.check_finite_inputs:
        finite_data("fit(validation_data)", val_data)
    if n_val % parallel.size == 0:
        val = parallel.data(val_data)
    else:
        val = parallel.replicated(val_data)
    objective.check_data(params, state, val, "fit(validation_data)")
    return val, validation_batch_size(n_val, batch_size), None


def _same_examples(val_data, example) -> None:
    """Validation examples shaped like the training examples (leading axis aside)."""
    if val_data is None:
        return
    per_example = lambda t: (jax.tree.structure(t),
                             [tuple(jnp.shape(a)[1:]) for a in jax.tree.leaves(t)])
    if per_example(val_data) != per_example(example):
        shapes = lambda t: jax.tree.map(lambda a: tuple(jnp.shape(a)[1:]), t)
        raise ValueError(f"fit(validation_data): its examples have shapes {shapes(val_data)}, "
                         f"the training data's {shapes(example)} (each without the leading "
                         f"example axis); validate on data of the training data's shape")


def fit_loop(objective: TrainObjective, optimizer, hp, *, batch_size, n, guard, per_step,
             val_batch_size, unroll, blocks, parallel, platform) -> EpochLoop:
    """fit's epoch loop with the hyperparameters ``hp`` (``{'objective': ..., 'optimizer':
    ...}``, traced inside a program) put into ``objective`` (a
    :class:`fnn.train.objective.TrainObjective`: the steps and the validation pass run its
    ``cast``, under its precision policy) and ``optimizer``. ``platform``: where the data are,
    which decides the gradient's form (:func:`fnn._cpu_grad.value_and_grad`)."""
    objective = objective.with_hyperparameters(hp["objective"])
    optimizer = with_hyperparameters(hp, optimizer=optimizer)["optimizer"]
    step = checked_step(objective, optimizer, platform=platform)
    return EpochLoop(step, batch_size, n, guard, per_step, objective=objective.cast,
                     val_batch_size=val_batch_size, unroll=unroll, shuffle_blocks=blocks,
                     parallel=parallel)


class FitLoop(NamedTuple):
    """``loop_of(hp)``: :func:`fit_loop` of ``objective`` (a
    :class:`fnn.train.objective.TrainObjective`) and ``optimizer`` with the sorted keyword
    ``options``; hashable (the objective by its function's identity and its policy, the
    optimizer by identity). ``step_parts`` and ``static`` are what the compile cache
    fingerprints instead of the whole step (see :func:`fnn.train.engine.program_key`): the
    objective's forward pass in training mode (its cast, under the precision policy) and the
    optimizer's update, with the policy and the platform, which decide how the gradient is
    taken."""
    objective: TrainObjective
    optimizer: Any
    options: tuple

    def __call__(self, hp) -> EpochLoop:
        return fit_loop(self.objective, self.optimizer, hp, **dict(self.options))

    @property
    def static(self) -> tuple:
        return self.objective.policy, dict(self.options)["platform"]

    def step_parts(self, hp, ts: TrainState, batch, key):
        objective = self.objective.with_hyperparameters(hp["objective"])
        optimizer = with_hyperparameters(hp, optimizer=self.optimizer)["optimizer"]
        forward = objective.cast(ts.params, ts.model_state, batch, key, True)
        update = optimizer.update(ts.params, ts.opt_state, ts.params)
        return forward, update


class StepLoop(NamedTuple):
    """``loop_of(hp)`` of an engine-form ``step`` (:func:`fnn.train.multi_step`'s, e.g.
    :func:`fnn.train.gan_step`): the epoch loop over ``step.configured(hp, precision)`` with the sorted
    keyword ``options`` of :func:`prepare`; hashable (the step by identity). The compile
    cache fingerprints the whole configured step."""
    step: Callable
    options: tuple

    def __call__(self, hp) -> EpochLoop:
        o = dict(self.options)
        return EpochLoop(self.step.configured(hp, o["precision"]), o["batch_size"], o["n"],
                         o["guard"], o["per_step"], unroll=o["unroll"],
                         shuffle_blocks=o["blocks"], parallel=o["parallel"])
