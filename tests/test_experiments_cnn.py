"""The convolution issue's experiments run end to end in their quick configs."""
import numpy as np
import pytest

import experiments


def _run(name, tmp_path):
    record = experiments.run_experiment(name, tmp_path, quick=True)
    for figure in record["figures"]:
        assert (tmp_path / name / figure).read_bytes()[:4] == b"\x89PNG"
    assert (tmp_path / name / "results.json").exists()
    return record


@pytest.mark.slow
@pytest.mark.parametrize("name", ["digits_mlp", "digits_cnn"])
def test_digits_classifiers(name, tmp_path):
    r = _run(name, tmp_path)
    confusion = np.asarray(r["confusion"])
    assert confusion.shape == (10, 10) and confusion.sum() == 360
    assert r["test_accuracy"] == pytest.approx(np.trace(confusion) / 360)
    assert r["test_accuracy"] > 0.5                       # far above chance after a few epochs
    assert len(r["curves"]["val_accuracy"]) == experiments.load(name).QUICK["epochs"]


@pytest.mark.slow
def test_grouped_conv_counts_match_the_notes(tmp_path):
    r = _run("grouped_conv", tmp_path)
    assert {g: row["weights"] for g, row in r["groups"].items()} == {"1": 18432, "2": 9216, "4": 4608}
    assert all(row["matches_notes"] and row["biases"] == 64 for row in r["groups"].values())
    assert [row["kernel_shape"] for row in r["groups"].values()] == [[3, 3, 32, 64], [3, 3, 16, 64],
                                                                    [3, 3, 8, 64]]


@pytest.mark.slow
def test_resnet_vs_plain(tmp_path):
    r = _run("resnet_vs_plain", tmp_path)
    for name in ("resnet", "plain"):
        norms = r[name]["grad_norms"]
        assert len(norms) == r["depth"] - 1 and all(n > 0 for n in norms)
        assert 0.0 <= r[name]["test_accuracy"] <= 1.0


@pytest.mark.slow
def test_mnist1d_lists_paper_and_fnn(tmp_path):
    r = _run("mnist1d", tmp_path)
    assert {k: v["published"] for k, v in r["models"].items()} == {
        "logistic": 0.32, "mlp": 0.68, "cnn": 0.94, "gru": 0.91}
    assert all(v["fnn"] > 0.15 for v in r["models"].values())     # chance is 0.10
