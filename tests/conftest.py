"""Test-wide JAX settings: silent dtype or rank promotion is an error in fnn's tests."""
import atexit
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
