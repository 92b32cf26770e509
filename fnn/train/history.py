"""A run's per-epoch metrics as they arrive from the compiled calls."""
from __future__ import annotations

import numpy as np

__all__ = ["History"]


class History:
    """``{metric: [per-call arrays of per-epoch values]}``, immutable: :meth:`extended` returns
    a new history, so ``fit`` can replace its record in one assignment (an interrupt sees the
    old record or the new one, never half of each)."""

    def __init__(self, parts: dict | None = None):
        self.parts = {k: list(v) for k, v in (parts or {}).items()}

    def extended(self, metrics: dict, epochs: int | None = None) -> "History":
        """This history plus the first ``epochs`` (default: all) values of each of ``metrics``
        (``{name: array[count]}``, on the host)."""
        parts = dict(self.parts)
        for k, v in metrics.items():
            parts[k] = [*parts.get(k, []), np.asarray(v)[:epochs]]
        return History(parts)

    def arrays(self) -> dict:
        """``{metric: np.ndarray[epochs]}``."""
        return {k: np.concatenate(v) if v else np.zeros(0, np.float32) for k, v in self.parts.items()}

    def last_row(self) -> dict:
        """The newest epoch's ``{metric: float}`` (with every step's metrics kept: the mean of
        its steps)."""
        return {k: float(np.mean(v[-1])) for k, v in self.arrays().items() if len(v)}

    def to_json(self) -> dict:
        return {k: {"dtype": v.dtype.name, "values": v.tolist()} for k, v in self.arrays().items()}

    @classmethod
    def from_json(cls, saved: dict) -> "History":
        return cls({k: [np.asarray(v["values"], dtype=np.dtype(v["dtype"]))]
                    for k, v in saved.items()})
