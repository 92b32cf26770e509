"""Every trainer on the one epoch engine gives, bit for bit, the trajectories recorded before
the engine existed (tests/fixtures/engine/, written by scripts/make_engine_fixtures.py with
the code of commit 6d72c6c): params, model state, optimizer state and history."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "engine"


def _cases():
    spec = importlib.util.spec_from_file_location("make_engine_fixtures",
                                                  ROOT / "scripts" / "make_engine_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CASES


CASES = _cases()


@pytest.mark.parametrize("name", sorted(CASES))
def test_trajectory_is_bit_identical_to_the_recorded_one(name):
    recorded = np.load(FIXTURES / f"{name}.npz")
    expected = {k: recorded[k] for k in recorded.files if k not in ("jax_version", "machine")}
    got = CASES[name]()
    assert sorted(got) == sorted(expected), "the trees' structure changed"
    differ = [k for k in expected
              if not (got[k].dtype == expected[k].dtype and np.array_equal(got[k], expected[k], equal_nan=got[k].dtype.kind == "f"))]
    assert not differ, f"{name}: not bit-identical to the recorded run: {differ}"
