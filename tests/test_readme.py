"""The README's Python snippets run as written, and its quick start matches CI."""
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()


def test_readme_python_blocks_run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)                       # the experiment writes runs/ here
    blocks = re.findall(r"```python\n(.*?)```", README, re.S)
    code = "\n".join(b for b in blocks if "layer.init(key" not in b)   # skip the protocol sketch
    namespace = {}
    exec(compile(code, "README.md", "exec"), namespace)
    assert namespace["result"].history["loss"][-1] < namespace["result"].history["loss"][0]
    assert f"{namespace['record']['E_total']:.9f}" == "0.298371109"
    assert (tmp_path / "runs" / "backprop_example" / "results.json").exists()


def test_ci_runs_the_readme_test_command():
    quick_start = re.search(r"## Quick start.*?```sh\n(.*?)```", README, re.S).group(1)
    commands = [line.split("#")[0].strip() for line in quick_start.strip().splitlines()]
    assert commands == ["make run", "make test"]
    assert "make test" in (ROOT / ".ci" / "run").read_text()


def test_readme_summary_table_is_what_summary_prints():
    import fnn
    net = fnn.serial(fnn.Dense(50), fnn.relu, fnn.Dense(4))
    table = str(fnn.summary(net, (2,)))
    assert table in README


def test_every_fnn_name_the_readme_uses_exists_where_it_says():
    import importlib.util

    import fnn
    missing = []
    for dotted in sorted(set(re.findall(r"\bfnn((?:\.[A-Za-z_]\w*)+)", README))):
        obj, parts = fnn, dotted.strip(".").split(".")
        for i, part in enumerate(parts):
            path = "fnn." + ".".join(parts[:i + 1])
            if hasattr(obj, part):
                obj = getattr(obj, part)
            elif importlib.util.find_spec(path) if isinstance(obj, type(fnn)) else False:
                obj = importlib.import_module(path)      # a module fnn does not import itself
            else:
                missing.append(path)
                break
    assert missing == []
    table = re.search(r"## Layers, models and data\n\n(.*?)\n\n", README, re.S).group(1)
    listed, absent = set(), []
    for row in table.splitlines()[2:]:
        kind, names = row.strip("|").split("|", 1)
        home = fnn.models if "fnn.models" in kind else fnn          # where the row says they are
        for name in re.findall(r"`([A-Z]\w*)(?:\([^`]*\))?`", names):    # constructors
            listed.add(name)
            if not hasattr(home, name):
                absent.append(f"{home.__name__}.{name}")
    assert absent == []
    assert {"LSTMCell", "GRUCell", "SimpleRNNCell", "Recurrent", "Bidirectional",
            "EchoStateNetwork", "LeNet5", "SimpleCNN", "ResNet"} <= listed
