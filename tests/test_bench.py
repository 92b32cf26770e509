"""scripts/bench.py: the driver runs each implementation in its own process, reports ratios,
skips a missing peer, its FLOP counts agree with XLA's, and the two sides of a cpu_grad row
train alike. (No timing is asserted.)"""
import importlib.util
import os
import json
import subprocess
import sys
from pathlib import Path

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "scripts" / "bench.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("bench_script", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # puts scripts/ on sys.path for `benchmarks`
    return module


@pytest.mark.parametrize("name, input_shape", [("mlp", (784,)), ("cnn", (28, 28, 1))])
def test_training_flops_per_sample_agree_with_xla_cost_analysis(bench, name, input_shape):
    from benchmarks import jax_impl
    from benchmarks.workloads import WORKLOADS

    params, loss = getattr(jax_impl, f"{name}_model")(WORKLOADS[name].config)
    batch = 4
    x, y = jnp.ones((batch, *input_shape)), jnp.zeros(batch, jnp.int32)
    with jax.numpy_rank_promotion("allow"):  # the baseline is idiomatic JAX: it broadcasts
        cost = jax.jit(jax.grad(loss)).lower(params, x, y).compile().cost_analysis()
    assert cost["flops"] / batch == pytest.approx(WORKLOADS[name].flops, rel=0.05)


@pytest.mark.parametrize("workload", ["cpu_grad", "cpu_grad_matmul"])
def test_cpu_grad_rows_run_the_same_training_plain_and_rewritten(bench, workload):
    """Both sides of the row take the same SGD steps from the same start: equal losses and
    final params up to float32 rounding, only the gradient's form differs."""
    from benchmarks import fnn_impl, jax_impl
    from benchmarks.workloads import WORKLOADS, make_data

    data, config = make_data(workload), WORKLOADS[workload].config
    with jax.numpy_rank_promotion("allow"):  # the baseline is idiomatic JAX: it broadcasts
        (params, losses), (params_ref, losses_ref) = [
            getattr(impl, workload)(data, config).run() for impl in (fnn_impl, jax_impl)]
    assert losses.shape[-1] == config["steps"]
    np.testing.assert_allclose(losses, losses_ref, rtol=1e-5)
    chex.assert_trees_all_close(params, params_ref, rtol=1e-4, atol=1e-6)
    assert np.all(losses_ref[..., -1] < losses_ref[..., 0])  # it trains


def test_a_missing_peer_is_skipped_and_said(bench, monkeypatch):
    monkeypatch.setitem(sys.modules, "torch", None)  # import torch -> ModuleNotFoundError
    monkeypatch.delitem(sys.modules, "benchmarks.torch_impl", raising=False)
    assert bench.worker("gemm", "torch", "", 1) == {
        "skipped": "torch is not installed (pip install -e '.[bench]')"}


def test_every_workload_names_an_existing_baseline_and_implementations(bench):
    from benchmarks.workloads import WORKLOADS

    for name, spec in WORKLOADS.items():
        assert spec.baseline in spec.impls, name
        for label, target in spec.impls.items():
            module, function = target.rsplit(".", 1)
            path = ROOT / "scripts" / "benchmarks" / f"{module}.py"
            assert f"def {function}(" in path.read_text(), (name, label, target)


@pytest.mark.parametrize("workload, small", [
    ("quadrant", {"steps": 20}),
    ("mlp", {"n": 256}),
])
def test_every_implementation_of_the_gpu_checks_dry_run_workloads_runs(bench, monkeypatch,
                                                                       tmp_path, workload,
                                                                       small):
    """What scripts/gpu_check.sh --dry-run's bench step runs (every implementation of quadrant
    and mlp, through ``bench.worker``), in this process on a small config: each one trains and
    reports a rate, or says that its peer library is not installed."""
    import dataclasses
    from benchmarks import workloads

    spec = workloads.WORKLOADS[workload]
    monkeypatch.setitem(workloads.WORKLOADS, workload,
                        dataclasses.replace(spec, config={**spec.config, **small}))
    data = workloads.make_data(workload)
    if workload == "mlp":
        data = {k: v[:small["n"]] for k, v in data.items()}
    np.savez(tmp_path / "data.npz", **data)
    ran = []
    with jax.numpy_rank_promotion("allow"), jax.numpy_dtype_promotion("standard"):
        for label in spec.impls:   # the peers run in their own processes in the real bench
            out = bench.worker(workload, label, str(tmp_path / "data.npz"), 1)
            if "skipped" in out:
                assert label in spec.peers and "is not installed" in out["skipped"], out
                continue
            assert out["rate"] > 0 and out["compile_s"] >= 0 and out["repeats"] == 1, label
            ran.append(label)
    assert {"fnn", "jax"} <= set(ran), ran


