"""The ``fnn`` command: ``fnn list``, ``fnn run [NAME...] [--quick] [--out DIR] [--set K=V]``,
``fnn info``, ``fnn report [DIR]``, ``fnn compare-optimizers``. The global options
(``--cache-dir``, ``--no-compile-cache``) go before or after the subcommand.

The experiments live in the top-level ``experiments`` package, which sits on top of fnn; it
is imported here lazily so that nothing in the library itself depends on it.
"""
from __future__ import annotations

import argparse
import ast
import importlib
import sys
import time


def _experiments():
    return importlib.import_module("experiments")


def _parse_override(text: str) -> tuple[str, object]:
    """``"KEY=VALUE"`` -> (KEY, the Python literal VALUE, or VALUE as a string); the
    experiment's CONFIG then checks the value's form (``experiments.config_for``)."""
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise argparse.ArgumentTypeError(f"expected KEY=VALUE (e.g. steps=500), got {text!r}")
    try:
        return key.strip(), ast.literal_eval(value.strip())
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return key.strip(), value.strip()


def cmd_list(args) -> int:
    experiments = _experiments()
    for name in experiments.names():
        default = "*" if name in experiments.DEFAULT_SUITE else " "
        print(f"{default} {name:<20} {experiments.load(name).DESCRIPTION}")
    print("\n* = in the default suite (`fnn run` with no name)")
    return 0


def cmd_run(args) -> int:
    from fnn.report import write_report
    from fnn.sharding import is_primary as fnn_primary

    experiments = _experiments()
    names = args.names or list(experiments.DEFAULT_SUITE)
    overrides = dict(args.set or [])
    for name in names:  # fail on a typo (a name, a key, a value) before spending any time
        experiments.config_for(name, args.quick, overrides)
    total = time.perf_counter()
    for name in names:
        start = time.perf_counter()
        print(f"== {name}{' (quick)' if args.quick else ''}", flush=True)
        record = experiments.run_experiment(name, args.out, quick=args.quick,
                                            overrides=overrides)
        summary = record.get("summary")
        if summary:
            print("   " + summary)
        print(f"   wrote {args.out}/{name}/results.json and {len(record['figures'])} figure(s) "
              f"in {time.perf_counter() - start:.1f}s", flush=True)
    print(f"done: {len(names)} experiment(s) in {time.perf_counter() - total:.1f}s")
    if fnn_primary():  # with several processes, process 0 writes
        print(f"wrote {write_report(args.out)}")  # every run under --out, not only these
    return 0


def cmd_report(args) -> int:
    """Collect DIR/*/results.json and their figures into one self-contained HTML page."""
    from fnn.report import write_report

    if args.folder is not None and args.out is not None and args.folder != args.out:
        raise ValueError(f"report: give the results folder once, as DIR or as --out (got "
                         f"{args.folder!r} and --out {args.out!r})")
    print(f"wrote {write_report(args.folder or args.out or 'runs', args.output)}")
    return 0


def cmd_info(args) -> int:
    import jax
    import jaxlib
    import numpy
    import optax

    import fnn

    print(f"fnn {fnn.__version__}\njax {jax.__version__} (jaxlib {jaxlib.__version__}), "
          f"optax {optax.__version__}, numpy {numpy.__version__}, python {sys.version.split()[0]}")
    print(f"backend: {jax.default_backend()}")
    for device in jax.devices():
        print(f"  {device.id}: {device.device_kind} ({device.platform})")
    return 0


def cmd_compare_optimizers(args) -> int:
    """Same problem, same start: each fnn optimizer (and optax's twin) -> JSON, figure, table."""
    import json
    from pathlib import Path

    import jax
    import numpy as np
    import optax

    import fnn
    from fnn import plot
    from fnn.optim import compare as cmp

    from fnn._names import did_you_mean

    known = ["sgd", "adagrad", "rmsprop", "adadelta", "adam", "adamw", "adamax", "nadam",
             "amsgrad", "lion"]
    names = [n.strip() for n in args.optimizers.split(",") if n.strip()]
    if not names:
        raise ValueError(f"--optimizers names no optimizer (got {args.optimizers!r}); try "
                         f"{', '.join(known)}")
    for name in names:
        if not callable(getattr(fnn.optim, name, None)) or name.startswith("scale"):
            raise ValueError(f"unknown optimizer {name!r}{did_you_mean(name, known)}; try "
                             f"{', '.join(known)}")
    if not (args.learning_rate > 0 and args.learning_rate != float("inf")):
        raise ValueError(f"--learning-rate must be a finite number > 0, got {args.learning_rate}")
    if args.steps < 1:
        raise ValueError(f"--steps must be a positive int, got {args.steps}")
    if args.problem == "mlp":
        problem = _experiments().load("optimizers").mlp_problem(64, 0)
    else:
        problem = {"quadratic": cmp.quadratic, "rosenbrock": cmp.rosenbrock}[args.problem]()
    optimizers, pairs = {}, []
    for name in names:
        optimizers[f"fnn {name}"] = getattr(fnn.optim, name)(args.learning_rate)
        if args.reference == "optax":
            optimizers[f"optax {name}"] = getattr(optax, name)(args.learning_rate)
            pairs.append((f"fnn {name}", f"optax {name}"))
    with jax.numpy_dtype_promotion("standard"):  # optax relies on standard promotion
        result = cmp.compare(optimizers, problem, steps=args.steps, pairs=pairs)

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    experiments = _experiments()
    record = {"problem": args.problem, "learning_rate": args.learning_rate, "steps": args.steps,
              "losses": result.losses, "max_param_diff": result.max_param_diff,
              "seconds_per_step": result.seconds_per_step}
    (out / "compare.json").write_text(json.dumps(experiments.to_json(record), indent=2) + "\n")
    fig, ax = plot.figure(1, size=(6.5, 4.2))
    plot.loss_curves(ax, result.losses, title=f"{args.problem}, learning rate {args.learning_rate}",
                     styles={k: {"ls": "--"} for k in result.losses if k.startswith("optax")})
    plot.save(fig, out / "compare.png")

    print(f"{'optimizer':<18}{'final loss':>12}{'max |dparam|':>14}{'us/step':>10}")
    for name, losses in result.losses.items():
        pair = next((f"{a} vs {b}" for a, b in pairs if name in (a, b)), None)
        diff = f"{np.max(result.max_param_diff[pair]):.1e}" if pair else "-"
        print(f"{name:<18}{losses[-1]:>12.4g}{diff:>14}{1e6 * result.seconds_per_step[name]:>10.1f}")
    print(f"wrote {out / 'compare.json'} and {out / 'compare.png'}")
    return 0


