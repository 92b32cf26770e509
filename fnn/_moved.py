"""Modules that moved (#23): importing the old name fails with a message naming the new one,
instead of Python's bare "No module named ...". Installed when ``fnn/__init__.py`` imports this module."""
from __future__ import annotations

import importlib.abc
import sys

MOVED = {"fnn.cli": "fnn.app.cli", "fnn.report": "fnn.app.report",
         "fnn.layers.reservoir": "fnn.models.reservoir",
         # the module of fnn.sweep, so that the function no longer shadows it (#23)
         "fnn.sweep": "fnn.sweeps"}


class MovedModuleFinder(importlib.abc.MetaPathFinder):
    """A meta-path finder that knows only the names in :data:`MOVED`."""

    def find_spec(self, name, path=None, target=None):
        if name in MOVED:
            raise ModuleNotFoundError(f"{name} moved to {MOVED[name]}: import {MOVED[name]}"
                                      + (" (the console script `fnn` runs it)"
                                         if name == "fnn.cli" else ""), name=name)
        return None


def install() -> None:
    """Put the finder on ``sys.meta_path`` (once)."""
    if not any(isinstance(f, MovedModuleFinder) for f in sys.meta_path):
        sys.meta_path.insert(0, MovedModuleFinder())  # before editable-install finders


install()  # old module paths (fnn.cli, fnn.report, ...) name their new place
