"""Test-wide JAX settings, the same in every pytest-xdist worker (this module runs in each
before any test): four virtual CPU devices, silent dtype or rank promotion is an error, and
compiled programs are kept in a persistent cache shared by the workers and by later runs.
And the ``quick_run`` fixture: each experiment's quick run, once per session (per worker)."""
import functools
import json
import os
from pathlib import Path

import jax
import pytest

# XLA's compiled programs, on disk: a warm run of the suite loads what an earlier run (or the
# other xdist worker) compiled instead of compiling it again. A loaded program is the same
# executable, so results do not change by a bit (tests/test_engine_reference.py). `make clean`
# (or deleting the folder) empties it. `fnn` CLI calls inside the tests use it too, not the
# user's cache folder. Nothing is cached below 0 s or 0 bytes: every program counts.
CACHE_DIR = Path(__file__).resolve().parent.parent / ".pytest_cache" / "jax-compile-cache"
os.environ["FNN_CACHE_DIR"] = str(CACHE_DIR)
jax.config.update("jax_compilation_cache_dir", str(CACHE_DIR))
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)

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


@pytest.hookimpl(tryfirst=True)      # before xdist reads the groups
def pytest_collection_modifyitems(items):
    """Under pytest-xdist a session fixture runs once per worker: the tests reading
    ``quick_run`` share one worker (xdist_group "quick_runs"), so each experiment's quick run
    happens once per session, not once per worker."""
    for item in items:
        if "quick_run" in item.fixturenames and not item.get_closest_marker("xdist_group"):
            item.add_marker(pytest.mark.xdist_group("quick_runs"))


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


def pytest_terminal_summary(terminalreporter):
    """Say which comparison each test against numbers recorded on another machine made
    (``record_property("reference_comparison", ...)``: bit-identity where the fingerprint
    matches, a float32 tolerance elsewhere), so a pass says what it proved."""
    made = {}
    for reports in terminalreporter.stats.values():
        for report in reports:
            for key, value in getattr(report, "user_properties", ()):
                if key == "reference_comparison" and getattr(report, "when", "") == "call":
                    made.setdefault(value, []).append(report.nodeid.split("::")[-1])
    if made:
        terminalreporter.section("reference comparisons")
        for comparison, tests in sorted(made.items()):
            terminalreporter.write_line(f"{comparison}: {len(tests)} tests ({', '.join(sorted(tests))})")
