"""The experiments reproduce the notes' numbers; the runner writes results.json and figures."""
import json

import jax
import numpy as np
import pytest

import experiments
import fnn
from experiments import backprop_example, optimizers
from fnn.app import cli
from fnn.data import load_digits


def _run(name, quick_run):
    written, folder = quick_run(name)
    assert written["meta"]["experiment"] == name
    assert written["figures"], "every experiment writes at least one figure"
    for figure in written["figures"]:
        png = (folder / figure).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    return written


@pytest.mark.quick_runs("backprop_example")
def test_backprop_example_reproduces_every_published_digit(quick_run):
    r = _run("backprop_example", quick_run)
    assert f"{r['E_total']:.9f}" == "0.298371109"
    assert f"{r['updated']['w5']:.8f}" == "0.35891648"
    assert f"{r['updated']['w6']:.9f}" == "0.408666186"
    assert f"{r['updated']['w7']:.9f}" == "0.511301270"
    assert f"{r['updated']['w8']:.9f}" == "0.561370121"
    assert f"{r['updated']['w1']:.9f}" == "0.149780716"
    assert all(r["matches_notes"].values())
    assert r["max_abs_diff"] < 1e-12
    assert set(r["grads"]) == set(r["manual"]["grads"]) == {f"w{i}" for i in range(1, 9)} | {"b1", "b2"}


def test_rounds_to_compares_printed_digits():
    assert backprop_example.rounds_to(0.5113012702, "0.511301270")
    assert not backprop_example.rounds_to(0.5113012749, "0.511301270")


@pytest.mark.slow
@pytest.mark.quick_runs("quadrant")
def test_quadrant_fnn_and_numpy_curves_agree(quick_run):
    r = _run("quadrant", quick_run)
    assert len(r["loss_fnn"]) == len(r["loss_numpy"]) == experiments.load("quadrant").QUICK["steps"]
    assert r["loss_max_abs_diff"] < 1e-6
    assert r["loss_fnn"][-1] < r["loss_fnn"][0]
    np.testing.assert_allclose(r["correct_class_probability"]["fnn"],
                               r["correct_class_probability"]["numpy"], atol=1e-6)
    assert {"fnn_seconds", "numpy_seconds", "fnn_compile_seconds"} <= set(r), "both are timed"


@pytest.mark.slow
@pytest.mark.quick_runs("logic_gates")
def test_logic_gates(quick_run):
    r = _run("logic_gates", quick_run)
    for gate in ("AND", "OR"):
        assert r["fixed_theta"][gate]["correct"]
        assert r["perceptron_rule"][gate]["converged_epoch"] is not None
        assert r["perceptron_rule"][gate]["best_linear_accuracy"] == 1.0
    assert r["fixed_theta"]["AND"]["outputs"][3] > 0.9999 and r["fixed_theta"]["AND"]["outputs"][1] < 1e-4
    assert r["perceptron_rule"]["XOR"]["converged_epoch"] is None
    assert min(r["perceptron_rule"]["XOR"]["errors_per_epoch"]) >= 1
    assert r["perceptron_rule"]["XOR"]["best_linear_accuracy"] == 0.75
    assert r["xor_network"]["accuracy"] == 1.0


def test_unknown_experiment_and_config_key_are_clear_errors(tmp_path, capsys):
    with pytest.raises(ValueError, match=r"unknown experiment 'quadrnt'; did you mean 'quadrant'\?"):
        experiments.load("quadrnt")
    with pytest.raises(ValueError, match=r"quadrant: config key must be one of .*, got 'stesp'; "
                                         r"did you mean 'steps'\?"):
        experiments.config_for("quadrant", overrides={"stesp": 3})
    assert cli.main(["run", "quadrnt", "--out", str(tmp_path)]) == 2
    assert "did you mean 'quadrant'" in capsys.readouterr().err


def test_overrides_take_the_form_of_the_config_defaults():
    config = experiments.config_for("optimizers", quick=True, overrides={
        "condition": 5, "steps": {"mlp": 7}, "lr_grid": (1, 0.5), "seed": 0})
    assert config["condition"] == 5.0 and isinstance(config["condition"], float)
    quick_steps = experiments.load("optimizers").QUICK["steps"]
    assert config["steps"] == {**quick_steps, "mlp": 7}          # a dict merges onto the default
    assert config["lr_grid"] == [1.0, 0.5] and all(isinstance(v, float) for v in config["lr_grid"])
    sizes = experiments.config_for("batch_size", overrides={"batch_sizes": [None, 8]})
    assert sizes["batch_sizes"] == [None, 8]                     # None where the default has one


