"""Datasets that ship with fnn's dependencies or are generated locally (never downloaded)."""
from fnn.data.digits import Split, load_digits

__all__ = ["Split", "load_digits"]
