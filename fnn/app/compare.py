"""The optimizer-comparison workflow behind ``fnn compare-optimizers``: one problem, one start,
each named fnn optimizer (from the registry :data:`fnn.optim.OPTIMIZERS`) and, with
``reference="optax"``, optax's optimizer of the same name and arguments.

Writes ``OUT/compare.json`` (every step's loss; for each fnn/optax pair the max over
parameters of |fnn param - optax param| after every step), ``OUT/compare.png`` (the loss
curves) and ``OUT/results.json`` (a summary the report, ``fnn report``, shows beside the
experiments' runs).
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from fnn import validation
from fnn.optim import OPTIMIZERS
from fnn.optim import compare as cmp

__all__ = ["PROBLEMS", "parse_names", "run", "table"]

PROBLEMS = ("quadratic", "rosenbrock", "mlp")
WHO = "compare-optimizers"


def parse_names(text: str) -> list[str]:
    """``"sgd, adam"`` -> ``["sgd", "adam"]``, each a name of the registry (else ValueError)."""
    names = [n.strip() for n in str(text).split(",") if n.strip()]
    if not names:
        raise ValueError(f"{WHO}: --optimizers must name at least one optimizer of "
                         f"{', '.join(OPTIMIZERS)}, got {text!r}")
    for name in names:
        validation.one_of(WHO, "--optimizers", name, OPTIMIZERS)
    return names


def problem_for(name: str, seed: int = 0) -> cmp.Problem:
    """The problem ``name`` (one of :data:`PROBLEMS`); 'mlp' is the optimizers experiment's
    digits MLP (64 hidden units)."""
    validation.one_of(WHO, "--problem", name, PROBLEMS)
    if name == "mlp":
        from experiments.optimizers import mlp_problem
        return mlp_problem(64, seed)
    return {"quadratic": cmp.quadratic, "rosenbrock": cmp.rosenbrock}[name]()


def run(names: list[str], problem: str, *, learning_rate: float, steps: int,
        reference: str = "optax", out="runs/compare-optimizers") -> dict:
    """Train ``problem`` with each optimizer in ``names`` (and optax's twin when ``reference``
    is 'optax') for ``steps`` steps from the same start; write the files; return the record
    (the JSON of ``compare.json``, plus ``seconds_per_step``)."""
    import jax
    import optax

    learning_rate = validation.number(WHO, "--learning-rate", learning_rate, low=0,
                                      low_open=True)
    steps = validation.positive_int(WHO, "--steps", steps)
    validation.one_of(WHO, "--reference", reference, ("optax", "none"))
    optimizers, pairs = {}, []
    for name in names:
        optimizers[f"fnn {name}"] = OPTIMIZERS[name](learning_rate)
        if reference == "optax":
            optimizers[f"optax {name}"] = getattr(optax, name)(learning_rate)
            pairs.append((f"fnn {name}", f"optax {name}"))
    with jax.numpy_dtype_promotion("standard"):  # optax relies on standard promotion
        result = cmp.compare(optimizers, problem_for(problem), steps=steps, pairs=pairs)
    record = {"problem": problem, "learning_rate": learning_rate, "steps": steps,
              "losses": result.losses, "max_param_diff": result.max_param_diff,
              "seconds_per_step": result.seconds_per_step}
    _write(Path(out), record, pairs)
    return record


def _to_json(value):
    from experiments import to_json
    return to_json(value)


def _write(out: Path, record: dict, pairs: list) -> None:
    from fnn import plot

    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps(_to_json(record), indent=2) + "\n")
    fig, ax = plot.figure(1, size=(6.5, 4.2))
    plot.loss_curves(ax, record["losses"],
                     title=f"{record['problem']}, learning rate {record['learning_rate']}",
                     styles={k: {"ls": "--"} for k in record["losses"] if k.startswith("optax")})
    plot.save(fig, out / "compare.png")
    finals = {k: float(v[-1]) for k, v in record["losses"].items()}
    gaps = {f"{a} vs {b}": float(np.max(record["max_param_diff"][f"{a} vs {b}"]))
            for a, b in pairs}
    summary = (f"{record['problem']}, {record['steps']} steps at learning rate "
               f"{record['learning_rate']:g}: final loss "
               + ", ".join(f"{k} {v:.4g}" for k, v in finals.items())
               + (f"; max |fnn - optax| over params and steps "
                  + ", ".join(f"{k.split(' vs ')[0][4:]} {v:.1e}" for k, v in gaps.items())
                  if gaps else ""))
    results = {"summary": summary, "final_loss": finals, "max_param_diff_vs_optax": gaps,
               "figures": ["compare.png"],
               "meta": {"experiment": "compare-optimizers", "quick": False}}
    (out / "results.json").write_text(json.dumps(_to_json(results), indent=2) + "\n")


def table(record: dict) -> str:
    """The printed table: final loss, the fnn-vs-optax gap (on the fnn row; the optax row is
    the reference it is measured against) and microseconds per step."""
    pairs = {a: f"{a} vs {b}" for a, b in
             (k.split(" vs ") for k in record["max_param_diff"])}
    references = {k.split(" vs ")[1] for k in record["max_param_diff"]}
    lines = [f"{'optimizer':<18}{'final loss':>12}{'max |fnn-optax|':>17}{'us/step':>10}"]
    for name, losses in record["losses"].items():
        if name in pairs:
            gap = f"{np.max(record['max_param_diff'][pairs[name]]):.1e}"
        else:
            gap = "(reference)" if name in references else "-"
        lines.append(f"{name:<18}{float(losses[-1]):>12.4g}{gap:>17}"
                     f"{1e6 * record['seconds_per_step'][name]:>10.1f}")
    lines.append("max |fnn-optax|: the largest |fnn param - optax param| over all parameters "
                 "and steps (same start, same data)")
    return "\n".join(lines)
