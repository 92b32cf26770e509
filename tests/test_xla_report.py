"""tests/xla_report.py, the suite's "XLA programs" section: a program XLA compiles and one it
loads from the persistent cache are counted apart, each for the test that ran it; and the
plugin's option leaves the cache's keys alone."""
import os
import re
import subprocess
import sys
from pathlib import Path

# One program, compiled by the first test and, after jax.clear_caches(), loaded from the
# persistent cache by the second; the third runs nothing in JAX. (NumPy in and out, so no
# other program runs.)
INNER = '''
import jax
import numpy as np

jax.config.update("jax_compilation_cache_dir", {cache!r})
jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
x = np.arange(5.0, dtype=np.float32)
triple = lambda a: a * 3.0


def test_compiles():
    assert np.asarray(jax.jit(triple)(x))[1] == 3.0


def test_loads():
    jax.clear_caches()
    assert np.asarray(jax.jit(triple)(x))[2] == 6.0


def test_runs_nothing_in_jax():
    assert np.sum(x) == 10.0
'''
NUMBER = r"[\d.]+"


def run_inner(folder: Path, *options: str) -> str:
    """The "XLA programs" section of a pytest run of INNER in ``folder``."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist",
                           "-p", "no:cacheprovider", "-p", "xla_report", *options,
                           "test_inner.py"], cwd=folder, env=env, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "3 passed" in done.stdout, done.stdout + done.stderr
    return done.stdout[done.stdout.index("XLA programs"):]


def totals(compiled: int, loaded: int) -> str:
    return (f"compiled {compiled} in {NUMBER} s, loaded {loaded} from the persistent cache in "
            f"{NUMBER} s; traced for {NUMBER} s, lowered 2 in {NUMBER} s")


def test_compiled_and_loaded_programs_are_counted_per_test(tmp_path):
    (tmp_path / "test_inner.py").write_text(INNER.format(cache=str(tmp_path / "cache")))
    first = run_inner(tmp_path)
    assert re.search(totals(compiled=1, loaded=1), first), first
    assert "test_inner.py::" not in first                 # no tests listed unless asked

    # a second process finds the program in the cache, with --compile-durations given (JAX
    # puts command-line arguments that start with "--xla" into its cache keys)
    second = run_inner(tmp_path, "--compile-durations=5")
    assert re.search(totals(compiled=0, loaded=2), second), second
    listed = re.findall(rf"^\s+{NUMBER}s\s+(\d+) compiled\s+(\d+) loaded\s+(\S+)$", second,
                        re.MULTILINE)
    assert sorted(listed) == [("0", "1", "test_inner.py::test_compiles"),
                              ("0", "1", "test_inner.py::test_loads")], second
