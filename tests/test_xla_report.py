"""tests/xla_report.py, the suite's "XLA programs" section: a program XLA compiles and one it
loads from the persistent cache are counted apart, and each for the test that ran it."""
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


def test_compiled_and_loaded_programs_are_counted_per_test(tmp_path):
    (tmp_path / "test_inner.py").write_text(INNER.format(cache=str(tmp_path / "cache")))
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parent), "JAX_PLATFORMS": "cpu"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:xdist",
                           "-p", "no:cacheprovider", "-p", "xla_report", "--xla-durations=5",
                           "test_inner.py"], cwd=tmp_path, env=env, capture_output=True,
                          text=True, timeout=120)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr
    assert "3 passed" in out
    summary = out[out.index("XLA programs"):]
    assert re.search(r"compiled 1 in [\d.]+ s, loaded 1 from the persistent cache in [\d.]+ s; "
                     r"traced for [\d.]+ s, lowered 2 in [\d.]+ s", summary), summary
    listed = re.findall(r"^\s+[\d.]+s\s+(\d+) compiled\s+(\d+) loaded\s+(\S+)$", summary,
                        re.MULTILINE)
    assert sorted(listed) == [("0", "1", "test_inner.py::test_loads"),
                              ("1", "0", "test_inner.py::test_compiles")], summary
