"""Benchmarks: fnn against a hand-written JAX baseline and the peer libraries, side by side.

    python scripts/bench.py                        # every workload, every implementation
    python scripts/bench.py mlp lstm               # some workloads
    python scripts/bench.py --impls fnn,jax,torch  # some implementations
    python scripts/bench.py --json bench.json      # also write the results

Workloads and their sizes are in ``scripts/benchmarks/workloads.py``; each library's
implementations in ``scripts/benchmarks/<library>_impl.py``:

- ``fnn``: the public API as a user would write it (``fnn.fit`` for an epoch, the jitted
  ``fnn.train_step`` for a step, ``fnn.sweep`` for many runs);
- ``jax``: a minimal hand-written JAX loop with optax (the ceiling fnn should reach; whole
  epochs as one ``lax.scan`` over device-resident minibatches);
- the peers, when installed (``pip install -e '.[bench]'``), each in its documented idiom:
  ``flax`` (NNX, ``nnx.jit`` train step), ``equinox`` (``eqx.filter_jit`` step), ``haiku``
  (``hk.transform`` + ``jax.jit`` step), all with optax and one jitted step per minibatch
  from a Python loop; ``torch`` (eager, ``torch.optim``). A missing peer is skipped and said.

The ``mlp`` and ``cnn`` workloads also have bfloat16-compute rows (``fnn bf16``: ``fnn.fit``
with ``precision="params=float32,compute=bfloat16,output=float32"``; ``jax bf16``: the
baseline with its params and inputs cast by hand), beside the float32 rows of the same run.

The ``refit`` row times what a learning-rate loop pays for building its objects afresh: 10
fits of the digits MLP and 10 of the quadrant net (``workloads.refit_loop``), each with a
freshly built net, objective and optimizer and its own learning rate (``<library> refit``),
against the same fits sharing objects (``<library> shared``); for fnn (``fnn.fit``) and for
the peers' idiomatic loops, Equinox (a module-level ``eqx.filter_jit`` step, the optax
optimizer as its argument) and Flax NNX (a module-level ``nnx.jit`` step over the model and
its ``nnx.Optimizer``), each a Python loop over the same minibatches and steps as fnn's fit.
A last table gives each library's milliseconds per fit and the overhead per refit. The
peers' processes run with JAX's defaults (no persistent compilation cache unless
``JAX_COMPILATION_CACHE_DIR`` is set), so each of their fresh fits compiles its step; fnn's
use fnn's persistent cache, which shortens only their warm-up call.

The ``cpu_grad`` rows time fnn's XLA:CPU workaround for jax-ml/jax#12868 (``fnn/_cpu_grad.py``):
one training scan with ``jax.value_and_grad`` (``jax``) and with fnn's rewritten gradient
(``fnn``): convolutions and max pooling in ``cpu_grad``, vmapped matmuls (``canonical_matmuls``)
in ``cpu_grad_matmul``. The day ``fnn ÷ baseline`` falls to 1.00x, the rewrite can be deleted.

Every implementation runs in its own process: one call as warm-up (its excess over the
median is reported as compile time), then the median of ``--repeats`` timed calls. Processes
of a workload's implementations take turns for ``--rounds`` rounds, and each figure is the
median over the rounds: a slow spell of the machine then hits every implementation. Peak
memory is the process's peak resident set size (and the device's peak on a GPU). GFLOP/s
counts the training FLOPs per unit (forward 2, weight gradients 2, input gradients 2 per
multiply-accumulate of the matmuls and convolutions; elementwise work is not counted) and is
shown as a fraction of the ``gemm`` figure of the same run.
"""
from __future__ import annotations

import argparse
import importlib
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT / "scripts"), str(ROOT)]

from benchmarks.workloads import PEERS, WORKLOADS, make_data  # noqa: E402

MARK = "BENCH_RESULT "


def _rss_mib() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2 ** 20


def _seconds(run) -> float:
    start = time.perf_counter()
    run()
    return time.perf_counter() - start


