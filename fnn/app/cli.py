"""The ``fnn`` command: ``fnn list``, ``fnn run [NAME...] [--quick] [--out DIR] [--set K=V]``,
``fnn info``, ``fnn report [DIR]``, ``fnn compare-optimizers``. The global options
(``--cache-dir``, ``--no-compile-cache``) go before or after the subcommand.

The CLI is part of the application (``fnn/app``), which sits on top of the library with the
top-level ``experiments`` package; nothing in the library imports either. The optimizer
comparison is :mod:`fnn.app.compare`, the report :mod:`fnn.app.report`. A subcommand is a
``cmd_<name>(args) -> exit status`` and a few lines in :func:`build_parser`.
"""
from __future__ import annotations

import argparse
import ast
import sys
import time

import experiments
from fnn.app import compare
from fnn.app.report import write_report
from fnn.train.programs import use_persistent_cache


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
    for name in experiments.names():
        default = "*" if name in experiments.DEFAULT_SUITE else " "
        print(f"{default} {name:<20} {experiments.load(name).DESCRIPTION}")
    print("\n* = in the default suite (`fnn run` with no name)")
    return 0


def cmd_run(args) -> int:
    from fnn.sharding import is_primary as fnn_primary

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
    """Same problem, same start: each fnn optimizer (and optax's twin) -> JSON, figure, table
    (:mod:`fnn.app.compare`)."""
    record = compare.run(compare.parse_names(args.optimizers), args.problem,
                         learning_rate=args.learning_rate, steps=args.steps,
                         reference=args.reference, out=args.out)
    print(compare.table(record))
    print(f"wrote {args.out}/compare.json, compare.png and results.json (shown by `fnn report`)")
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
    comp.add_argument("--optimizers", default="sgd,adam", help="comma-separated names, of "
                      f"{', '.join(compare.OPTIMIZERS)}")
    comp.add_argument("--problem", choices=compare.PROBLEMS, default="mlp")
    comp.add_argument("--learning-rate", type=float, default=0.01)
    comp.add_argument("--steps", type=int, default=200)
    comp.add_argument("--reference", choices=("optax", "none"), default="optax",
                      help="pair each fnn optimizer with optax's of the same name")
    comp.add_argument("--out", default="runs/compare-optimizers")
    comp.set_defaults(func=cmd_compare_optimizers)
    from fnn.app import playground  # the page, its server and sessions (fnn/app/playground)
    pg = add("playground", help="TensorFlow Playground in the browser, trained by fnn")
    playground.add_arguments(pg)
    pg.set_defaults(func=playground.main)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    use_persistent_cache(args.cache_dir, enable=not args.no_compile_cache)
    try:
        return args.func(args)
    except ValueError as error:  # user errors: one clear line, no traceback
        print(f"fnn: error: {error}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
