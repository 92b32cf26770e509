"""Figures render headless to real PNGs."""
import numpy as np

from fnn import plot


def test_loss_curves_and_decision_regions_write_pngs(tmp_path):
    fig, (a, b) = plot.figure(2)
    plot.loss_curves(a, {"one": np.exp(-np.arange(50) / 10), "two": np.exp(-np.arange(50) / 20)},
                     title="curves")
    x = np.array([[0.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    plot.decision_regions(b, lambda g: (g[:, 0] > 0.5).astype(int), x, np.array([0, 1, 0]),
                          resolution=50)
    assert [line.get_label() for line in a.get_lines()] == ["one", "two"]
    assert a.get_yscale() == "log"
    path = plot.save(fig, tmp_path / "sub" / "f.png")
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_decorate_and_latent_scatter(tmp_path):
    fig, (a, b) = plot.figure(2)
    a.plot([1, 2, 3], [1, 10, 100], label="curve")
    plot.decorate(a, xlabel="step", ylabel="loss", title="t", logy=True, legend_size=7)
    assert (a.get_xlabel(), a.get_ylabel(), a.get_title(), a.get_yscale()) == ("step", "loss", "t", "log")
    assert a.get_legend() is not None
    plot.latent_scatter(fig, b, np.random.RandomState(0).randn(20, 2), np.arange(20) % 10, title="z")
    assert (b.get_xlabel(), b.get_ylabel()) == ("z1", "z2") and len(fig.axes) == 3   # + colour bar
    assert plot.save(fig, tmp_path / "f.png").endswith("f.png")
