"""Learning-rate curves over seeds (the ``learning_rate`` and ``optimizers`` experiments).

A grid of learning rates x seeds becomes the per-run arrays of one ``fnn.sweep`` (run ``i`` has
rate ``i // seeds`` and seed ``i % seeds``); :func:`band` turns the runs' final values, shaped
``(rates, seeds)``, into per-rate statistics that stay meaningful when runs diverge, and
:func:`draw` plots them as a median line with a min-max band.
"""
from __future__ import annotations

import numpy as np

from experiments._helpers import finite_or_none


def grid(learning_rates, n_seeds: int, first_seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``(learning_rate[N], seed[N])`` for ``fnn.sweep``, N = len(learning_rates) * n_seeds: run
    ``i`` has ``learning_rates[i // n_seeds]`` and seed ``first_seed + i % n_seeds``."""
    lrs = np.asarray(learning_rates, np.float32)
    if lrs.ndim != 1 or not lrs.size or not (isinstance(n_seeds, int) and n_seeds >= 1):
        raise ValueError(f"grid: need a non-empty list of learning rates and n_seeds >= 1, got "
                         f"{learning_rates!r} and {n_seeds!r}")
    seeds = first_seed + np.tile(np.arange(n_seeds, dtype=np.int32), lrs.size)
    return np.repeat(lrs, n_seeds), seeds


def band(values, diverged=None) -> list[dict]:
    """Per row (one learning rate) of ``values[rates, seeds]``: ``median``, ``min``, ``max``
    over the finite entries (None where there are none), ``nonfinite`` (how many are NaN/inf:
    counted, never averaged), ``diverged`` (how many ``diverged[rates, seeds]`` marks; the
    non-finite ones always count), ``diverged_seeds`` (their positions along the seed axis) and
    ``values`` (each seed's, None where non-finite)."""
    values = np.asarray(values, np.float64)
    finite = np.isfinite(values)
    diverged = ~finite if diverged is None else (np.asarray(diverged, bool) | ~finite)
    rows = []
    for v, ok, div in zip(values, finite, diverged):
        kept = v[ok]
        rows.append({"median": float(np.median(kept)) if kept.size else None,
                     "min": float(kept.min()) if kept.size else None,
                     "max": float(kept.max()) if kept.size else None,
                     "nonfinite": int(np.sum(~ok)), "diverged": int(np.sum(div)),
                     "diverged_seeds": [int(j) for j in np.flatnonzero(div)],
                     "values": finite_or_none(v)})
    return rows


def best(rows: list[dict], *, lowest: bool = True) -> int | None:
    """Index of the row with the lowest (``lowest``) or highest median among the rows where no
    run diverged; None if every row has a diverged run."""
    ok = [i for i, r in enumerate(rows) if r["diverged"] == 0 and r["median"] is not None]
    if not ok:
        return None
    pick = min if lowest else max
    return pick(ok, key=lambda i: rows[i]["median"])


def draw(ax, learning_rates, rows: list[dict], *, color, label: str, clip: float | None = None,
         points: bool = False, diverged_marker: bool = True, counts: bool = True) -> None:
    """A median line with a shaded min-max band over seeds against the learning rate; with
    ``points`` each seed's value as a dot; with ``diverged_marker`` each diverged run as a
    cross at its value (at ``clip`` when non-finite or above it) and, with ``counts``, the
    number of diverged runs per rate written above."""
    lrs = np.asarray(learning_rates, np.float64)
    have = np.array([r["median"] is not None for r in rows])
    top = np.inf if clip is None else clip
    med = np.array([min(r["median"], top) if r["median"] is not None else np.nan for r in rows])
    lo = np.array([min(r["min"], top) if r["min"] is not None else np.nan for r in rows])
    hi = np.array([min(r["max"], top) if r["max"] is not None else np.nan for r in rows])
    ax.plot(lrs[have], med[have], "-o", color=color, lw=1.6, ms=3.5, label=label)
    ax.fill_between(lrs, lo, hi, where=have, color=color, alpha=0.18, lw=0)
    if points:
        for lr, r in zip(lrs, rows):
            v = np.array([min(x, top) for x in r["values"] if x is not None])
            ax.plot(np.full(v.size, lr), v, ".", color=color, ms=3, alpha=0.6)
    if not diverged_marker:
        return
    for lr, r in zip(lrs, rows):
        if not r["diverged"]:
            continue
        ys = [top if r["values"][j] is None else min(r["values"][j], top)
              for j in r["diverged_seeds"]]
        ax.plot(np.full(len(ys), lr), ys, "x", color=color, ms=7 if counts else 5, mew=1.4)
        if counts:
            ax.annotate(f"{r['diverged']}/{len(r['values'])}", (lr, max(ys)), xytext=(0, 5),
                        textcoords="offset points", fontsize=7, color=color, ha="center")
