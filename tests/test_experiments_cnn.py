"""The convolution issue's experiments run end to end in their quick configs."""
import numpy as np
import pytest

import experiments


def _run(name, quick_run):
    record, folder = quick_run(name)
    assert record["figures"]
    for figure in record["figures"]:
        assert (folder / figure).read_bytes()[:4] == b"\x89PNG"
    return record


@pytest.mark.slow
@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.quick_runs(n))
                                  for n in ("digits_mlp", "digits_cnn")])
def test_digits_classifiers(name, quick_run):
    r = _run(name, quick_run)
    confusion = np.asarray(r["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 360
    assert r["test_accuracy"] == pytest.approx(np.trace(confusion) / 360)
    assert r["test_accuracy"] > 0.5                       # far above chance after a few epochs
    assert len(r["curves"]["val_accuracy"]) == experiments.load(name).QUICK["epochs"]


@pytest.mark.slow
@pytest.mark.quick_runs("grouped_conv")
def test_grouped_conv_counts_match_the_notes(quick_run):
    r = _run("grouped_conv", quick_run)
    assert {g: row["weights"] for g, row in r["groups"].items()} == {"1": 18432, "2": 9216, "4": 4608}
    assert all(row["matches_notes"] and row["biases"] == 64 for row in r["groups"].values())
    assert [row["kernel_shape"] for row in r["groups"].values()] == [[3, 3, 32, 64], [3, 3, 16, 64],
                                                                    [3, 3, 8, 64]]


@pytest.mark.slow
@pytest.mark.quick_runs("resnet_vs_plain")
def test_resnet_vs_plain(quick_run):
    r = _run("resnet_vs_plain", quick_run)
    for name in ("resnet", "plain"):
        norms = r[name]["grad_norms"]
        assert len(norms) == r["depth"] - 1 and all(n > 0 for n in norms)
        assert 0.0 <= r[name]["test_accuracy"] <= 1.0


@pytest.mark.slow
@pytest.mark.quick_runs("mnist1d")
def test_mnist1d_lists_paper_and_fnn(quick_run):
    r = _run("mnist1d", quick_run)
    assert {k: v["published"] for k, v in r["models"].items()} == {
        "logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}
    assert all(v["fnn"] > 0.15 for v in r["models"].values())     # chance is 0.10