def worker(workload: str, label: str, data_path: str, repeats: int) -> dict:
    """Build implementation ``label`` of ``workload`` in this process and time it."""
    spec = WORKLOADS[workload]
    module, function = spec.impls[label].rsplit(".", 1)
    try:
        build = getattr(importlib.import_module(f"benchmarks.{module}"), function)
    except ModuleNotFoundError as e:
        if e.name and e.name.split(".")[0] in PEERS:
            return {"skipped": f"{e.name.split('.')[0]} is not installed "
                               f"(pip install -e '.[bench]')"}
        raise
    import numpy as np

    data = dict(np.load(data_path)) if data_path else {}
    rss_before = _rss_mib()
    runner = build(data, spec.config)
    first = _seconds(runner.run)  # includes compilation
    median = statistics.median(_seconds(runner.run) for _ in range(repeats))
    out = {"rate": runner.work / median, "seconds_per_call": median,
           "compile_s": max(first - median, 0.0),
           "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
           "rss_before_build_mib": rss_before, "repeats": repeats, "pid": os.getpid()}
    if "jax" in sys.modules:
        import jax

        if jax.default_backend() != "cpu":
            stats = jax.devices()[0].memory_stats() or {}
            if "peak_bytes_in_use" in stats:
                out["device_peak_mib"] = stats["peak_bytes_in_use"] / 2 ** 20
    return out


