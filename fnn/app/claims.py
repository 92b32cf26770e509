"""The claim/check schema: what an experiment that tests a claim of the notes returns, and
how the report reads it back. Defined once, here; the experiments write it with these
functions and :mod:`fnn.app.report` reads it with the field names below.

Besides its numbers, such an experiment returns::

    claim:     {"zh": the notes' sentence, "en": its translation, "source": where it is}
    claims:    optional {name: claim, ...} of further claims it tests
    checks:    [{"what", "value", "op", "threshold", "ok"}, ...]   each computed from the numbers
    criterion: "supported if every check holds: <what> <op> <threshold>; ..."
    supported: all(check["ok"])
    summary:   one line

:func:`verdict` builds the last four from a list of :func:`check` values, so ``supported`` is
never written by hand.
"""
from __future__ import annotations

import math
import operator

import numpy as np

__all__ = ["CLAIM_FIELDS", "CHECK_FIELDS", "VERDICT_FIELDS", "OPS", "claim", "check", "verdict",
           "describe_checks", "claims_of", "format_value"]

CLAIM_FIELDS = ("zh", "en", "source")
CHECK_FIELDS = ("what", "value", "op", "threshold", "ok")
VERDICT_FIELDS = ("claim", "claims", "criterion", "supported", "checks", "summary")
OPS = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge,
       "==": operator.eq}


def claim(zh: str, en: str, source: str) -> dict:
    """The sentence of the notes an experiment tests: Chinese original, translation, location."""
    return dict(zip(CLAIM_FIELDS, (zh, en, source)))


def check(what: str, value, op: str, threshold) -> dict:
    """One explicit test ``value op threshold`` (a non-finite or missing value never passes)."""
    if op not in OPS:
        raise ValueError(f"check: op must be one of {sorted(OPS)}, got {op!r}")
    if isinstance(value, (bool, np.bool_)):
        value = bool(value)
        ok = OPS[op](value, threshold)
    else:
        value = None if value is None else float(value)
        ok = value is not None and math.isfinite(value) and bool(OPS[op](value, threshold))
    return dict(zip(CHECK_FIELDS, (what, value, op, threshold, bool(ok))))


def format_value(v) -> str:
    """A check's value or threshold as text: bools lower-case, None as n/a, 3 digits."""
    if isinstance(v, bool) or v is None:
        return str(v).lower() if isinstance(v, bool) else "n/a"
    if isinstance(v, int):
        return str(v)
    return f"{v:.3g}"


def verdict(checks: list[dict]) -> dict:
    """``criterion`` (the checks as text), ``supported`` (all of them hold) and ``checks``."""
    criterion = "supported if every check holds: " + "; ".join(
        f"{c['what']} {c['op']} {format_value(c['threshold'])}" for c in checks)
    return {"criterion": criterion, "supported": all(c["ok"] for c in checks), "checks": checks}


def describe_checks(checks: list[dict]) -> str:
    """``what = value (ok|FAILS)`` for each check, for summaries."""
    return "; ".join(f"{c['what']} = {format_value(c['value'])}{'' if c['ok'] else ' (fails)'}"
                     for c in checks)


def claims_of(results: dict) -> list[dict]:
    """The claims a results dict tests: ``claim`` plus any other entries of ``claims``."""
    found = []
    main = results.get("claim")
    if main:
        found.append(main if isinstance(main, dict) else {"en": str(main)})
    extra = results.get("claims")
    if isinstance(extra, dict):
        for value in extra.values():
            if isinstance(value, dict) and value not in found:
                found.append(value)
    return found
