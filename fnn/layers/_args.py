"""Argument canonicalisation shared by the convolution and pooling layers.

One helper turns int-or-tuple sizes into tuples (``int_tuple``), one turns a padding spec into
explicit ``(lo, hi)`` pairs (``padding_arg``, ``explicit_padding``), and one computes the
sliding-window output size (``window_output``). Layers call them twice: at construction with
``n=None`` (validate what can be validated before the spatial rank is known) and at init/apply
with the spatial rank ``n`` (expand an int to ``n`` entries, check a tuple has ``n``).
"""
from __future__ import annotations

from jax import lax

from fnn.validation import is_int

__all__ = ["int_tuple", "padding_arg", "explicit_padding", "window_output"]


def int_tuple(name: str, what: str, value, n: int | None = None, *, minimum: int = 1):
    """``value`` (an int, or a tuple/list of ints, each >= ``minimum``) as ``n`` ints.

    An int is repeated ``n`` times; a sequence must have exactly ``n`` entries. With
    ``n=None`` the value is only validated: an int comes back as an int, a sequence as a tuple.
    Raises ``ValueError("{name}: {what} must be ...")`` naming what was given.
    """
    if is_int(value):
        if value < minimum:
            raise ValueError(f"{name}: {what} must be an int >= {minimum} or a tuple of them, "
                             f"got {value!r}")
        return int(value) if n is None else (int(value),) * n
    if not (isinstance(value, (tuple, list)) and value and all(is_int(v) for v in value)
            and all(v >= minimum for v in value)):
        raise ValueError(f"{name}: {what} must be an int >= {minimum} or a tuple of them, "
                         f"got {value!r}")
    value = tuple(int(v) for v in value)
    if n is not None and len(value) != n:
        raise ValueError(f"{name}: {what} {value} has {len(value)} entries but the input has "
                         f"{n} spatial dims")
    return value


def padding_arg(name: str, padding, n: int | None = None):
    """Canonical padding: ``'SAME'``, ``'VALID'`` or ``((lo, hi),) * n`` of ints >= 0.

    Accepts 'SAME'/'VALID' (any case), an int p (p on both sides of every spatial dim), a
    tuple of n ints (symmetric per dim), or n explicit ``(lo, hi)`` pairs. With ``n=None``
    only validates (ints and pair tuples come back unexpanded).
    """
    if isinstance(padding, str) and padding.upper() in ("SAME", "VALID"):
        return padding.upper()
    if is_int(padding) or (isinstance(padding, (tuple, list)) and padding
                           and all(is_int(p) for p in padding)):
        sizes = int_tuple(name, "padding", padding, n, minimum=0)
        return sizes if n is None else tuple((p, p) for p in sizes)
    if isinstance(padding, (tuple, list)) and padding and all(
            isinstance(p, (tuple, list)) for p in padding):
        if not all(len(p) == 2 and all(is_int(v) and v >= 0 for v in p) for p in padding):
            raise ValueError(f"{name}: explicit padding must be (lo, hi) pairs of ints >= 0, "
                             f"got {padding!r}")
        pairs = tuple((int(lo), int(hi)) for lo, hi in padding)
        if n is not None and len(pairs) != n:
            raise ValueError(f"{name}: padding {pairs} has {len(pairs)} (lo, hi) pairs but the "
                             f"input has {n} spatial dims")
        return pairs
    raise ValueError(f"{name}: padding must be 'SAME', 'VALID', an int, a tuple of ints "
                     f"or ((lo, hi), ...) pairs, got {padding!r}")


def explicit_padding(padding, in_sizes, window, strides) -> tuple[tuple[int, int], ...]:
    """(lo, hi) pairs for a canonical padding; 'SAME' is resolved as ``lax.padtype_to_pads``:
    total = max((ceil(in / s) - 1) s + window - in, 0), lo = total // 2, hi = total - lo."""
    if padding == "VALID":
        return ((0, 0),) * len(in_sizes)
    if padding == "SAME":
        return tuple(tuple(p) for p in lax.padtype_to_pads(in_sizes, window, strides, "SAME"))
    return padding


def window_output(name: str, in_sizes, window, strides, padding, what: str = "window"):
    """Output sizes of a window of (dilated) size ``window`` sliding with ``strides``:

        out = floor((in + lo + hi - window) / stride) + 1

    Returns ``(out_sizes, pads)``; raises if the padded input is smaller than the window.
    """
    pads = explicit_padding(padding, in_sizes, window, strides)
    out = tuple((i + lo + hi - w) // s + 1
                for i, w, s, (lo, hi) in zip(in_sizes, window, strides, pads))
    if any(o < 1 for o in out):
        raise ValueError(f"{name}: the {what} {tuple(window)} does not fit in the spatial input "
                         f"{tuple(in_sizes)} padded by {pads}")
    return out, pads
