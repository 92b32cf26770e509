"""The experiments that each test one claim of the notes: every quick run writes a claim (Chinese
and English), a criterion, checks, a computed verdict, a summary and its figures; and the
numbers behave as the notes say where the quick configs are large enough to show it."""
import math
import operator

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import experiments
import fnn
from fnn.app import claims
from experiments import _helpers, _lr_curves, depth_vs_width, learning_rate, regularization

CLAIM_EXPERIMENTS = ("activations", "initialization", "regularization", "preprocessing",
                     "depth_vs_width", "universal_approximation", "learning_rate", "batch_size",
                     "playground")
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge, "==": operator.eq}


def _run(name, quick_run):
    """``name``'s QUICK run; check the claim protocol; return the written results."""
    r, folder = quick_run(name)
    assert r["meta"]["experiment"] == name and r["meta"]["quick"]
    claim = r["claim"]
    assert claim["zh"] and claim["en"] and claim["source"].startswith("seed 00")
    assert any("\u4e00" <= ch <= "\u9fff" for ch in claim["zh"]), "the Chinese original is quoted"
    assert isinstance(r["summary"], str) and r["summary"] and "\n" not in r["summary"]
    assert r["criterion"].startswith("supported if every check holds")
    assert r["checks"], "at least one explicit check"
    for c in r["checks"]:
        assert c["what"] in r["criterion"]
        value = c["value"]
        finite = value is not None and not (isinstance(value, float) and not math.isfinite(value))
        expected = finite and OPS[c["op"]](value, c["threshold"])
        assert c["ok"] == expected, f"check recomputed from its numbers: {c}"
    assert r["supported"] is all(c["ok"] for c in r["checks"])
    assert r["figures"]
    for figure in r["figures"]:
        png = (folder / figure).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    return r


def test_every_claim_experiment_is_listed_with_quick_and_full_configs():
    assert set(CLAIM_EXPERIMENTS) <= set(experiments.names())
    for name in CLAIM_EXPERIMENTS:
        module = experiments.load(name)
        assert module.DESCRIPTION and set(module.QUICK) <= set(module.CONFIG)


# ----------------------------------------------------------------------------- helpers

def test_verdict_is_computed_from_the_checks():
    good = claims.check("a", 0.5, "<", 1.0)
    bad = claims.check("b", 3, ">=", 5)
    assert good["ok"] and not bad["ok"]
    assert not claims.check("nan never passes", float("nan"), "<", 1.0)["ok"]
    assert not claims.check("missing never passes", None, ">", 0.0)["ok"]
    assert claims.check("bools compare", True, "==", True)["ok"]
    v = claims.verdict([good, bad])
    assert v["supported"] is False and "a < 1" in v["criterion"] and "b >= 5" in v["criterion"]
    assert claims.verdict([good])["supported"] is True
    with pytest.raises(ValueError, match="op must be one of"):
        claims.check("x", 1.0, "=>", 0.0)


def test_random_shift_moves_each_image_by_at_most_one_pixel_and_is_off_in_evaluation():
    layer = regularization.RandomShift(1)
    x = jnp.asarray(np.random.default_rng(0).uniform(0.1, 1.0, (16, 64)), jnp.float32)
    assert layer.apply({}, {}, x)[0] is x
    y = np.asarray(layer.apply({}, {}, x, key=jax.random.key(0), train=True)[0]).reshape(16, 8, 8)
    images = np.pad(np.asarray(x).reshape(16, 8, 8), ((0, 0), (1, 1), (1, 1)))
    shifts = set()
    for i in range(16):
        match = [(a, b) for a in range(3) for b in range(3)
                 if np.array_equal(images[i, a:a + 8, b:b + 8], y[i])]
        assert match, "every output is a one-pixel (or no) shift of its input, zero-filled"
        shifts.add(match[0])
    assert len(shifts) > 1, "the shifts are random"
    with pytest.raises(ValueError, match="needs a key"):
        layer.apply({}, {}, x, train=True)


def test_learning_rate_kinds_and_nonfinite_losses():
    config = learning_rate.CONFIG
    assert learning_rate.classify([1.0, np.nan, np.nan], 1.0, config) == "diverged"
    assert learning_rate.classify([1.0, 2.0, 3.0], 1.0, config) == "diverged"
    assert learning_rate.classify([1.0, 0.99, 0.98], 1.0, config) == "slow"
    assert learning_rate.classify([1.0, 0.5, 0.6, 0.3, 0.4, 0.2], 1.0, config) == "oscillating"
    assert learning_rate.classify([1.0, 0.5, 0.3, 0.1], 1.0, config) == "good"
    assert _helpers.finite_or_none([1.0, np.inf, np.nan]) == [1.0, None, None]


