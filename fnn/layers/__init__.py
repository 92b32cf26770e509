"""Layers with parameters or state: one kind per file."""
from fnn.layers.dense import Dense

__all__ = ["Dense"]
