"""Training: objectives, the train step, the one epoch engine and the trainers on it.

* :mod:`fnn.train.objective`  ``supervised``, the objective contract and the objective value
  the trainers use (``objective_value``: function, data check, net, cast once)
* :mod:`fnn.train.step`       ``TrainState``, ``train_step``, the engine's checked step
* :mod:`fnn.train.engine`     the epoch engine every trainer runs on (keys, shuffles, the
  minibatch scan, metric means, the validation pass, the NaN guard)
* :mod:`fnn.train.runs`       ``run``: one training run as one pure, vmappable function
* :mod:`fnn.train.stream`     streaming input: iterables of host batches, chunked and prefetched
* :mod:`fnn.train.sources`    fit's input source, made in one place: arrays or a stream
* :mod:`fnn.train.inputs`     what fit trains on: the source, the validation data, the loop
* :mod:`fnn.train.fit`        ``fit`` (with config, early stopping, checkpointing, progress,
  history, the NaN guard's report and the divergence warning in modules of their own;
  :mod:`fnn.train.checkpointing` owns fit's checkpoint schema, both directions); ``evaluate``
* :mod:`fnn.train.multi_step` several trees with their own losses and optimizers
* :mod:`fnn.train.gan`        ``gan_step`` and ``fit_gan``: a GAN trained through ``fit``
* :mod:`fnn.train.hooks`      what ``fit`` runs between compiled calls (progress, early
  stopping, checkpoints, callbacks are hooks; a hook reads the train state)
* :mod:`fnn.train.programs`   the one compile cache (programs keyed by the traced
  computation, hyperparameters as runtime inputs) and the persistent compilation cache
"""
from fnn.train.programs import use_persistent_cache
from fnn.train.divergence import DivergenceWarning
from fnn.train.early_stopping import EarlyStop, EarlyStopping
from fnn.train.evaluate import evaluate
from fnn.train.fit import FitResult, fit
from fnn.train.multi_step import multi_step
from fnn.train.gan import GANRun, fit_gan, gan_step
from fnn.train.nonfinite import NonFiniteError, NonFiniteReport
from fnn.train.objective import Objective, supervised
from fnn.train.runs import RunResult, run
from fnn.train.step import TrainState, checked_step, train_step

__all__ = ["TrainState", "supervised", "train_step", "checked_step", "evaluate", "EarlyStopping",
           "EarlyStop", "DivergenceWarning", "FitResult", "fit", "NonFiniteError",
           "NonFiniteReport", "multi_step", "Objective", "gan_step", "fit_gan", "GANRun", "run",
           "RunResult"]

use_persistent_cache()  # compiled programs persist across processes (FNN_COMPILE_CACHE=0: off)
