"""Test-wide JAX settings: silent dtype or rank promotion is an error in fnn's tests. And the
``quick_run`` fixture: each experiment's quick run, once per session."""
import atexit
import functools
import json
import os
import shutil
import tempfile

import jax
import pytest

# `fnn` CLI calls inside the tests cache compilations here, not in the user's cache folder.
os.environ["FNN_CACHE_DIR"] = tempfile.mkdtemp(prefix="fnn-test-cache-")
atexit.register(shutil.rmtree, os.environ["FNN_CACHE_DIR"], ignore_errors=True)

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
