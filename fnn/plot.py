"""Figures: loss curves, decision regions, bars. Uses matplotlib's object API (no pyplot, no
global backend state), so it works headless and never opens a window."""
from __future__ import annotations

from pathlib import Path
from typing import Callable, Mapping

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.ticker import LogFormatterSciNotation, MaxNLocator

__all__ = ["figure", "save", "decorate", "log_scale", "integer_ticks", "loss_curves",
           "decision_regions", "latent_scatter", "COLORS"]

COLORS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")


def figure(ncols: int = 1, nrows: int = 1, *, size: tuple[float, float] = (4.5, 3.6)):
    """A new ``Figure`` and its axes (a flat array when there is more than one)."""
    fig = Figure(figsize=(size[0] * ncols, size[1] * nrows), layout="constrained")
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    return fig, axes if axes.size > 1 else axes[0]


def save(fig: Figure, path: str | Path, dpi: int = 120) -> str:
    """Write ``fig`` as PNG to ``path`` (parents created) and return the path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=dpi)
    return str(path)


class _LogTicks(LogFormatterSciNotation):
    """Matplotlib's log-axis labels (10^-3, 2x10^-1), but plain decimals (0.76, 0.8) on an
    axis that spans less than two decades, where the scientific form reads badly."""

    def __call__(self, x, pos=None):
        label = super().__call__(x, pos)
        low, high = sorted(self.axis.get_view_interval())
        if not label or low <= 0 or high / low >= 100:
            return label
        return np.format_float_positional(x, precision=3, fractional=False, trim="-")


def log_scale(ax, axis: str = "y", base: float = 10) -> None:
    """A log scale on ``ax``'s ``axis`` ('x' or 'y') whose tick labels are plain decimals
    when the axis spans less than two decades (``_LogTicks``)."""
    if axis not in ("x", "y"):
        raise ValueError(f"log_scale: axis must be 'x' or 'y', got {axis!r}")
    getattr(ax, f"set_{axis}scale")("log", base=base)
    target = getattr(ax, f"{axis}axis")
    target.set_major_formatter(_LogTicks(base))
    target.set_minor_formatter(_LogTicks(base, labelOnlyBase=False))


def integer_ticks(ax, axis: str = "x") -> None:
    """Ticks only at integers on ``ax``'s ``axis`` (epochs, steps: a 2-epoch run gets 1 and 2,
    never 1.25)."""
    if axis not in ("x", "y"):
        raise ValueError(f"integer_ticks: axis must be 'x' or 'y', got {axis!r}")
    locator = MaxNLocator(nbins="auto", steps=[1, 2, 2.5, 5, 10], integer=True)  # as AutoLocator
    getattr(ax, f"{axis}axis").set_major_locator(locator)


def decorate(ax, *, xlabel: str | None = None, ylabel: str | None = None,
             title: str | None = None, logy: bool = False, legend_size: float | None = None,
             grid: bool = True, integer_x: bool = False) -> None:
    """Label an axis the way fnn's figures do: labels, title, optional log y (``log_scale``)
    and integer x ticks (``integer_ticks``, for epochs and steps), a light grid and a
    frameless legend (when any artist has a label)."""
    if logy:
        log_scale(ax, "y")
    if integer_x:
        integer_ticks(ax, "x")
    if xlabel:
        ax.set_xlabel(xlabel)
    if ylabel:
        ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title)
    if grid:
        ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(frameon=False, fontsize=legend_size)


def latent_scatter(fig, ax, z, labels, *, title: str | None = None) -> None:
    """A 2-D latent code z (N, 2) coloured by class label (N,) in 0..9, with a colour bar."""
    z, labels = np.asarray(z), np.asarray(labels)
    points = ax.scatter(z[:, 0], z[:, 1], c=labels, cmap="tab10", s=10, vmin=-0.5, vmax=9.5)
    fig.colorbar(points, ax=ax, ticks=range(10), label="digit")
    decorate(ax, xlabel="z1", ylabel="z2", title=title, grid=False)


def loss_curves(ax, curves: Mapping[str, np.ndarray], *, xlabel: str = "step",
                ylabel: str = "loss", logy: bool = True, title: str | None = None,
                styles: Mapping[str, dict] | None = None) -> None:
    """Plot each named curve against its index (step or epoch, 1, 2, ...: integer ticks)."""
    for i, (label, values) in enumerate(curves.items()):
        style = {"color": COLORS[i % len(COLORS)], "lw": 1.6, **((styles or {}).get(label, {}))}
        ax.plot(np.arange(1, len(values) + 1), np.asarray(values), label=label, **style)
    decorate(ax, xlabel=xlabel, ylabel=ylabel, title=title, logy=logy, integer_x=True)


def decision_regions(ax, predict: Callable[[np.ndarray], np.ndarray], x: np.ndarray,
                     y: np.ndarray, *, num_classes: int | None = None, resolution: int = 200,
                     margin: float = 0.5, title: str | None = None) -> None:
    """Colour the plane by ``predict(points (M, 2)) -> class ids (M,)`` and scatter ``x`` by ``y``."""
    x, y = np.asarray(x, np.float64), np.asarray(y)
    k = int(num_classes or (y.max() + 1))
    (x0, y0), (x1, y1) = x.min(0) - margin, x.max(0) + margin
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    grid = np.stack([gx.ravel(), gy.ravel()], axis=1)
    regions = np.asarray(predict(grid)).reshape(gx.shape)
    cmap = ListedColormap(COLORS[:k])
    ax.contourf(gx, gy, regions, levels=np.arange(k + 1) - 0.5, cmap=cmap, alpha=0.25)
    ax.scatter(x[:, 0], x[:, 1], c=y, cmap=cmap, vmin=-0.5, vmax=k - 0.5, edgecolors="k", s=40)
    ax.set_xlim(x0, x1)
    ax.set_ylim(y0, y1)
    if title:
        ax.set_title(title)
