"""The house's shape (DESIGN.md, #23's acceptance), checked by walking the source: the library
(``fnn/`` outside ``fnn/app/``) imports nothing of the application or the experiments, module
imports form no cycle, no import points up the dependency direction, and no checkpoint or
layer module is over 600 lines."""
import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[1]
FNN = ROOT / "fnn"

# (importer prefix, imported prefix): arrows that point up DESIGN.md's dependency direction
UPWARD = [
    ("fnn.validation", "fnn."), ("fnn._names", "fnn."),
    ("fnn.core", "fnn.layers"), ("fnn.core", "fnn.models"), ("fnn.core", "fnn.train"),
    ("fnn.core", "fnn.optim"), ("fnn.core", "fnn.checkpoint"), ("fnn.core", "fnn.sweeps"),
    ("fnn.layers", "fnn.models"), ("fnn.layers", "fnn.train"), ("fnn.layers", "fnn.optim"),
    ("fnn.layers", "fnn.interop"), ("fnn.layers", "fnn.sweeps"),
    ("fnn.models", "fnn.train"), ("fnn.models", "fnn.sweeps"),
    ("fnn.train", "fnn.models"), ("fnn.train", "fnn.sweeps"),
    ("fnn.train", "fnn.data"),   # fnn.data.epochs uses the engine's shuffle: data sits on train
    ("fnn.checkpoint.encoding", "fnn.checkpoint."), ("fnn.checkpoint.pieces", "fnn.checkpoint.saveload"),
    ("fnn.checkpoint.pieces", "fnn.checkpoint.manager"),
    ("fnn.checkpoint.saveload", "fnn.checkpoint.manager"),
]
OPTIM_MAY_USE = ("fnn.optim", "fnn.validation", "fnn._names")   # optim: nothing else of fnn
# Known upward arrows, each with the work that removes it.
KNOWN: dict = {}   # (importer, target) exceptions to the direction: none


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports(path: Path, *, top_level_only: bool):
    """The fnn/experiments modules ``path`` imports (absolute names)."""
    tree = ast.parse(path.read_text(), filename=str(path))
    nodes = tree.body if top_level_only else ast.walk(tree)
    found = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return {m for m in found if m.split(".")[0] in ("fnn", "experiments")}


LIBRARY = sorted(p for p in FNN.rglob("*.py") if "app" not in p.relative_to(FNN).parts[:1])
MODULES = {module_name(p) for p in FNN.rglob("*.py")}


def real(name: str) -> str:
    """``fnn.layers.Dense`` -> ``fnn.layers`` (the module an imported name lives in)."""
    while name not in MODULES and "." in name:
        name = name.rsplit(".", 1)[0]
    return name


def test_the_library_imports_nothing_of_the_application_or_the_experiments():
    offenders = [(module_name(p), m) for p in LIBRARY for m in imports(p, top_level_only=False)
                 if m.startswith(("fnn.app", "experiments"))]
    assert not offenders


def test_no_import_points_up_the_dependency_direction():
    found = []
    for path in LIBRARY:
        me = module_name(path)
        for target in {real(m) for m in imports(path, top_level_only=False)} - {me}:
            up = [(a, b) for a, b in UPWARD if me.startswith(a) and target.startswith(b)
                  and not (a in ("fnn.validation", "fnn._names") and target in (
                      "fnn._names", "fnn.validation"))]
            if me.startswith("fnn.optim") and not target.startswith(OPTIM_MAY_USE):
                up.append(("fnn.optim", target))
            if up and not any(me.startswith(a) and target.startswith(b) for a, b in KNOWN):
                found.append((me, target))
    assert not found, f"upward imports: {found}"


def test_module_imports_form_no_cycle():
    graph = {module_name(p): {real(m) for m in imports(p, top_level_only=True)}
             for p in FNN.rglob("*.py")}
    for name, targets in graph.items():   # a package's __init__ importing its own children
        graph[name] = {t for t in targets if t != name and not t.startswith(name + ".")}
    state, stack = {}, []

    def visit(node):
        state[node] = "open"
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                raise AssertionError(f"import cycle: {' -> '.join(stack[stack.index(nxt):] + [nxt])}")
            if nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = "done"

    for node in sorted(graph):
        if node not in state:
            visit(node)


@pytest.mark.parametrize("folder", ["checkpoint", "layers"])
def test_no_checkpoint_or_layer_module_is_over_600_lines(folder):
    sizes = {p.name: len(p.read_text().splitlines()) for p in (FNN / folder).glob("*.py")}
    assert sizes and max(sizes.values()) <= 600, sizes


def test_the_walk_sees_the_application_and_the_checkpoint_layers():
    assert {"fnn.app.cli", "fnn.app.report", "fnn.app.compare", "fnn.app.claims",
            "fnn.checkpoint.encoding", "fnn.checkpoint.pieces", "fnn.checkpoint.saveload",
            "fnn.checkpoint.manager", "fnn.optim.registry"} <= MODULES
    assert "experiments" in {m.split(".")[0] for m in imports(FNN / "app" / "cli.py",
                                                              top_level_only=True)}


@pytest.mark.parametrize("old, new", [("fnn.cli", "fnn.app.cli"), ("fnn.report", "fnn.app.report"),
                                      ("fnn.layers.reservoir", "fnn.models.reservoir"),
                                      ("fnn.sweep", "fnn.sweeps")])
def test_a_moved_module_names_its_new_place(old, new):
    import importlib

    import fnn  # noqa: F401  (installs the finder for the moved names)
    with pytest.raises(ModuleNotFoundError, match=rf"^{old} moved to {new}: import {new}"):
        importlib.import_module(old)
    importlib.import_module(new)


def test_the_sweep_function_does_not_shadow_its_module():
    import importlib

    import fnn
    sweeps = importlib.import_module("fnn.sweeps")
    assert callable(fnn.sweep) and fnn.sweep is sweeps.sweep
    assert fnn.sweeps is sweeps          # the module is reachable under its own name


def test_an_unknown_name_of_fnn_models_is_an_attribute_error_naming_it():
    import fnn.models
    with pytest.raises(AttributeError, match="module 'fnn.models' has no attribute 'nope'"):
        fnn.models.nope
