"""Lookup-by-name helpers shared by the registries (activations, initialisers, experiments)."""
from __future__ import annotations

import difflib
from typing import Iterable


def did_you_mean(name, choices: Iterable[str]) -> str:
    """``"; did you mean 'relu'?"`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(str(name), list(choices), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""
