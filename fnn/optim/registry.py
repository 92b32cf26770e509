"""The optimizers by name: ONE table that the CLI, the comparison workflow and the tests read.

Adding an optimizer to fnn means adding its factory here (and to ``__all__``); every tool that
lists, looks up or compares optimizers by name then knows it.

    fnn.optim.OPTIMIZERS["adam"](1e-3)       # the factory itself
    fnn.optim.optimizer("adam", 1e-3)        # the same, with a did-you-mean for typos
"""
from __future__ import annotations

from types import MappingProxyType

from fnn._names import did_you_mean
from fnn.optim.adam import adam, adamax, adamw, amsgrad, lion, nadam
from fnn.optim.adaptive import adadelta, adagrad, rmsprop
from fnn.optim.sgd import sgd

__all__ = ["OPTIMIZERS", "optimizer"]

# name -> factory ``f(learning_rate, **hyperparameters) -> GradientTransformation``; every name
# is also optax's name for the same rule (so the comparison workflow can pair them).
OPTIMIZERS = MappingProxyType({
    "sgd": sgd, "adagrad": adagrad, "rmsprop": rmsprop, "adadelta": adadelta, "adam": adam,
    "adamw": adamw, "adamax": adamax, "nadam": nadam, "amsgrad": amsgrad, "lion": lion,
})


def optimizer(name: str, *args, **kwargs):
    """``OPTIMIZERS[name](*args, **kwargs)``; an unknown ``name`` raises ``ValueError`` listing
    the known ones (with a did-you-mean)."""
    if name not in OPTIMIZERS:
        raise ValueError(f"optimizer: name must be one of {', '.join(OPTIMIZERS)}, got "
                         f"{name!r}{did_you_mean(name, OPTIMIZERS)}")
    return OPTIMIZERS[name](*args, **kwargs)
