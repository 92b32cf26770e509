"""The playground's configuration: its keys (TensorFlow Playground's names where it has them),
defaults, bounds, and the one validator every message from the page goes through.

A configuration is a flat dict ``{key: value}``; :func:`validate` returns a complete, checked
copy (defaults filled in) or raises ``ValueError`` naming the key, what was expected and what
was given. Sizes are bounded: at most 6 hidden layers of 8 units, 2,000 points, 8 variants.
"""
from __future__ import annotations

import inspect
import math

from fnn import optim

__all__ = ["DEFAULTS", "FEATURES", "DATASETS", "REG_DATASETS", "ACTIVATIONS", "OPTIMIZERS",
           "INITIALIZERS", "COMPARE_KEYS", "MAX_LAYERS", "MAX_UNITS", "MAX_POINTS",
           "MAX_VARIANTS", "validate", "optimizer_hyperparams", "shape_of"]

MAX_LAYERS, MAX_UNITS, MAX_POINTS, MAX_VARIANTS = 6, 8, 2000, 8

# Input features, in the order the network sees them: URL key -> label.
FEATURES = {"x": "x1", "y": "x2", "xSquared": "x1²", "ySquared": "x2²", "xTimesY": "x1·x2",
            "sinX": "sin x1", "sinY": "sin x2"}
DATASETS = ("circle", "xor", "gauss", "spiral", "moons")        # classification
REG_DATASETS = ("reg-plane", "reg-gauss")                       # regression
ACTIVATIONS = ("relu", "tanh", "sigmoid", "linear")
OPTIMIZERS = ("sgd", "adagrad", "rmsprop", "adadelta", "adam", "nadam", "adamw", "amsgrad",
              "adamax", "lion")
INITIALIZERS = ("glorot_uniform", "glorot_normal", "he_uniform", "he_normal", "lecun_normal",
                "lecun_uniform", "normal", "uniform", "small_random", "orthogonal")
# Settings a Compare run may vary.
COMPARE_KEYS = ("learningRate", "optimizer", "activation", "batchSize", "seed")

DEFAULTS = {
    "problem": "classification", "dataset": "circle", "regDataset": "reg-plane",
    "noise": 0, "percTrainData": 50, "numPoints": 500, "batchSize": 10, "seed": 0,
    "x": True, "y": True, "xSquared": False, "ySquared": False, "xTimesY": False,
    "sinX": False, "sinY": False,
    "networkShape": [4, 2], "activation": "tanh", "learningRate": 0.03,
    "regularization": "none", "regularizationRate": 0.0,
    "optimizer": "sgd", "optimizerArgs": {}, "initializer": "glorot_uniform",
    "showTestData": False, "discretize": False,
}

_CHOICES = {"problem": ("classification", "regression"), "dataset": DATASETS,
            "regDataset": REG_DATASETS, "activation": ACTIVATIONS,
            "regularization": ("none", "L1", "L2"), "optimizer": OPTIMIZERS,
            "initializer": INITIALIZERS}
_RANGES = {"noise": (0, 50), "percTrainData": (10, 90), "learningRate": (1e-6, 10.0),
           "regularizationRate": (0.0, 10.0)}
_INTS = {"numPoints": (20, MAX_POINTS), "batchSize": (1, MAX_POINTS), "seed": (0, 2 ** 31 - 1)}


def _fail(key, expected, got):
    raise ValueError(f"playground config: {key} must be {expected}, got {got!r}")


def _number(key, v, lo, hi):
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v) \
            or not lo <= v <= hi:
        _fail(key, f"a number in [{lo}, {hi}]", v)
    return float(v) if key != "noise" and key != "percTrainData" else int(round(v))


def shape_of(value) -> list[int]:
    """``networkShape`` as a list of ints (also from TensorFlow Playground's "4,2" string)."""
    if isinstance(value, str):
        try:
            value = [int(p) for p in value.split(",") if p.strip()]
        except ValueError:
            _fail("networkShape", "a comma-separated list of integers", value)
    if not isinstance(value, (list, tuple)) or len(value) > MAX_LAYERS or not all(
            isinstance(u, int) and not isinstance(u, bool) and 1 <= u <= MAX_UNITS
            for u in value):
        _fail("networkShape", f"at most {MAX_LAYERS} layers of 1 to {MAX_UNITS} units", value)
    return list(value)


def optimizer_hyperparams(name: str) -> dict:
    """The numeric hyperparameters of ``fnn.optim.<name>`` besides the learning rate, with
    their defaults (from its signature): e.g. adam -> {b1: 0.9, b2: 0.999, eps: 1e-08, ...}."""
    out = {}
    for p in inspect.signature(getattr(optim, name)).parameters.values():
        if p.name != "learning_rate" and isinstance(p.default, (int, float)) \
                and not isinstance(p.default, bool):
            out[p.name] = float(p.default)
    if name == "sgd":
        out["momentum"] = 0.0            # sgd's momentum defaults to None (off) = 0 here
    return out


def validate(config: dict, base: dict | None = None) -> dict:
    """``base`` (default: DEFAULTS) updated by ``config``, every value checked; unknown keys
    are refused. Returns a new dict."""
    if not isinstance(config, dict):
        _fail("the configuration", "an object of settings", config)
    unknown = sorted(set(config) - set(DEFAULTS))
    if unknown:
        raise ValueError(f"playground config: unknown key(s) {unknown}; expected some of "
                         f"{sorted(DEFAULTS)}")
    out = dict(DEFAULTS if base is None else base)
    for key, v in config.items():
        if key in _CHOICES:
            if v not in _CHOICES[key]:
                _fail(key, f"one of {list(_CHOICES[key])}", v)
        elif key in _RANGES:
            v = _number(key, v, *_RANGES[key])
        elif key in _INTS:
            lo, hi = _INTS[key]
            if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
                _fail(key, f"an integer in [{lo}, {hi}]", v)
        elif key == "networkShape":
            v = shape_of(v)
        elif key == "optimizerArgs":
            if not isinstance(v, dict):
                _fail(key, "an object {name: number}", v)
        elif not isinstance(v, bool):
            _fail(key, "true or false", v)
        out[key] = v
    allowed = optimizer_hyperparams(out["optimizer"])
    args = {}
    for name, v in out["optimizerArgs"].items():
        if name in allowed:      # args of another optimizer (left from a switch) are dropped
            args[name] = _number(f"optimizerArgs.{name}", v, 0.0, 1e6)
    out["optimizerArgs"] = args
    if not any(out[f] for f in FEATURES):
        _fail("features", "at least one of " + ", ".join(FEATURES) + " switched on",
              {f: out[f] for f in FEATURES})
    n_train = int(out["numPoints"] * out["percTrainData"] / 100)
    if out["batchSize"] > n_train:
        _fail("batchSize", f"at most the {n_train} training points", out["batchSize"])
    return out
