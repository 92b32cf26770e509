"""Every trainer on the one epoch engine gives the trajectories recorded before the engine
existed (tests/fixtures/engine/, written by scripts/make_engine_fixtures.py with the code of
commit 6d72c6c): params, model state, optimizer state and history.

Bit-identity is a promise about one machine: XLA's CPU kernels round float32 differently on
CPUs with other vector units, and other jax versions compile other programs. So each fixture
holds the fingerprint of where it was recorded (``make_engine_fixtures.fingerprint``). On a
matching fingerprint the test demands every bit; elsewhere float arrays must agree to
``RTOL``/``ATOL`` (float32 rounding, amplified by a few epochs) and integer arrays (keys,
counters, step numbers) exactly. Each case runs under the JAX settings it was recorded with
(the PRNG and matmul precision of the fingerprint's ``settings``), whatever the environment
sets. Which comparison ran is a property of the test
(``reference_comparison``), printed in the session summary by tests/conftest.py. To demand bits
on a new machine, re-record there: ``python scripts/make_engine_fixtures.py``.
"""
import contextlib
import importlib.util
import json
from pathlib import Path

import jax
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "engine"
RTOL, ATOL = 1e-5, 1e-6
METADATA = ("fingerprint",)


def _script():
    spec = importlib.util.spec_from_file_location("make_engine_fixtures",
                                                  ROOT / "scripts" / "make_engine_fixtures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


SCRIPT = _script()
CASES = SCRIPT.CASES


def mismatches(got: dict, expected: dict, bitwise: bool) -> list[str]:
    """The names whose arrays differ: in any bit when ``bitwise``; else, for floating arrays,
    beyond ``|got - expected| <= ATOL + RTOL * |expected|`` (NaN where NaN), and in any
    element for the others. A changed dtype or shape is always a mismatch."""
    differ = []
    for k, want in expected.items():
        have = got[k]
        if have.dtype != want.dtype or have.shape != want.shape:
            differ.append(k)
        elif bitwise or want.dtype.kind not in "fc":
            if not np.array_equal(have, want, equal_nan=want.dtype.kind in "fc"):
                differ.append(k)
        elif not np.allclose(have, want, rtol=RTOL, atol=ATOL, equal_nan=True):
            differ.append(k)
    return differ


def comparison_for(recorded_fingerprint: dict, here: dict) -> str:
    """``"bit-identical"`` where the fixture was recorded on a machine like this one, else
    ``"rtol=1e-05"`` (naming what differs)."""
    if recorded_fingerprint == here:
        return "bit-identical"
    differ = sorted(k for k in here.keys() | recorded_fingerprint.keys()
                    if here.get(k) != recorded_fingerprint.get(k))
    return f"rtol={RTOL:g}, atol={ATOL:g} (fingerprint differs in {', '.join(differ)})"


def recorded_settings(fingerprint: dict) -> contextlib.ExitStack:
    """The JAX settings of the recording (``fingerprint['settings']``: the PRNG and the matmul
    precision), in force until the context ends: they choose which random numbers a run draws,
    so a run under other ones could not be compared at any tolerance."""
    stack = contextlib.ExitStack()
    for name, value in fingerprint["settings"].items():
        stack.enter_context(getattr(jax, name.removeprefix("jax_"))(value))
    return stack


@pytest.mark.parametrize("name", sorted(CASES))
def test_trajectory_matches_the_recorded_one(name, record_property):
    recorded = np.load(FIXTURES / f"{name}.npz")
    expected = {k: recorded[k] for k in recorded.files if k not in METADATA}
    fingerprint = json.loads(str(recorded["fingerprint"]))
    with recorded_settings(fingerprint):
        comparison = comparison_for(fingerprint, SCRIPT.fingerprint())
        record_property("reference_comparison", comparison)
        print(f"{name}: {comparison}")
        got = CASES[name]()
    assert sorted(got) == sorted(expected), "the trees' structure changed"
    differ = mismatches(got, expected, bitwise=comparison == "bit-identical")
    assert not differ, f"{name}: not {comparison} to the recorded run: {differ}"


def test_the_comparison_is_bitwise_only_on_the_recording_machine():
    here = SCRIPT.fingerprint()
    assert comparison_for(dict(here), here) == "bit-identical"
    other = {**here, "cpu": {**here["cpu"], "isa": ["sse4_2"]}}
    assert comparison_for(other, here) == "rtol=1e-05, atol=1e-06 (fingerprint differs in cpu)"
    fast_math = sorted(here["xla_flags"] + ["--xla_cpu_enable_fast_math=true"])
    flagged = {**here, "xla_flags": fast_math}
    assert comparison_for(flagged, here).endswith("(fingerprint differs in xla_flags)")
    w = np.array([1.0, -2.0, 0.0, np.nan], np.float32)
    ulp = np.array([np.nextafter(np.float32(1), np.float32(2)), -2.0, 0.0, np.nan], np.float32)
    assert mismatches({"w": ulp}, {"w": w}, bitwise=True) == ["w"]          # one ulp: not bits
    assert mismatches({"w": ulp}, {"w": w}, bitwise=False) == []            # but within rtol
    assert mismatches({"w": w * (1 + 3e-5)}, {"w": w}, bitwise=False) == ["w"]
    assert mismatches({"w": w.astype(np.float64)}, {"w": w}, bitwise=False) == ["w"]
    keys = np.array([7, 8], np.uint32)
    assert mismatches({"k": keys + np.uint32(1)}, {"k": keys}, bitwise=False) == ["k"]


def test_every_fixture_carries_the_fingerprint_of_its_recording():
    for name in CASES:
        fingerprint = json.loads(str(np.load(FIXTURES / f"{name}.npz")["fingerprint"]))
        assert fingerprint.keys() == SCRIPT.fingerprint().keys()
        assert fingerprint["x64"] is False and fingerprint["device_count"] == 4
        assert set(fingerprint["settings"]) == set(SCRIPT.BIT_SETTINGS)


def test_a_case_runs_under_the_recorded_settings_and_they_are_restored_after():
    before = jax.config.jax_threefry_partitionable, jax.config.jax_default_prng_impl
    other_impl = "rbg" if before[1] != "rbg" else "threefry2x32"
    with recorded_settings({"settings": {"jax_threefry_partitionable": not before[0],
                                         "jax_default_prng_impl": other_impl}}):
        assert jax.config.jax_threefry_partitionable is (not before[0])
        assert str(jax.random.key_impl(jax.random.key(0))) == other_impl
        assert SCRIPT.fingerprint()["settings"]["jax_default_prng_impl"] == other_impl
    assert (jax.config.jax_threefry_partitionable, jax.config.jax_default_prng_impl) == before


def test_the_fingerprint_holds_the_xla_flags_that_change_the_kernels(monkeypatch):
    # an XLA flag that compiles other kernels changes float32 bits on the same machine (here
    # --xla_cpu_use_fusion_emitters=false and --xla_backend_optimization_level=0 did), so a
    # run under it is compared to the tolerance; the device count is its own field
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4 "
                                    "--xla_cpu_use_fusion_emitters=false --xla_foo=1")
    assert SCRIPT.xla_flags() == ["--xla_cpu_use_fusion_emitters=false", "--xla_foo=1"]
    assert SCRIPT.fingerprint()["xla_flags"] == SCRIPT.xla_flags()
    monkeypatch.delenv("XLA_FLAGS")
    assert SCRIPT.xla_flags() == []
