"""Test-wide JAX settings: silent dtype or rank promotion is an error in fnn's tests."""
import jax
import pytest

jax.config.update("jax_numpy_dtype_promotion", "strict")
jax.config.update("jax_numpy_rank_promotion", "raise")


@pytest.fixture
def x64():
    """Run the test body with 64-bit floats enabled (derivation checks run in float64)."""
    with jax.enable_x64(True):
        yield
