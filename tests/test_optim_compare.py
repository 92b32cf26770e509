"""fnn.optim.compare and `fnn compare-optimizers`: same start, paired differences, outputs."""
import json

import jax
import numpy as np
import optax
import pytest

import fnn
from fnn.app import cli
from fnn.optim.compare import Problem, compare, quadratic, rosenbrock


def test_compare_pairs_optimizers_and_records_every_step():
    problem = quadratic(condition=10.0)
    with jax.numpy_dtype_promotion("standard"):   # optax's optimizers run beside fnn's
        c = compare({"fnn": fnn.optim.adam(0.1), "twin": fnn.optim.adam(0.1),
                     "optax": optax.adam(0.1), "sgd": fnn.optim.sgd(0.05)}, problem, steps=30,
                    pairs=[("fnn", "twin"), ("fnn", "sgd")])
    assert set(c.losses) == set(c.seconds_per_step) == {"fnn", "twin", "optax", "sgd"}
    assert c.losses["fnn"].shape == c.losses["optax"].shape == (31,)
    assert c.losses["fnn"][0] == pytest.approx(0.5 * (16 + 10 * 1.5 ** 2))   # the start
    np.testing.assert_array_equal(c.trajectories["sgd"]["xy"][0], problem.init["xy"])
    assert c.max_param_diff["fnn vs twin"].shape == (31,)
    np.testing.assert_array_equal(c.max_param_diff["fnn vs twin"], 0.0)   # same rule, same path
    diff = c.max_param_diff["fnn vs sgd"]
    assert diff[0] == 0.0 and diff[-1] > 0.1                              # same start only
    assert c.losses["sgd"][-1] < c.losses["sgd"][0]


def test_compare_reports_a_real_difference_between_different_rules():
    c = compare({"a": fnn.optim.sgd(0.01), "b": fnn.optim.sgd(0.02)}, rosenbrock(), steps=5,
                pairs=[("a", "b")])
    diff = c.max_param_diff["a vs b"]
    assert diff[0] == 0.0 and diff[-1] > 1e-3          # same start, diverging paths


def test_compare_rejects_unknown_pairs_and_bad_steps():
    problem = Problem("p", lambda p: (p["w"] ** 2).sum(), {"w": np.ones(3, np.float32)})
    with pytest.raises(ValueError, match=r"pair \('a', 'z'\) names 'z'"):
        compare({"a": fnn.optim.sgd(0.1)}, problem, pairs=[("a", "z")])
    with pytest.raises(ValueError, match=r"steps must be a positive int, got 0"):
        compare({"a": fnn.optim.sgd(0.1)}, problem, steps=0)


def test_cli_compare_optimizers_writes_json_and_figure(tmp_path, capsys):
    assert cli.main(["compare-optimizers", "--optimizers", "sgd,rmsprop", "--problem",
                     "rosenbrock", "--learning-rate", "0.001", "--steps", "20",
                     "--out", str(tmp_path)]) == 0
    record = json.loads((tmp_path / "compare.json").read_text())
    assert set(record["losses"]) == {"fnn sgd", "optax sgd", "fnn rmsprop", "optax rmsprop"}
    assert len(record["max_param_diff"]["fnn sgd vs optax sgd"]) == 21
    assert (tmp_path / "compare.png").read_bytes()[:4] == b"\x89PNG"
    assert "fnn rmsprop" in capsys.readouterr().out
    assert cli.main(["compare-optimizers", "--optimizers", "adamm"]) == 2


def test_compare_optimizers_says_what_the_gap_column_compares_and_reports_its_run(tmp_path,
                                                                                capsys):
    """#22 item 13: the optax rows showed 'max |dparam| 0.0e+00', which read as a bug, and the
    runs were missing from `fnn report`."""
    from fnn.app import report

    out = tmp_path / "compare-optimizers"
    assert cli.main(["compare-optimizers", "--optimizers", "sgd", "--problem", "quadratic",
                     "--steps", "5", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    rows = {line.split()[0] + " " + line.split()[1]: line for line in printed.splitlines()
            if line.startswith(("fnn ", "optax "))}
    assert "(reference)" in rows["optax sgd"] and "e+" in rows["fnn sgd"]
    assert "max |fnn-optax|: the largest |fnn param - optax param|" in printed
    results = json.loads((out / "results.json").read_text())
    assert results["max_param_diff_vs_optax"] == {"fnn sgd vs optax sgd": 0.0}
    assert "quadratic, 5 steps" in results["summary"]
    assert [r["name"] for r in report.collect(tmp_path)] == ["compare-optimizers"]
    page = report.write_report(tmp_path).read_text()
    assert "compare-optimizers" in page and "quadratic, 5 steps" in page


def test_the_tools_take_their_optimizers_from_the_one_registry():
    """#23: adding an optimizer touches one table, fnn.optim.OPTIMIZERS."""
    import optax

    from fnn.app import compare

    assert list(fnn.optim.OPTIMIZERS) == ["sgd", "adagrad", "rmsprop", "adadelta", "adam",
                                          "adamw", "adamax", "nadam", "amsgrad", "lion"]
    assert all(callable(getattr(optax, name)) for name in fnn.optim.OPTIMIZERS)
    assert compare.parse_names("adam, lion") == ["adam", "lion"]
    assert fnn.optim.optimizer("sgd", 0.1).init({"w": np.ones(2, np.float32)}) is not None
    with pytest.raises(ValueError, match=r"optimizer: name must be one of sgd, .*got 'adamm'; "
                                         r"did you mean 'adam'\?"):
        fnn.optim.optimizer("adamm", 0.1)
