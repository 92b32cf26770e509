"""The generative experiments (autoencoder, vae, gan) run end to end with QUICK configs."""
import numpy as np
import pytest

import experiments
from experiments.autoencoder import roc_auc
from experiments.gan import quality


def test_roc_auc_by_ranking():
    assert roc_auc([0.1, 0.2], [0.3, 0.4]) == 1.0
    assert roc_auc([0.3, 0.4], [0.1, 0.2]) == 0.0
    assert roc_auc([1.0, 1.0], [1.0, 1.0]) == 0.5  # ties count half
    rng = np.random.RandomState(0)
    neg, pos = rng.randn(300), rng.randn(200) + 1.0
    pairs = np.mean(pos[:, None] > neg[None, :])  # P(positive scores above negative)
    np.testing.assert_allclose(roc_auc(neg, pos), pairs, rtol=1e-12)


def test_quality_entropy_and_confidence():
    eye = np.eye(10)
    q = quality(np.tile(eye, (5, 1)))
    assert q["confidence"] == 1.0 and abs(q["entropy"] - np.log(10)) < 1e-12
    collapsed = quality(np.tile(eye[3], (50, 1)))
    assert collapsed["entropy"] == 0.0 and collapsed["histogram"][3] == 50


def _run(name, quick_run):
    record, folder = quick_run(name)
    for figure in record["figures"]:
        assert (folder / figure).stat().st_size > 1000
    return record


@pytest.mark.slow
@pytest.mark.quick_runs("autoencoder")
def test_autoencoder_quick(quick_run):
    r = _run("autoencoder", quick_run)
    assert len(r["figures"]) == 3
    assert all(0 < m["test_mse"] < 0.2 for m in r["models"].values())
    assert len(r["latent_2d"]["z"][0]) == 2
    assert all(0.0 <= k["auc"] <= 1.0 for k in r["anomaly"]["kinds"].values())


@pytest.mark.slow
@pytest.mark.quick_runs("vae")
def test_vae_quick(quick_run):
    r = _run("vae", quick_run)
    assert len(r["test_elbo_per_epoch"]) == experiments.load("vae").QUICK["epochs"]
    assert r["test_elbo"] < 0 and len(r["figures"]) == 4


@pytest.mark.slow
@pytest.mark.quick_runs("gan")
def test_gan_quick(quick_run):
    r = _run("gan", quick_run)
    assert sorted(r["snapshots"], key=int) == ["0", "2"]
    q = r["sample_quality"]
    assert 0.0 < q["confidence"] <= 1.0 and 0.0 <= q["entropy"] <= q["max_entropy"]
    assert sum(q["histogram"]) == experiments.load("gan").QUICK["num_samples"]