def test_cli_list_and_info(capsys):
    assert cli.main(["list"]) == 0
    out = capsys.readouterr().out
    for name in experiments.DEFAULT_SUITE:
        assert name in out
    assert cli.main(["info"]) == 0
    assert "jax" in capsys.readouterr().out


def test_cli_run_with_overrides_writes_results(tmp_path, capsys):
    assert cli.main(["run", "backprop_example", "--out", str(tmp_path), "--set",
                     "learning_rate=1.0"]) == 0
    written = json.loads((tmp_path / "backprop_example" / "results.json").read_text())
    assert written["config"]["learning_rate"] == 1.0
    assert written["updated"]["w5"] == pytest.approx(0.4 - 1.0 * written["grads"]["w5"])


@pytest.mark.slow
@pytest.mark.quick_runs("optimizers")
def test_optimizers_experiment_draws_its_paths_curves_and_learning_rate_bands(quick_run):
    # fnn = optax step by step is tests/test_optim_equivalence.py's; here only the experiment
    r = _run("optimizers", quick_run)
    assert sorted(r["figures"]) == ["lr_sensitivity.png", "mlp_loss.png", "paths.png"]
    for problem in ("quadratic", "rosenbrock", "mlp"):
        assert set(r[problem]) == {"sgd", "momentum", "nesterov", "adagrad", "rmsprop", "adam", "adamw"}
    mlp = r["mlp"]["adam"]
    assert mlp["final_loss_fnn"] < mlp["loss_fnn"][0]
    # plain SGD oscillates across the quadratic's narrow valley: y changes sign step after step
    y = np.asarray(r["quadratic"]["sgd"]["path"])[:10, 1]
    assert np.all(np.sign(y[1:]) == -np.sign(y[:-1]))

    # learning-rate curves: optimizers x rates x seeds in one fnn.sweep
    sens, cfg = r["lr_sensitivity"], r["config"]
    assert set(sens["optimizers"]) == set(cfg["lr_optimizers"]) >= {"sgd", "momentum", "adam"}
    assert sens["runs"] == len(cfg["lr_optimizers"]) * len(cfg["lr_grid"]) * cfg["lr_seeds"]
    for t in sens["optimizers"].values():
        rows = list(t["by_learning_rate"].values())
        assert [row["learning_rate"] for row in rows] == cfg["lr_grid"]
        for row in rows:
            for band in (row["train_loss"], row["test_accuracy"]):
                assert len(band["values"]) == cfg["lr_seeds"]
                if band["median"] is not None:
                    assert band["min"] <= band["median"] <= band["max"]
        assert t["best_learning_rate"] in cfg["lr_grid"]
        assert rows[0]["train_loss"]["median"] > t["best_median_train_loss"], "smallest rate: slow"
    assert sens["optimizers"]["adam"]["best_median_test_accuracy"] > 0.85
    # a run of the sweep (its optimizer picked by one_of's switch) is the plain fit of that run
    name, lr, j = "momentum", 0.1, 1
    net = fnn.MLP([cfg["hidden"], 10])
    digits = load_digits()
    fitted = fnn.fit(fnn.supervised(net), net.init(jax.random.key(sens["seeds"][j]), (64,))[0],
                     optimizers.lr_factory(name)(lr), (digits.x_train, digits.y_train),
                     seed=sens["seeds"][j], epochs=cfg["lr_epochs"],
                     batch_size=cfg["lr_batch_size"], progress=False)
    loss = float(fnn.losses.softmax_cross_entropy(net(fitted.params, digits.x_train),
                                                  digits.y_train))
    swept = sens["optimizers"][name]["by_learning_rate"][f"{lr:g}"]["train_loss"]["values"][j]
    assert swept == pytest.approx(loss, rel=1e-4)


def test_cli_persistent_compile_cache_is_written_and_can_be_turned_off(tmp_path):
    import subprocess
    import sys
    cache, off = tmp_path / "cache", tmp_path / "off"
    command = ["run", "backprop_example", "--out", str(tmp_path / "runs")]
    run = lambda *argv: subprocess.run([sys.executable, "-m", "fnn.app.cli", *argv],
                                       capture_output=True, text=True, timeout=300)
    assert run("--cache-dir", str(cache), *command).returncode == 0
    assert any(cache.iterdir()), "compiled executables are cached"
    # the global options work after the subcommand too (`info` is enough: the folder of a
    # cache that is on is made before anything compiles, by fnn.train.use_persistent_cache)
    assert run("info", "--cache-dir", str(off), "--no-compile-cache").returncode == 0
    assert not off.exists()


def test_backprop_figure_labels_both_bar_charts():
    fig = backprop_example.draw(backprop_example.run(backprop_example.CONFIG))
    assert [ax.get_ylabel() for ax in fig.axes] == ["dE_total / dparam",
                                                    "|jax.grad - hand| (1e-20 = equal)"]