def test_lr_band_counts_nonfinite_runs_and_never_averages_them():
    lrs, seeds = _lr_curves.grid([0.1, 1.0, 10.0], 3, first_seed=4)
    assert lrs.tolist() == pytest.approx([0.1] * 3 + [1.0] * 3 + [10.0] * 3)
    assert seeds.tolist() == [4, 5, 6] * 3 and seeds.dtype == np.int32
    finals = np.array([[0.5, 0.2, 0.3], [0.1, np.nan, 0.9], [np.inf, np.nan, np.nan]])
    rows = _lr_curves.band(finals, diverged=finals >= 0.8)
    assert rows[0] == {"median": 0.3, "min": 0.2, "max": 0.5, "nonfinite": 0, "diverged": 0,
                       "diverged_seeds": [], "values": [0.5, 0.2, 0.3]}
    assert (rows[1]["median"], rows[1]["min"], rows[1]["max"]) == (0.5, 0.1, 0.9)
    assert rows[1]["nonfinite"] == 1 and rows[1]["diverged_seeds"] == [1, 2]
    assert rows[2]["median"] is None and rows[2]["nonfinite"] == rows[2]["diverged"] == 3
    assert rows[2]["values"] == [None, None, None]
    assert _lr_curves.best(rows) == 0
    assert _lr_curves.best(rows[1:]) is None


def test_depth_vs_width_budgets():
    assert depth_vs_width.mlp_params(64, [100, 100]) == 64 * 100 + 100 + 100 * 100 + 100 + 1010
    for depth in (1, 2, 4):
        width = depth_vs_width.width_for(depth, 20000)
        assert abs(depth_vs_width.mlp_params(64, [width] * depth) - 20000) < 0.05 * 20000


# ----------------------------------------------------------------------------- end to end

@pytest.mark.slow
@pytest.mark.quick_runs("activations")
def test_activations(quick_run):
    r = _run("activations", quick_run)
    ratio = r["first_over_last_layer_gradient"]
    assert ratio["sigmoid"] < 1e-4 * ratio["relu"], "sigmoid's gradient vanishes towards the input"
    assert max(r["sigmoid_first_over_last_by_init"].values()) < 1e-4
    assert r["step_hidden_gradients_all_zero"]
    relu, leaky = r["dead_units"]["relu"]["large_lr"], r["dead_units"]["leaky_relu"]["large_lr"]
    assert relu["max_abs_grad_into_dead_units"] in (0.0, None), "dead ReLUs get no gradient"
    if leaky["max_abs_grad_into_dead_units"] is not None:
        assert leaky["max_abs_grad_into_dead_units"] > 0
    quick = experiments.load("activations").QUICK
    assert set(r["training_loss_per_epoch"]) == set(quick["activations"])


@pytest.mark.slow
@pytest.mark.quick_runs("initialization")
def test_initialization(quick_run):
    r = _run("initialization", quick_run)
    for act in ("tanh", "relu"):
        zeros = r["training"][act]["zeros"]["symmetry"]
        assert zeros["max_relative_spread"] == 0.0, "zeros: every hidden unit stays identical"
        constant = r["training"][act]["constant"]["symmetry"]
        assert constant["max_hidden_weight_change"] > 0 and constant["max_relative_spread"] <= 1e-6
        assert r["std_last_over_first_hidden"][act]["small"] < 1e-6, "0.001*randn collapses"
    relu = r["std_last_over_first_hidden"]["relu"]
    assert relu["he"] > relu["lecun"], "ReLU keeps its variance only with He's factor 2"
    assert r["final_loss"]["relu"]["he"] < r["final_loss"]["relu"]["zeros"]


@pytest.mark.slow
@pytest.mark.quick_runs("regularization")
def test_regularization(quick_run):
    r = _run("regularization", quick_run)
    l1, l2 = r["variants"]["l1"]["first_layer"], r["variants"]["l2"]["first_layer"]
    assert l1["near_zero_fraction"] > l2["near_zero_fraction"], "L1 drives more weights to 0"
    quick = experiments.load("regularization").QUICK
    assert r["variants"]["early_stopping"]["epochs_run"] <= quick["epochs"]
    for row in r["table"].values():
        assert 0.5 < row["test_accuracy"] <= 1.0
        assert row["train_accuracy"] >= row["test_accuracy"] - 0.1


@pytest.mark.slow
@pytest.mark.quick_runs("preprocessing")
def test_preprocessing(quick_run):
    r = _run("preprocessing", quick_run)
    kappa = r["condition_number"]
    assert kappa["raw"] > 1e3 > kappa["standardised"] > kappa["whitened"]
    assert kappa["whitened"] < 1.5
    steps = r["linear_steps_to_tolerance"]
    assert steps["whitened"] is not None
    assert steps["raw"] is None or steps["raw"] > steps["whitened"]
    assert r["mlp"]["raw"]["final_loss"] > r["mlp"]["whitened"]["final_loss"]


