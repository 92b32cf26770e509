"""Overrides of an experiment's CONFIG, checked against the default they replace.

A value must have the default's form, so that a typo fails before any time is spent and
names the key::

    int        a count: an int >= 1 (>= 0 when the default is 0); a seed (``seed``,
               ``*_seed``): an int >= 0
    float      a finite number (an int is taken as a float)
    str        a string
    list       a list (or tuple) whose items have the form of the default's items
               (None only where the default holds a None)
    dict       a dict with some of the default's keys, each checked; merged onto the default
    None       anything

Errors are ``ValueError`` in fnn's one message shape, e.g.
``quadrant: steps must be a positive int, got -5``.
"""
from __future__ import annotations

from fnn.validation import is_int, is_number, nonnegative_int, number, one_of, positive_int

__all__ = ["conform"]


def conform(who: str, key: str, value, default):
    """``value`` in the form of ``default`` (see the module docstring), or a ``ValueError``
    naming ``who`` (the experiment) and ``key``."""
    if default is None:
        return value
    if isinstance(default, bool):
        if not isinstance(value, bool):
            raise ValueError(f"{who}: {key} must be True or False, got {value!r}")
        return value
    if is_int(default):
        if key == "seed" or key.endswith("_seed") or default == 0:
            return nonnegative_int(who, key, value)
        return positive_int(who, key, value)
    if is_number(default):
        return number(who, key, value)
    if isinstance(default, str):
        if not isinstance(value, str):
            raise ValueError(f"{who}: {key} must be a string, got {value!r}")
        return value
    if isinstance(default, (list, tuple)):
        return _conform_list(who, key, value, list(default))
    if isinstance(default, dict):
        return _conform_dict(who, key, value, default)
    return value


def _item_template(default: list):
    """The value each item of a list override is checked against: the smallest int of an
    int list (so a 0 there allows 0), a float if any item is a float, else the first item."""
    items = [d for d in default if d is not None]
    if not items:
        return None
    if any(isinstance(d, float) for d in items):
        return 0.5
    if all(is_int(d) for d in items):
        return min(items)
    return items[0]


def _conform_list(who: str, key: str, value, default: list) -> list:
    if not isinstance(value, (list, tuple)):
        raise ValueError(f"{who}: {key} must be a list like {default!r}, got {value!r}")
    template = _item_template(default)
    return [item if item is None and (None in default or template is None)
            else conform(who, f"{key}[{i}]", item, template) for i, item in enumerate(value)]


def _conform_dict(who: str, key: str, value, default: dict) -> dict:
    if not isinstance(value, dict):
        raise ValueError(f"{who}: {key} must be a dict with keys among {list(default)}, "
                         f"got {value!r}")
    for k in value:
        one_of(who, f"a key of {key}", k, default)
    return {**default, **{k: conform(who, f"{key}.{k}", v, default[k]) for k, v in value.items()}}
