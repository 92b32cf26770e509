"""The recurrent experiments' --quick configs run end to end and write their results and figures."""
import numpy as np
import pytest

import experiments

pytestmark = pytest.mark.slow


def _run(name, quick_run):
    written, folder = quick_run(name)
    assert written["meta"]["experiment"] == name and written["meta"]["quick"]
    assert written["figures"]
    for figure in written["figures"]:
        png = (folder / figure).read_bytes()
        assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000
    assert isinstance(written["summary"], str)
    return written


@pytest.mark.quick_runs("memory_length")
def test_memory_length(quick_run):
    r = _run("memory_length", quick_run)
    quick = experiments.config_for("memory_length", quick=True)
    assert r["claim"].startswith("seed 000") and isinstance(r["supported"], bool)
    assert r["baseline_mse"] == pytest.approx(1 / 6)
    assert set(r["results"]) == set(quick["cells"])
    for kind, rows in r["results"].items():
        assert set(rows) == {str(t) for t in quick["lengths"]}
        for t, row in rows.items():
            assert 0 <= row["test_mse"] < 1.0
            assert row["input_grad_norm_first"] >= 0 and row["input_grad_norm_last"] > 0
            assert len(r["input_grad_norms"][kind][t]) == int(t)
    # supported is computed from the numbers, never asserted
    ev = r["evidence"]
    assert r["supported"] == (bool(ev["rnn_fails_at_100"]) and bool(ev["lstm_solves_300"]))
    assert ev["rnn_test_mse_at_100"] is None  # the quick config has no T = 100


@pytest.mark.quick_runs("esn_forecast")
def test_esn_forecast(quick_run):
    r = _run("esn_forecast", quick_run)
    for model in ("esn", "lstm"):
        for key in ("one_step_nrmse", "nrmse_84", "free_run_nrmse"):
            assert np.isfinite(r[model][key]) and r[model][key] > 0
    assert r["esn"]["one_step_nrmse"] < 0.05  # even 100 units predict one step well
    quick = experiments.config_for("esn_forecast", quick=True)
    assert len(r["plot"]["esn_free"]) == quick["horizon"] == 84


@pytest.mark.quick_runs("mnist1d_gru")
def test_mnist1d_gru(quick_run):
    r = _run("mnist1d_gru", quick_run)
    assert r["published"] == 0.91
    assert r["params"] == 2 * (1 * 18 + 6 * 18 + 18 + 6) + 480 * 10 + 10
    assert 0.1 < r["test_accuracy"] <= 1.0  # one epoch: better than chance
    assert np.asarray(r["confusion"]).sum() == 1000
