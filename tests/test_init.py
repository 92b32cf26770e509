"""The top-level package: re-exports only, with an __all__ that holds every public name, and
the subpackages the README uses importable as attributes of ``fnn``."""
import ast
import subprocess
import sys
from pathlib import Path

import fnn

ROOT = Path(__file__).resolve().parents[1]


def test_import_fnn_brings_its_subpackages():
    code = ("import fnn; print(fnn.data.load_digits.__name__, fnn.models.GAN.__name__, "
            "fnn.checkpoint.save.__name__, fnn.interop.from_torch.__name__)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                         check=True)
    assert out.stdout.split() == ["load_digits", "GAN", "save", "from_torch"]


def test_all_lists_existing_names_without_duplicates():
    assert len(set(fnn.__all__)) == len(fnn.__all__)
    assert [n for n in fnn.__all__ if not hasattr(fnn, n)] == []
    for name in ("NonFiniteError", "multi_step", "LeNet5", "SimpleCNN", "ResNet", "PlainNet",
                 "LSTMCell", "EchoStateNetwork", "composite", "check_params", "per_example"):
        assert name in fnn.__all__
    from fnn.train import NonFiniteError, multi_step
    assert fnn.NonFiniteError is NonFiniteError and fnn.multi_step is multi_step


def test_init_holds_only_imports():
    tree = ast.parse((ROOT / "fnn" / "__init__.py").read_text())
    body = tree.body[1:]                                   # after the docstring
    assigned = [t.id for node in body if isinstance(node, ast.Assign) for t in node.targets]
    assert assigned == ["__version__", "__all__"]
    assert all(isinstance(node, (ast.Import, ast.ImportFrom, ast.Assign)) for node in body)
