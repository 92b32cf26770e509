"""Misuses of the ``fnn`` command and of the experiments' config, as a table: each row is a
call, what it must end with (an exit status of ``fnn.app.cli.main``, or an exception of the Python
API) and a regex its message must match. A user error is one line on stderr that names the
experiment and the key, never a traceback, and nothing runs before the check."""
import re

import pytest

import experiments
from fnn.app import cli


def fnn(*argv):
    """``fnn ARGV`` in process: its exit status (argparse exits through SystemExit)."""
    def call():
        try:
            return cli.main(["--no-compile-cache", *argv])
        except SystemExit as exit_:
            return exit_.code
    call.argv = argv
    return call


def config(name, **overrides):
    call = lambda: experiments.config_for(name, overrides=overrides)
    call.argv = (name, *(f"{k}={v!r}" for k, v in overrides.items()))
    return call


CASES = [
    # --set values are checked against the type of CONFIG's default, naming the key
    (fnn("run", "quadrant", "--set", "steps=abc"), 2,
     r"^fnn: error: quadrant: steps must be a positive int, got 'abc'$"),
    (fnn("run", "quadrant", "--set", "steps=-5"), 2,
     r"^fnn: error: quadrant: steps must be a positive int, got -5$"),
    (fnn("run", "quadrant", "--set", "steps=0"), 2, r"quadrant: steps must be a positive int, got 0$"),
    (fnn("run", "quadrant", "--set", "steps=2.5"), 2, r"steps must be a positive int, got 2\.5$"),
    (fnn("run", "quadrant", "--set", "steps=True"), 2, r"steps must be a positive int, got True$"),
    (fnn("run", "quadrant", "--set", "seed=-1"), 2, r"quadrant: seed must be an int >= 0, got -1$"),
    # #22 item 13: an accuracy target of 2 (200%) used to be accepted
    (fnn("run", "digits_mlp", "--set", "target=2"), 2,
     r"digits_mlp: target must be a finite number in \[0, 1\], got 2\.0$"),
    (fnn("run", "quadrant", "--set", "learning_rate=fast"), 2,
     r"quadrant: learning_rate must be a finite number, got 'fast'$"),
    (fnn("run", "quadrant", "--set", "learning_rate=1e999"), 2,
     r"quadrant: learning_rate must be a finite number, got inf$"),
    (fnn("run", "gan", "--set", "generator=3"), 2, r"gan: generator must be a string, got 3$"),
    (fnn("run", "playground", "--set", "depths=3"), 2,
     r"playground: depths must be a list like \[0, 1, 2, 3\], got 3$"),
    (fnn("run", "playground", "--set", "depths=[0, 1, -2]"), 2,
     r"playground: depths\[2\] must be an int >= 0, got -2$"),
    (fnn("run", "batch_size", "--set", "batch_sizes=[None, 0]"), 2,
     r"batch_size: batch_sizes\[1\] must be a positive int, got 0$"),
    (fnn("run", "optimizers", "--set", "steps={'mlp': -1}"), 2,
     r"optimizers: steps\.mlp must be a positive int, got -1$"),
    (fnn("run", "optimizers", "--set", "steps={'mpl': 10}"), 2,
     r"optimizers: a key of steps must be one of .*, got 'mpl'; did you mean 'mlp'\?$"),
    # unknown keys and names name the close match
    (fnn("run", "quadrant", "--set", "stesp=3"), 2,
     r"^fnn: error: quadrant: config key must be one of .*, got 'stesp'; did you mean 'steps'\?$"),
    (fnn("run", "quadrnt"), 2, r"unknown experiment 'quadrnt'; did you mean 'quadrant'\?"),
    # every experiment's config is checked before the first one runs
    (fnn("run", "quadrant", "backprop_example", "--set", "steps=5"), 2,
     r"backprop_example: config key must be one of .*, got 'steps'"),
    # malformed options: argparse's usage message and status 2
    (fnn("run", "quadrant", "--set", "steps"), 2,
     r"argument --set: expected KEY=VALUE \(e\.g\. steps=500\), got 'steps'"),
    (fnn("run", "quadrant", "--set", "=5"), 2, r"argument --set: expected KEY=VALUE"),
    (fnn("run", "quadrant", "--fast"), 2, r"unrecognized arguments: --fast"),
    (fnn("fly"), 2, r"invalid choice: 'fly'"),
    # report
    (fnn("report", "/nonexistent/fnn-runs"), 2,
     r"^fnn: error: report: '/nonexistent/fnn-runs' is not a folder"),
    (fnn("report", "a", "--out", "b"), 2,
     r"report: give the results folder once, as DIR or as --out \(got 'a' and --out 'b'\)$"),
    # compare-optimizers
    (fnn("compare-optimizers", "--optimizers", "adamm"), 2,
     r"--optimizers must be one of 'sgd', .*, got 'adamm'; did you mean 'adam'\?"),
    (fnn("compare-optimizers", "--optimizers", " , "), 2, r"--optimizers must name at least one optimizer of sgd, "),
    (fnn("compare-optimizers", "--learning-rate", "-1"), 2,
     r"--learning-rate must be a finite number > 0, got -1\.0$"),
    (fnn("compare-optimizers", "--steps", "0"), 2, r"--steps must be a positive int, got 0$"),
    (fnn("compare-optimizers", "--problem", "saddle"), 2, r"invalid choice: 'saddle'"),
    # the Python API raises what the command prints
    (config("quadrant", steps=-5), ValueError, r"^quadrant: steps must be a positive int, got -5$"),
    (config("esn_forecast", esn={"units": 0}), ValueError,
     r"^esn_forecast: esn\.units must be a positive int, got 0$"),
    (config("depth_vs_width", pair=[[200], [40, "x"]]), ValueError,
     r"^depth_vs_width: pair\[1\]\[1\] must be a positive int, got 'x'$"),
    (config("quadrant", hiden=3), ValueError, r"did you mean 'hidden'\?$"),
]


@pytest.mark.parametrize("call, expected, message", CASES,
                         ids=[" ".join(map(str, c[0].argv)) for c in CASES])
def test_misuse_fails_with_a_clear_message(call, expected, message, capsys):
    if isinstance(expected, type):
        with pytest.raises(expected, match=message):
            call()
        return
    assert call() == expected
    err = capsys.readouterr().err
    assert "Traceback" not in err
    last = err.rstrip("\n").splitlines()[-1]
    assert re.search(message, last), err
    if not err.startswith("usage:"):  # fnn's own checks: one line; argparse's add the usage
        assert err.count("\n") == 1, err


def test_nothing_runs_before_a_bad_override(tmp_path, capsys):
    out = tmp_path / "runs"
    assert cli.main(["--no-compile-cache", "run", "backprop_example", "quadrant", "--out",
                     str(out), "--set", "steps=-1"]) == 2
    assert not out.exists()
