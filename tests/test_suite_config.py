"""tests/conftest.py gives every test process (each pytest-xdist worker too) the same JAX
settings; a worker that missed them would test something else. `make test` runs them all on
jemalloc where the system has it (Makefile)."""
import os
import subprocess
from pathlib import Path

import jax
import jax.numpy as jnp
import pytest

import conftest


def test_every_worker_has_four_cpu_devices_and_strict_promotion():
    assert jax.device_count() == 4 and jax.default_backend() == "cpu"
    assert jax.config.jax_numpy_dtype_promotion == "strict"
    with pytest.raises(ValueError, match="jax_numpy_rank_promotion"):
        jnp.ones((2, 3)) + jnp.ones((3,))
    assert not jax.config.jax_enable_x64


def test_every_blas_runs_one_thread_in_every_worker():
    import scipy.linalg  # noqa: F401  (scikit-learn's SciPy brings its own OpenBLAS)
    import threadpoolctl
    blas = [pool for pool in threadpoolctl.threadpool_info() if pool["user_api"] == "blas"]
    assert blas and {pool["num_threads"] for pool in blas} == {1}, blas


def test_compiled_programs_go_to_the_suites_persistent_cache():
    assert jax.config.jax_enable_compilation_cache
    assert jax.config.jax_compilation_cache_dir == str(conftest.CACHE_DIR)
    assert os.environ["FNN_CACHE_DIR"] == str(conftest.CACHE_DIR)
    jax.jit(lambda x: x * 3 + 1)(jnp.arange(7.0)).block_until_ready()
    assert conftest.CACHE_DIR.is_dir() and any(conftest.CACHE_DIR.iterdir())


def test_a_test_that_switches_the_cache_off_does_not_leave_it_off(capsys):
    """What tests/test_misuse_cli.py does (the CLI's --no-compile-cache, in this process)
    switches the cache off for the process; the suite's autouse fixture switches it back, or
    the rest of the worker's session would compile without it (warm runs compiling again)."""
    from fnn.app import cli
    assert cli.main(["--no-compile-cache", "info"]) == 0
    assert not jax.config.jax_enable_compilation_cache
    conftest.restore_suite_cache()
    assert jax.config.jax_enable_compilation_cache
    assert jax.config.jax_compilation_cache_dir == str(conftest.CACHE_DIR)


ROOT = Path(__file__).resolve().parent.parent
JEMALLOCS = ["/usr/lib/x86_64-linux-gnu/libjemalloc.so.2", "/usr/lib/aarch64-linux-gnu/libjemalloc.so.2"]


def _make_test_command(*assignments: str) -> str:
    """The pytest command line ``make test`` runs (``make -n``: printed, not run), with the
    Makefile's own default (a ``JEMALLOC`` set in this run's environment is left out)."""
    env = {k: v for k, v in os.environ.items() if k != "JEMALLOC"}
    out = subprocess.run(["make", "-n", "test", *assignments], cwd=ROOT, capture_output=True,
                         text=True, check=True, env=env).stdout
    return next(line for line in out.splitlines() if "-m pytest" in line)


def test_make_test_preloads_jemalloc_exactly_where_the_system_has_it():
    """``LD_PRELOAD=<the first jemalloc found>`` on the command, nothing else changed; none
    without the library or with ``JEMALLOC=``."""
    present = [lib for lib in JEMALLOCS if os.path.exists(lib)]
    command = _make_test_command()
    if present:
        assert f"LD_PRELOAD={present[0]} " in command, command
    else:
        assert "LD_PRELOAD" not in command, command
    off = _make_test_command("JEMALLOC=")
    assert "LD_PRELOAD" not in off and off.split() == [
        word for word in command.split() if not word.startswith("LD_PRELOAD=")]


@pytest.mark.skipif(not os.path.exists("/proc/self/maps"), reason="no /proc on this system")
def test_each_test_process_allocates_with_what_its_command_preloaded():
    """Under ``make test`` with jemalloc present, every test process (each xdist worker)
    allocates with jemalloc: its library is mapped into the process; without the preload
    (``pytest`` run directly, or no jemalloc), glibc's malloc."""
    preloaded = "libjemalloc" in os.environ.get("LD_PRELOAD", "")
    assert ("libjemalloc" in Path("/proc/self/maps").read_text()) == preloaded


@pytest.mark.xdist_group("processes")
def test_xdist_groups_reach_the_scheduler(request):
    """Under ``--dist loadgroup`` xdist keys a marked test by ``nodeid@group``; if that
    channel breaks (pytest-xdist#1386, pytest 9.2) the groups are silently ignored and the
    process-starting tests collide. Outside loadgroup there is nothing to check: the test
    then checks that the mark is there."""
    assert request.node.get_closest_marker("xdist_group").args == ("processes",)
    if request.config.getoption("dist", "no") == "loadgroup" or getattr(
            request.config.option, "loadgroup", False):
        assert request.node.nodeid.endswith("@processes"), request.node.nodeid


class _Item:
    """What conftest's collection hook reads of a test item."""

    def __init__(self, nodeid, fixtures, reads=()):
        self.nodeid, self.fixturenames = nodeid, fixtures
        self.marks = {"quick_runs": pytest.mark.quick_runs(*reads).mark} if reads else {}

    def get_closest_marker(self, name):
        return self.marks.get(name)

    def add_marker(self, mark):
        self.marks[mark.mark.name] = mark.mark


def test_tests_reading_the_same_quick_run_share_a_group_and_the_others_spread():
    items = [_Item("a", ["quick_run"], ["x"]), _Item("b", ["quick_run"], ["y", "x"]),
             _Item("c", ["quick_run"], ["z", "y"]), _Item("d", ["quick_run"], ["w"]),
             _Item("e", ["tmp_path"])]
    conftest.pytest_collection_modifyitems(items)
    groups = {i.nodeid: i.get_closest_marker("xdist_group") for i in items}
    grouped = {k: g.args for k, g in groups.items() if g}
    assert set(grouped) == {"a", "b", "c"} and grouped["a"] == grouped["b"] == grouped["c"]
    assert grouped["a"][0] in ("quick_runs:x", "quick_runs:y", "quick_runs:z")
    with pytest.raises(ValueError, match="test_x uses the quick_run fixture; expected a"):
        conftest.pytest_collection_modifyitems([_Item("test_x", ["quick_run"])])


@pytest.mark.quick_runs("no_such_experiment")   # read by no other test: no group, nothing run
def test_quick_run_refuses_an_experiment_its_mark_does_not_name(quick_run):
    with pytest.raises(ValueError, match="reads 'quadrant'; expected one of"):
        quick_run("quadrant")
