"""Hand-written optimizers in optax's shape (same names, arguments, defaults and numbers).

Every optimizer is ``chain(scale_by_<rule>(...), scale_by_learning_rate(lr))`` over the
``GradientTransformation`` protocol, so fnn and optax pieces mix freely ::

    opt = fnn.optim.adam(1e-3)
    state = opt.init(params)
    updates, state = opt.update(grads, state, params)
    params = fnn.optim.apply_updates(params, updates)

Every number an optimizer computes with is a runtime value: ``hyperparams_of(opt)`` lifts
them out as a pytree, ``with_hyperparams(opt, tree)`` puts arrays (or tracers) back, so one
compiled program serves every learning rate (see ``fnn.optim.hyperparams``).

The README's "Optimizers" section tabulates how each rule relates to torch.optim.
"""
from fnn.optim.adam import (ScaleByAdamState, ScaleByAmsgradState, ScaleByLionState, adam,
                            adamax, adamw, amsgrad, lion, nadam, scale_by_adam,
                            scale_by_adamax, scale_by_amsgrad, scale_by_lion)
from fnn.optim.adaptive import (ScaleByAdaDeltaState, ScaleByRmsState,
                                ScaleByRmsWithCountState, ScaleByRssState,
                                ScaleByRStdDevState, ScaleByRStdDevWithCountState, adadelta,
                                adagrad, rmsprop, scale_by_adadelta, scale_by_rms, scale_by_rss,
                                scale_by_stddev)
from fnn.optim.base import (EmptyState, GradientTransformation, ScaleByScheduleState,
                            apply_updates, chain, identity, init_empty_state, scale,
                            scale_by_learning_rate, scale_by_schedule)
from fnn.optim.hyperparams import (Decay, HyperparamFunction, hyperparams_of,
                                   with_hyperparams)
from fnn.optim.clip import clip, clip_by_global_norm, global_norm
from fnn.optim.schedules import (constant_schedule, cosine_decay_schedule, exponential_decay,
                                 inverse_time_decay, join_schedules, linear_schedule,
                                 piecewise_constant_schedule, polynomial_schedule,
                                 warmup_cosine_decay_schedule)
from fnn.optim.sgd import TraceState, sgd, trace
from fnn.optim.weight_decay import WeightDecayScheduleState, add_decayed_weights
from fnn.optim.wrappers import (InjectHyperparamsState, MaskedNode, MaskedState,
                                inject_hyperparams, masked)

__all__ = [
    # protocol and composition
    "GradientTransformation", "EmptyState", "init_empty_state", "chain", "apply_updates",
    "identity", "scale", "scale_by_learning_rate", "scale_by_schedule", "ScaleByScheduleState",
    # hyperparameters as runtime values
    "hyperparams_of", "with_hyperparams", "HyperparamFunction", "Decay",
    # optimizers
    "sgd", "adagrad", "rmsprop", "adadelta", "adam", "nadam", "adamw", "amsgrad", "adamax",
    "lion",
    # one formula each
    "trace", "scale_by_rss", "scale_by_rms", "scale_by_stddev", "scale_by_adadelta",
    "scale_by_adam", "scale_by_amsgrad", "scale_by_adamax", "scale_by_lion",
    "TraceState", "ScaleByRssState", "ScaleByRmsState", "ScaleByRmsWithCountState",
    "ScaleByRStdDevState", "ScaleByRStdDevWithCountState", "ScaleByAdaDeltaState",
    "ScaleByAdamState", "ScaleByAmsgradState", "ScaleByLionState",
    # clipping, weight decay, wrappers
    "clip", "clip_by_global_norm", "global_norm", "add_decayed_weights",
    "WeightDecayScheduleState", "masked", "MaskedNode", "MaskedState", "inject_hyperparams",
    "InjectHyperparamsState",
    # schedules
    "constant_schedule", "linear_schedule", "polynomial_schedule", "exponential_decay",
    "inverse_time_decay", "piecewise_constant_schedule", "cosine_decay_schedule",
    "warmup_cosine_decay_schedule", "join_schedules",
]
