"""fnn's experiments: one module per experiment.

Each module defines::

    DESCRIPTION: str          one line for ``fnn list``
    CONFIG: dict              the full configuration
    QUICK: dict               overrides for ``--quick`` (small, for tests)
    run(config) -> dict       the results (JSON-able: numbers, lists, dicts, strings)
    figures(results, out_dir) -> list[str]   writes its PNG figures, returns their paths

:func:`run_experiment` writes ``out/NAME/results.json`` and the figures.
"""
from __future__ import annotations

import importlib
import json
import math
import pkgutil
import time
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_SUITE = ("backprop_example", "logic_gates", "quadrant", "optimizers", "activations",
                 "initialization", "preprocessing", "learning_rate", "batch_size",
                 "universal_approximation", "playground", "regularization")


def names() -> list[str]:
    """All experiment names (the modules of this package not starting with '_')."""
    return sorted(m.name for m in pkgutil.iter_modules(__path__) if not m.name.startswith("_"))


def load(name: str):
    """The experiment module ``name``; unknown names raise ``ValueError`` with a suggestion."""
    from fnn._names import did_you_mean

    if name not in names():
        raise ValueError(f"unknown experiment {name!r}{did_you_mean(name, names())}; "
                         f"available: {', '.join(names())}")
    return importlib.import_module(f"{__name__}.{name}")


def config_for(name: str, quick: bool = False, overrides: dict | None = None) -> dict:
    """The experiment's CONFIG, with QUICK applied when ``quick``, then ``overrides``.

    Each override must name a key of CONFIG and have its default's form (a count stays a
    positive int, a rate a finite number, a dict is merged onto the default: see
    ``experiments._config``) and lie in the experiment's ``RANGES`` (``{key: (low, high)}``,
    e.g. an accuracy target in [0, 1]); otherwise a ``ValueError`` names the experiment and
    the key.
    """
    from experiments._config import conform
    from fnn.validation import number, one_of

    module = load(name)
    config = dict(module.CONFIG)
    if quick:
        config.update(module.QUICK)
    for key, value in (overrides or {}).items():
        one_of(name, "config key", key, config)
        default = module.CONFIG[key]
        if isinstance(default, dict):  # merged onto the (quick) value it replaces
            default = config[key]
        config[key] = conform(name, key, value, default)
        if key in getattr(module, "RANGES", {}):
            low, high = module.RANGES[key]
            number(name, key, config[key], low=low, high=high)
    return config


def to_json(value: Any) -> Any:
    """Arrays and numpy scalars to lists and Python numbers; non-finite floats to None."""
    if isinstance(value, dict):
        return {str(k): to_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [to_json(v) for v in value]
    if hasattr(value, "shape") and hasattr(value, "dtype"):
        array = np.asarray(value)
        return to_json(array.tolist()) if array.ndim else to_json(array.item())
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return value


def _check_writable(target: Path) -> None:
    try:
        target.mkdir(parents=True, exist_ok=True)
        probe = target / ".write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"run_experiment: cannot write results to {str(target)!r}: "
                         f"{error.strerror or error}; pass an out_dir you can write to") from error


def run_experiment(name: str, out_dir: str | Path = "runs", *, quick: bool = False,
                   overrides: dict | None = None) -> dict:
    """Run one experiment; write ``out_dir/name/results.json`` and its figures; return results.

    With several processes (``jax.distributed``) every process runs it and only process 0
    writes."""
    import jax

    import fnn

    module = load(name)
    config = config_for(name, quick, overrides)
    target = Path(out_dir) / name
    primary = fnn.sharding.is_primary()
    if primary:
        _check_writable(target)  # fail before spending any time on the run
    start = time.perf_counter()
    results = module.run(config)
    seconds = time.perf_counter() - start
    figures = module.figures(results, target) if primary else []
    record = {
        **to_json(results),
        "config": to_json(config),
        "figures": [Path(f).name for f in figures],
        "meta": {"experiment": name, "quick": quick, "seconds": round(seconds, 3),
                 "fnn": fnn.__version__, "jax": jax.__version__,
                 "backend": jax.default_backend()},
    }
    if primary:
        (target / "results.json").write_text(json.dumps(record, indent=2) + "\n")
    return record
