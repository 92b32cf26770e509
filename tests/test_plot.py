"""Figures render headless to real PNGs."""
import numpy as np
import pytest

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


def _labels(fig, ax, path, axis="y"):
    """{tick position: label} of the labelled ticks (major and minor) in ``ax``'s view, as
    drawn when ``fig`` is saved to ``path``."""
    plot.save(fig, path)
    target = getattr(ax, f"{axis}axis")
    low, high = sorted(target.get_view_interval())
    return {t.get_loc(): t.label1.get_text()
            for t in target.get_major_ticks() + target.get_minor_ticks()
            if low <= t.get_loc() <= high and t.label1.get_text()}


def test_log_axes_label_narrow_ranges_in_plain_decimals_and_wide_ones_in_powers(tmp_path):
    fig, (narrow, wide) = plot.figure(2)
    narrow.plot([1, 2, 3], [0.74, 0.78, 0.83])
    wide.plot([1, 2, 3], [1e-5, 1e-3, 1.0])
    plot.decorate(narrow, logy=True)
    plot.decorate(wide, logy=True)
    labels = _labels(fig, narrow, tmp_path / "f.png")
    assert len(labels) >= 3, labels
    for loc, text in labels.items():          # '0.76', never '7.6\times10^{-1}'
        assert float(text) == pytest.approx(loc, rel=1e-3), labels
    assert "$\\mathdefault{10^{-3}}$" in _labels(fig, wide, tmp_path / "f.png").values()


def test_loss_curves_tick_epochs_at_integers_and_log_scale_checks_its_axis(tmp_path):
    fig, ax = plot.figure(1)
    plot.loss_curves(ax, {"train": [1.0, 0.5]}, xlabel="epoch")   # a 2-epoch quick run
    assert set(_labels(fig, ax, tmp_path / "f.png", "x").values()) == {"1", "2"}
    with pytest.raises(ValueError, match=r"log_scale: axis must be 'x' or 'y', got 'z'"):
        plot.log_scale(ax, "z")