def test_every_implementation_of_the_refit_row_runs_the_same_fits(bench, monkeypatch,
                                                                   tmp_path):
    """The refit row on a small config (2 learning rates, one digits epoch, 20 quadrant
    steps), through ``bench.worker`` in this process: fnn's four fits and each installed peer's
    (Equinox, Flax NNX) report a rate, a peer that is not installed is said; the peers' loops
    take as many steps as fnn's fit (its last partial minibatch dropped)."""
    import dataclasses
    from benchmarks import workloads

    spec = workloads.WORKLOADS["refit"]
    small = {"fits": 2, "digits": {**spec.config["digits"], "epochs": 1},
             "quadrant": {**spec.config["quadrant"], "steps": 20}}
    monkeypatch.setitem(workloads.WORKLOADS, "refit", dataclasses.replace(spec, config=small))
    data = workloads.make_data("refit")
    np.savez(tmp_path / "data.npz", **data)
    steps = {task: sum(1 for _ in batches())
             for task, batches in workloads.refit_batches(data, small, np.asarray).items()}
    assert steps == {"digits": len(data["digits_x"]) // 32, "quadrant": 20}
    assert set(spec.impls) == {f"{lib} {kind}" for lib in ("fnn", "equinox", "flax")
                               for kind in ("shared", "refit")}
    ran = {}
    for label in spec.impls:
        out = bench.worker("refit", label, str(tmp_path / "data.npz"), 1)
        if "skipped" in out:
            assert label.split()[0] in workloads.PEERS and "is not installed" in out["skipped"]
        else:
            assert out["rate"] > 0 and out["repeats"] == 1, (label, out)
        ran[label] = out
    assert "rate" in ran["fnn shared"] and "rate" in ran["fnn refit"]
    table = bench.refit_table(ran).splitlines()
    assert table[2].startswith("| fnn | ") and len(table) == 5  # header, rule, 3 libraries


def test_the_refit_table_gives_milliseconds_per_fit_and_the_overhead(bench):
    results = {"fnn shared": {"rate": 100.0}, "fnn refit": {"rate": 80.0},
               "equinox shared": {"rate": 20.0}, "equinox refit": {"rate": 2.0},
               "flax shared": {"skipped": "flax is not installed (pip install -e '.[bench]')"},
               "flax refit": {"skipped": "flax is not installed (pip install -e '.[bench]')"}}
    assert bench.refit_table(results).splitlines()[2:] == [
        "| fnn | 10.0 | 12.5 | 2.5 | 1.25x |",
        "| equinox | 50.0 | 500.0 | 450.0 | 10.00x |",
        "| flax | flax is not installed (pip install -e '.[bench]') | | | |"]


@pytest.mark.slow
def test_bench_runs_each_implementation_in_its_own_process(tmp_path):
    out = tmp_path / "bench.json"
    proc = subprocess.run([sys.executable, str(BENCH), "quadrant", "--impls", "fnn,jax",
                           "--repeats", "1", "--rounds", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    rows = {line.split("|")[2].strip(): line for line in proc.stdout.splitlines()
            if line.startswith("| quadrant |")}
    assert set(rows) == {"fnn", "jax", "steps/s"}  # a row per implementation, one summary row
    assert "1.00x jax" in rows["jax"]
    results = json.loads(out.read_text())["results"]["quadrant"]
    assert results["fnn"]["rate"] > 0 and results["jax"]["rate"] > 0
    assert results["fnn"]["peak_rss_mib"] > 0 and results["fnn"]["compile_s"] >= 0
    ratio = results["fnn"]["rate"] / results["jax"]["rate"]
    assert f"| {ratio:.2f}x |" in rows["steps/s"]  # the summary's fnn / baseline
    assert results["fnn"]["rate_per_round"] == [results["fnn"]["rate"]]
    pids = {*results["fnn"]["pids"], *results["jax"]["pids"]}  # a process per implementation
    assert len(pids) == 2 and not pids & {subprocess.os.getpid()}


def test_rounds_give_each_numbers_median_and_a_failed_round_wins(bench):
    """Rounds (a process each, as above) are summarised per implementation: each number's
    median over the rounds, every round's rate and pid kept; a skip or an error is reported
    as the first round that had it."""
    rounds = [{"rate": 10.0, "compile_s": 0.5, "pid": 11},
              {"rate": 40.0, "compile_s": 0.1, "pid": 12},
              {"rate": 20.0, "compile_s": 0.2, "pid": 13}]
    assert bench._median_round(rounds) == {"rate": 20.0, "compile_s": 0.2,
                                           "rate_per_round": [10.0, 40.0, 20.0],
                                           "pids": [11, 12, 13]}
    error = {"error": "exit 1: boom"}
    assert bench._median_round([rounds[0], error, {"skipped": "no torch"}]) == error


GPU_CHECK = ROOT / "scripts" / "gpu_check.sh"


def test_the_gpu_check_scripts_bench_steps_name_existing_workloads(bench):
    """Every workload the GPU check's bench steps (real, dry run, smoke) name exists, and the
    smoke run's bench step is the dry run's cut to one row."""
    from benchmarks.workloads import WORKLOADS

    steps = [line.split("BENCH=(", 1)[1].split(")", 1)[0].split()
             for line in GPU_CHECK.read_text().splitlines() if "BENCH=(" in line]
    assert len(steps) == 3, steps
    real = [w for w in steps[2] if not w.startswith("--") and not w[0].isdigit()]
    assert {"quadrant", "mlp", "cnn", "lstm"} <= set(real) <= set(WORKLOADS), real
    dry, smoke = steps[0], steps[1]
    assert dry[:2] == ["quadrant", "mlp"] and smoke[:3] == ["quadrant", "--impls", "fnn"]


@pytest.mark.slow
def test_the_gpu_check_script_smoke_runs_on_the_cpu(tmp_path):
    """scripts/gpu_check.sh, prepared for a GPU machine, runs its steps small on the CPU
    (``--smoke``: the dry run's test step on its policy tests that compile nothing, its bench
    step on fnn's quadrant row; every implementation of the dry run's workloads is run in
    test_every_implementation_of_the_gpu_checks_dry_run_workloads_runs, the dry run's other
    tests in tests/test_precision.py)."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "OUT": str(tmp_path), "PYTHON": sys.executable}
    proc = subprocess.run(["bash", str(GPU_CHECK), "--smoke"], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    assert "cpu" in (tmp_path / "devices.txt").read_text().lower()
    assert " passed" in (tmp_path / "tests.txt").read_text()
    results = json.loads((tmp_path / "bench.json").read_text())["results"]
    assert set(results) == {"quadrant"} and results["quadrant"]["fnn"]["rate"] > 0