def _global_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    """The options every subcommand takes, before or after its name. The subcommands' copies
    (``suppress``) default to ``argparse.SUPPRESS``, so they never overwrite a value given
    before the subcommand."""
    default = {"default": argparse.SUPPRESS} if suppress else {}
    parser.add_argument("--cache-dir", **default, help="persistent compilation cache folder "
                        "(default: $FNN_CACHE_DIR or ~/.cache/fnn/jax)")
    parser.add_argument("--no-compile-cache", action="store_true", **default,
                        help="do not use the persistent compilation cache")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="fnn", description="functional neural networks in JAX")
    _global_options(parser, suppress=False)
    common = argparse.ArgumentParser(add_help=False)
    _global_options(common, suppress=True)
    sub = parser.add_subparsers(dest="command", required=True)
    add = lambda name, **kw: sub.add_parser(name, parents=[common], **kw)
    add("list", help="list the experiments").set_defaults(func=cmd_list)
    run = add("run", help="run experiments (default: the default suite), then write the report")
    run.add_argument("names", nargs="*", help="experiment names (see `fnn list`)")
    run.add_argument("--quick", action="store_true", help="small configs (seconds, for tests)")
    run.add_argument("--out", default="runs", help="output folder (default: runs); the report "
                     "page is OUT/report.html")
    run.add_argument("--set", action="append", type=_parse_override, metavar="KEY=VALUE",
                     help="override a config value, e.g. --set steps=500 (checked against the "
                     "experiment's CONFIG)")
    run.set_defaults(func=cmd_run)
    add("info", help="versions and devices").set_defaults(func=cmd_info)
    report = add("report", help="one HTML page from the results of `fnn run`")
    report.add_argument("folder", nargs="?", metavar="DIR", help="the folder `fnn run --out` "
                        "wrote (default: runs)")
    report.add_argument("--out", help="the same folder, as an option")
    report.add_argument("--output", help="the page to write (default: DIR/report.html)")
    report.set_defaults(func=cmd_report)
    comp = add("compare-optimizers",
               help="train one problem with several optimizers (fnn vs optax)")
    comp.add_argument("--optimizers", default="sgd,adam", help="comma-separated names")
    comp.add_argument("--problem", choices=("quadratic", "rosenbrock", "mlp"), default="mlp")
    comp.add_argument("--learning-rate", type=float, default=0.01)
    comp.add_argument("--steps", type=int, default=200)
    comp.add_argument("--reference", choices=("optax", "none"), default="optax",
                      help="pair each fnn optimizer with optax's of the same name")
    comp.add_argument("--out", default="runs/compare-optimizers")
    comp.set_defaults(func=cmd_compare_optimizers)
    return parser


def default_cache_dir() -> str:
    """``$FNN_CACHE_DIR``, else ``$XDG_CACHE_HOME/fnn/jax``, else ``~/.cache/fnn/jax``."""
    import os
    from pathlib import Path

    if os.environ.get("FNN_CACHE_DIR"):
        return os.environ["FNN_CACHE_DIR"]
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return str(Path(base) / "fnn" / "jax")


def enable_compile_cache(directory: str) -> None:
    """Turn on JAX's persistent compilation cache in ``directory`` for every compilation
    (a second ``fnn run`` of the same experiment then skips XLA compilation)."""
    import jax

    jax.config.update("jax_compilation_cache_dir", directory)
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    importlib.import_module("fnn.train.programs").use_persistent_cache(args.cache_dir, enable=not args.no_compile_cache)
    try:
        return args.func(args)
    except ValueError as error:  # user errors: one clear line, no traceback
        print(f"fnn: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