@pytest.mark.slow
@pytest.mark.quick_runs("depth_vs_width")
def test_depth_vs_width(quick_run):
    r = _run("depth_vs_width", quick_run)
    pair = experiments.load("depth_vs_width").QUICK["pair"]
    assert [row["params"] for row in r["pair"].values()] == [
        depth_vs_width.mlp_params(64, h) for h in pair]
    for row in r["pair"].values():
        assert 0.1 < row["test_accuracy"] <= 1.0 and len(row["test_accuracy_per_seed"]) == 2


@pytest.mark.slow
@pytest.mark.quick_runs("universal_approximation")
def test_universal_approximation(quick_run):
    r = _run("universal_approximation", quick_run)
    mse = r["test_mse"]
    for f in ("sin", "abs"):
        assert mse[f][-1] < 0.1 * mse[f][0], f"{f}: the error falls as the layer widens"
    assert r["fraction_of_variance_unexplained"]["rand"][-1] > 0.5, "noise is not fitted"


@pytest.mark.slow
@pytest.mark.quick_runs("learning_rate")
def test_learning_rate(quick_run):
    r = _run("learning_rate", quick_run)
    kinds = r["kinds"]["circle"]
    assert kinds["0.0001"] == "slow" and kinds["10"] == "diverged"
    assert "good" in kinds.values()
    # over seeds: one sweep of rates x seeds per set, each seed its own initialisation
    assert sorted(r["figures"]) == ["learning_rate.png", "learning_rate_seeds.png"]
    seeds, lrs, n_seeds = r["over_seeds"], r["config"]["learning_rates"], r["config"]["seeds"]
    assert seeds["runs_per_set"] == len(lrs) * n_seeds and len(seeds["seeds"]) == n_seeds
    for name, d in seeds["datasets"].items():
        rows = d["by_learning_rate"]
        assert list(rows) == [f"{lr:g}" for lr in lrs]
        for row in rows.values():
            finite = [v for v in row["values"] if v is not None]
            assert row["runs"] == len(row["values"]) == n_seeds
            assert row["nonfinite"] == n_seeds - len(finite) <= row["diverged"]
            if finite:
                assert row["min"] == min(finite) <= row["median"] <= max(finite) == row["max"]
        # seed 0 is the start of the one-initialisation analysis: the same run at the stable
        # rates (at the oscillating ones rounding differences grow, so only these are compared)
        single = r["datasets"][name]["by_learning_rate"]
        for k in ("0.0001", "0.01"):
            assert rows[k]["values"][0] == pytest.approx(single[k]["final_loss"], rel=1e-4)
        assert rows["10"]["diverged"] == n_seeds, "the largest rate diverges from every start"
    circle = seeds["datasets"]["circle"]
    by = circle["by_learning_rate"]
    assert by["0.0001"]["median"] > 10 * by[f"{circle['best_learning_rate']:g}"]["median"]


@pytest.mark.slow
@pytest.mark.quick_runs("batch_size")
def test_batch_size(quick_run):
    r = _run("batch_size", quick_run)
    noise = r["noise"]["batch 32"]
    assert noise["rising_steps"] > 0.3 > noise["rising_epochs"], "jumpy per step, smooth per epoch"
    equal = r["train_loss_at_equal_epochs"]
    assert equal["batch 32"] < equal["full batch"]
    assert set(r["seconds_per_epoch"]) == set(equal), "every batch size is timed"


@pytest.mark.slow
@pytest.mark.quick_runs("playground")
def test_playground(quick_run):
    r = _run("playground", quick_run)
    t = r["table"]
    assert t["circle"]["0"]["test_accuracy"] < 0.75 and t["xor"]["0"]["test_accuracy"] < 0.75
    assert t["gaussian"]["0"]["test_accuracy"] >= 0.95
    assert t["circle"]["2"]["test_accuracy"] >= 0.9 and t["moons"]["2"]["test_accuracy"] >= 0.9


def test_claims_of_lists_the_main_claim_then_the_other_distinct_ones():
    main, other = {"en": "A"}, {"en": "B"}
    results = {"claim": main, "claims": {"main": main, "other": other, "note": "text"}}
    assert claims.claims_of(results) == [main, other]
    assert claims.claims_of({"claim": "plain text"}) == [{"en": "plain text"}]


def test_the_trainer_refuses_data_of_another_size():
    from experiments._training import trainer
    net = fnn.serial(fnn.Dense(2))
    params, state = net.init(jax.random.key(0), (3,))
    train = trainer(fnn.supervised(net), fnn.optim.sgd, n=10, batch_size=None, epochs=1)
    data = (np.zeros((8, 3), np.float32), np.zeros(8, np.int32))
    with pytest.raises(ValueError, match="trainer: made for n=10 examples, the data have 8"):
        train(params, state, data, 0.1, jax.random.key(1))
