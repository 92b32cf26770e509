"""Test-wide JAX settings, the same in every pytest-xdist worker (this module runs in each
before any test): four virtual CPU devices, silent dtype or rank promotion is an error,
compiled programs are kept in a persistent cache shared by the workers and by later runs, and
NumPy's BLAS runs one thread.
And the ``quick_run`` fixture: each experiment's quick run, once per session (per worker); tests
that read the same run share a worker, the others spread over the workers. An xdist worker
exits without the interpreter's teardown once its results are sent (``pytest_unconfigure``)."""
import functools
import json
import os
import sys
from pathlib import Path

import jax
import pytest
import threadpoolctl

# the "XLA programs" section at the end of the run: compiled, loaded, traced, lowered
pytest_plugins = ["xla_report"]

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

# One BLAS thread per process: the xdist workers already fill the cores, and NumPy's OpenBLAS
# threads waiting on a busy core made a LAPACK call ~10x slower (tests/test_reservoir.py's
# eigvals and solves: 0.2-0.3 s a test alone, ~2.1 s beside the other worker). The BLAS
# already loaded (NumPy's) is limited now; one loaded later (SciPy's, with scikit-learn) reads
# the environment variable.
os.environ["OPENBLAS_NUM_THREADS"] = "1"
threadpoolctl.threadpool_limits(1, user_api="blas")


# The suite's cache settings, restored after every test: a test that switches the cache off in
# this process (``cli.main(["--no-compile-cache", ...])`` calls fnn.use_persistent_cache(enable=
# False), as a CLI run should) would otherwise leave its xdist worker compiling without the
# cache for the rest of the session, and what that worker compiles would never reach a later run.
CACHE_SETTINGS = ("jax_enable_compilation_cache", "jax_compilation_cache_dir",
                  "jax_persistent_cache_min_compile_time_secs",
                  "jax_persistent_cache_min_entry_size_bytes")
SUITE_CACHE = {name: getattr(jax.config, name) for name in CACHE_SETTINGS}


def restore_suite_cache() -> None:
    """Put the suite's persistent-cache settings back where a test changed them."""
    for name, value in SUITE_CACHE.items():
        if getattr(jax.config, name) != value:
            jax.config.update(name, value)


@pytest.fixture(autouse=True)
def _suite_compile_cache():
    yield
    restore_suite_cache()


@pytest.fixture
def x64():
    """Run the test body with 64-bit floats enabled (derivation checks run in float64)."""
    with jax.enable_x64(True):
        yield


def _quick_runs_read(item) -> tuple:
    """The experiments whose quick runs ``item`` reads (its ``quick_runs`` mark)."""
    mark = item.get_closest_marker("quick_runs")
    return mark.args if mark else ()


@pytest.hookimpl(tryfirst=True)      # before xdist reads the groups
def pytest_collection_modifyitems(items):
    """Under pytest-xdist a session fixture runs once per worker: tests that read the same
    experiment's quick run (their ``quick_runs(*names)`` marks overlap) share one worker
    (xdist_group "quick_runs:<one of those names>"), so each quick run happens once per session; a test
    reading runs no other test reads goes to any worker. A test using ``quick_run`` without
    the mark is a collection error."""
    readers = [item for item in items if "quick_run" in item.fixturenames]
    for item in readers:
        if not _quick_runs_read(item):
            raise ValueError(f"conftest: {item.nodeid} uses the quick_run fixture; expected a "
                             f"@pytest.mark.quick_runs(name, ...) mark naming the experiments "
                             f"it reads, got none")
    group = {}                          # experiment -> its group's first name (union-find)

    def root(name):
        while group.setdefault(name, name) != name:
            name = group[name]
        return name

    for item in readers:
        first, *rest = map(root, _quick_runs_read(item))
        for other in rest:
            group[other] = first
    shared = {}
    for item in readers:
        shared.setdefault(root(_quick_runs_read(item)[0]), []).append(item)
    for name, members in shared.items():
        if len(members) > 1:
            for item in members:
                if not item.get_closest_marker("xdist_group"):
                    item.add_marker(pytest.mark.xdist_group(f"quick_runs:{name}"))


@pytest.fixture(scope="session")
def quick_runs_cache(tmp_path_factory):
    """``run(name) -> folder``: ``experiments.run_experiment(name, quick=True)`` once per
    session (per worker), in a session temporary folder."""
    import experiments

    root = tmp_path_factory.mktemp("quick-runs")

    @functools.cache
    def run(name):
        experiments.run_experiment(name, root, quick=True)
        return root / name

    return run


@pytest.fixture
def quick_run(request, quick_runs_cache):
    """``quick_run(name) -> (results, folder)``: ``experiments.run_experiment(name,
    quick=True)``'s results.json as written, and the folder holding it and the figures.
    Each experiment runs once per session, however many tests read it; a test reads only the
    experiments its ``quick_runs`` mark names (which decides its xdist group)."""
    declared = _quick_runs_read(request.node)

    def result(name):
        if name not in declared:
            raise ValueError(f"quick_run: {request.node.nodeid} reads {name!r}; expected one "
                             f"of its quick_runs mark's names {declared}")
        folder = quick_runs_cache(name)
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


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config):
    """An xdist worker ends here without the interpreter's teardown: its results (and
    pytest-cov's data) went to the controller at the session's end, and freeing the ~3,000
    compiled programs it holds would keep the whole run waiting ~6 s for it to exit."""
    if hasattr(config, "workerinput"):
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)