def _run_worker(workload: str, label: str, data_path: str, repeats: int) -> dict:
    cmd = [sys.executable, __file__, "--worker", workload, label, "--data", data_path,
           "--repeats", str(repeats)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    for line in proc.stdout.splitlines():
        if line.startswith(MARK):
            return json.loads(line[len(MARK):])
    tail = (proc.stderr.strip().splitlines() or ["(no output)"])[-1]
    return {"error": f"exit {proc.returncode}: {tail}"}


def _median_round(runs: list[dict]) -> dict:
    """One implementation's figures over rounds (separate processes): each number's median,
    ``rate_per_round`` kept; a skip or an error as the first round reported it."""
    done = [r for r in runs if "rate" in r]
    if len(done) < len(runs):
        return next(r for r in runs if "rate" not in r)
    out = {k: statistics.median(r[k] for r in done) for k, v in done[0].items()
           if isinstance(v, (int, float)) and k != "pid"}
    return {**out, "rate_per_round": [r["rate"] for r in done], "pids": [r["pid"] for r in done]}


def _rate(rate: float) -> str:
    """A rate to the unit, or to 3 significant digits below 100 (a refit's fits/s)."""
    return f"{rate:,.0f}" if rate >= 100 else f"{rate:.3g}"


def _summary(results: dict) -> str:
    """One row a workload: every implementation's rate and fnn's two ratios."""
    order = ("fnn", "fnn sweep", "fnn fits", "fnn 1 device", "fnn 2 devices", "fnn 4 devices",
             "jax", "jax vmap", "optax", *PEERS, "numpy", "fnn bf16", "jax bf16")
    labels = sorted(dict.fromkeys(l for r in results.values() for l in r),  # workload order
                    key=lambda l: order.index(l) if l in order else len(order))
    lines = ["| workload | unit | " + " | ".join(labels) + " | fnn ÷ baseline | fnn ÷ best peer |",
             "|---|---|" + "---|" * (len(labels) + 2)]
    for name, r in results.items():
        spec = WORKLOADS[name]
        rate = lambda l: r.get(l, {}).get("rate")
        cells = [_rate(rate(l)) if rate(l) else "" for l in labels]
        ours = rate("fnn") or rate("fnn sweep")
        peers = [rate(l) for l in spec.peers if rate(l)]
        vs_base = f"{ours / rate(spec.baseline):.2f}x" if ours and rate(spec.baseline) else ""
        vs_peer = f"{ours / max(peers):.2f}x" if ours and peers else ""
        lines.append(f"| {name} | {spec.unit} | " + " | ".join(cells) + f" | {vs_base} | {vs_peer} |")
    return "\n".join(lines)


def _machine() -> str:
    import jax

    import fnn

    return (f"fnn {fnn.__version__}, jax {jax.__version__}, {jax.default_backend()} "
            f"({jax.devices()[0].device_kind}), {os.cpu_count()} cores, "
            f"{platform.processor() or platform.machine()}, Python {platform.python_version()}")


def _versions() -> dict:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for dist in ("jax", "optax", "flax", "equinox", "dm-haiku", "torch", "numpy"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            pass
    return out


def _row(workload, label, r, results, gemm) -> str:
    spec = WORKLOADS[workload]
    if "rate" not in r:
        return f"| {workload} | {label} | {r.get('skipped') or r.get('error')} | | | | | |"
    rates = {k: v["rate"] for k, v in results.items() if "rate" in v}
    base = rates.get(spec.baseline)
    peers = {k: v for k, v in rates.items() if k in spec.peers}
    best = max(peers, key=peers.get) if peers else None
    vs_base = f"{r['rate'] / base:.2f}x {spec.baseline}" if base else ""
    vs_peer = f"{r['rate'] / peers[best]:.2f}x {best}" if best else ""
    flops = ""
    if spec.flops and workload != "gemm":
        gflops = r["rate"] * spec.flops / 1e9
        flops = f"{gflops:.3g}" + (f" ({100 * gflops / gemm:.0f}%)" if gemm else "")
    return (f"| {workload} | {label} | {_rate(r['rate'])} {spec.unit} | {vs_base} | {vs_peer} | "
            f"{r['compile_s']:.2f} | {r['peak_rss_mib']:,.0f} | {flops} |")


def refit_table(results: dict) -> str:
    """The ``refit`` row per library: milliseconds per fit with shared objects and with
    freshly built ones (1000 / rate), and their difference, the overhead per refit."""
    lines = ["| refit | ms per fit, shared objects | ms per fit, fresh objects | "
             "overhead per refit, ms | fresh ÷ shared |", "|---|---|---|---|---|"]
    for lib in dict.fromkeys(label.split()[0] for label in results):
        shared, fresh = results.get(f"{lib} shared", {}), results.get(f"{lib} refit", {})
        if "rate" not in shared or "rate" not in fresh:
            why = next((r.get("skipped") or r.get("error") for r in (shared, fresh)
                        if "rate" not in r), "not run")
            lines.append(f"| {lib} | {why} | | | |")
            continue
        ms_shared, ms_fresh = 1000 / shared["rate"], 1000 / fresh["rate"]
        lines.append(f"| {lib} | {ms_shared:.1f} | {ms_fresh:.1f} | {ms_fresh - ms_shared:.1f} | "
                     f"{ms_fresh / ms_shared:.2f}x |")
    return "\n".join(lines)


def playground_bench(args) -> dict:  # noqa: ARG001 (the row takes no options yet)
    """The ``playground`` row: fnn playground on TensorFlow Playground's default setup,
    through its server (scripts/benchmarks/playground_bench.py)."""
    from benchmarks.playground_bench import describe, playground_row

    r = playground_row()
    print("\n" + describe(r) + "; goals met: " + ", ".join(
        f"{k} {'yes' if ok else 'NO'}" for k, ok in r["goals_met"].items()), flush=True)
    return r


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("workloads", nargs="*", choices=[[], *WORKLOADS, "playground"],
                        default=[],
                        metavar="WORKLOAD", help=f"any of: {', '.join(WORKLOADS)} (default all)")
    parser.add_argument("--impls", help="comma-separated implementation labels (default all)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per process")
    parser.add_argument("--rounds", type=int, default=3,
                        help="processes per implementation, interleaved with the other "
                             "implementations' so that machine noise hits them alike; the "
                             "table shows medians over rounds")
    parser.add_argument("--json", help="also write the results here")
    parser.add_argument("--worker", nargs=2, metavar=("WORKLOAD", "IMPL"), help=argparse.SUPPRESS)
    parser.add_argument("--data", default="", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.repeats < 1 or args.rounds < 1:
        parser.error("--repeats and --rounds must be >= 1")
    if args.worker:
        print(MARK + json.dumps(worker(*args.worker, args.data, args.repeats)), flush=True)
        return 0

    names = [n for n in WORKLOADS if n in args.workloads] or (
        [] if args.workloads else list(WORKLOADS))  # gemm first
    wanted = set(args.impls.split(",")) if args.impls else None
    print(_machine() + "\n")
    print("| workload | implementation | rate | vs baseline | vs best peer | compile s | "
          "peak RSS MiB | GFLOP/s (% of gemm) |")
    print("|---|---|---|---|---|---|---|---|")
    results, gemm, failed = {}, None, False
    with tempfile.TemporaryDirectory() as tmp:
        for name in names:
            spec = WORKLOADS[name]
            data_path = f"{tmp}/{name}.npz"
            import numpy as np

            np.savez(data_path, **make_data(name))
            labels = [l for l in spec.impls if wanted is None or l in wanted]
            rounds = [{l: _run_worker(name, l, data_path, args.repeats) for l in labels}
                      for _ in range(args.rounds)]
            results[name] = {l: _median_round([r[l] for r in rounds]) for l in labels}
            failed |= any("error" in r for r in results[name].values())
            if name == "gemm" and "rate" in results[name].get("jax", {}):
                gemm = results[name]["jax"]["rate"]
            for label, r in results[name].items():
                print(_row(name, label, r, results[name], gemm), flush=True)
    print("\n" + _summary(results))
    if "refit" in results:
        print("\n" + refit_table(results["refit"]))
    extra = {"playground": playground_bench(args)} if (
        not args.workloads or "playground" in args.workloads) else {}
    if args.json:
        Path(args.json).write_text(json.dumps(
            {"machine": _machine(), "versions": _versions(), "repeats": args.repeats,
             "rounds": args.rounds,
             "gemm_gflops": gemm, "results": results, **extra}, indent=2) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
