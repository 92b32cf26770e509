"""Test-wide JAX settings: silent dtype or rank promotion is an error in fnn's tests. And the
``quick_run`` fixture: each experiment's quick run, once per session."""
import functools
import json
import os

import jax
import pytest

# The suite's compiled programs persist across runs (a warm run skips XLA compilation), in a
# folder of their own, not the user's (`import fnn` switches the cache on; FNN_COMPILE_CACHE=0
# turns it off; a set FNN_CACHE_DIR wins).
os.environ.setdefault("FNN_CACHE_DIR", os.path.join(
    os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "fnn", "jax-tests"))

# Four virtual CPU devices, so data-parallel training and sharded sweeps are tested in
# process (single-device code runs on device 0 as before; tests/test_engine_reference.py
# shows that results do not change by a bit).
jax.config.update("jax_num_cpu_devices", 4)
jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
    """Run the test body with 64-bit floats enabled (derivation checks run in float64)."""
    with jax.enable_x64(True):
        yield


@pytest.fixture(scope="session")
def quick_run(tmp_path_factory):
    """``quick_run(name) -> (results, folder)``: ``experiments.run_experiment(name,
    quick=True)``'s results.json as written, and the folder holding it and the figures.
    Each experiment runs once per session, however many tests read it."""
    import experiments

    root = tmp_path_factory.mktemp("quick-runs")

    @functools.cache
    def run(name):
        experiments.run_experiment(name, root, quick=True)
        return root / name

    def result(name):
        folder = run(name)
        return json.loads((folder / "results.json").read_text()), folder

    return result
