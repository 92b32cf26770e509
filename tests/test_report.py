"""The HTML report: every experiment under the output folder appears with its claim, verdict,
summary and figures (embedded as data URIs); `fnn report` and `fnn run` write it."""
import base64
import json
import re

import pytest

import experiments
from fnn import cli, plot, report


def _png(path):
    fig, ax = plot.figure(1, size=(2.0, 1.5))
    ax.plot([0, 1], [1, 0])
    return plot.save(fig, path, dpi=60)


def _fake_run(root, name, results, figures=("a.png",)):
    folder = root / name
    folder.mkdir(parents=True)
    for f in figures:
        _png(folder / f)
    (folder / "results.json").write_text(json.dumps(
        {**results, "figures": list(figures), "meta": {"experiment": name, "quick": True,
                                                      "seconds": 1.25}}))


def _sections(page):
    """{experiment name: its <section> html}."""
    return dict(re.findall(r"<section id='([^']+)'>(.*?)</section>", page, flags=re.S))


def test_report_shows_every_experiment_with_claim_verdict_and_embedded_figures(tmp_path):
    claim = {"zh": "以epoch为单位，感觉还是比较平滑的", "en": "per epoch it looks smooth",
             "source": "seed 002"}
    checks = [{"what": "rises per epoch", "value": 0.0, "op": "<=", "threshold": 0.1, "ok": True}]
    _fake_run(tmp_path, "smooth", {"claim": claim, "criterion": "supported if every check holds: "
                                   "rises per epoch <= 0.1", "checks": checks, "supported": True,
                                   "summary": "rises on 0% of epochs <b>"}, ("one.png", "two.png"))
    _fake_run(tmp_path, "refuted", {"claim": {"zh": "效果不如", "en": "does worse", "source": "s"},
                                    "criterion": "c", "supported": False, "summary": "no",
                                    "checks": [{"what": "gap", "value": None, "op": ">",
                                                "threshold": 2.0, "ok": False}]})
    _fake_run(tmp_path, "plain", {"summary": "no claim here", "speedup": 3.5, "E_total": 0.29})
    (tmp_path / "broken").mkdir()
    (tmp_path / "broken" / "results.json").write_text("{not json")

    path = report.write_report(tmp_path)
    assert path == tmp_path / "report.html"
    page = path.read_text(encoding="utf-8")
    sections = _sections(page)
    assert set(sections) == {"smooth", "refuted", "plain", "broken"}
    smooth = sections["smooth"]
    assert claim["zh"] in smooth and claim["en"] in smooth and "seed 002" in smooth
    assert "supported" in smooth and "rises per epoch" in smooth and "holds" in smooth
    uris = re.findall(r"src='data:image/png;base64,([^']+)'", smooth)
    assert len(uris) == 2 and all(base64.b64decode(u)[:8] == b"\x89PNG\r\n\x1a\n" for u in uris)
    assert "rises on 0% of epochs &lt;b&gt;" in smooth, "summaries are escaped"
    assert "not supported" in sections["refuted"] and "fails" in sections["refuted"]
    assert "n/a" in sections["refuted"]
    assert "no claim tested" in sections["plain"] and "speedup" in sections["plain"]
    assert "cannot read results.json" in sections["broken"]
    assert "4 experiment(s): 1 supported, 1 not supported, 1 without a claim, 1 unreadable" in page
    assert "http" not in page.replace("http-equiv", ""), "self-contained: nothing fetched"


def test_report_flags_a_missing_figure_and_rejects_a_missing_folder(tmp_path):
    _fake_run(tmp_path, "x", {"summary": "s"}, ())
    data = json.loads((tmp_path / "x" / "results.json").read_text())
    (tmp_path / "x" / "results.json").write_text(json.dumps({**data, "figures": ["gone.png"]}))
    assert "figure gone.png is missing" in report.render(tmp_path)
    with pytest.raises(ValueError, match="is not a folder"):
        report.render(tmp_path / "nope")


def test_cli_report_and_default_suite_run_write_the_page(tmp_path, monkeypatch, capsys):
    _fake_run(tmp_path / "a", "x", {"summary": "s"})
    assert cli.main(["report", "--out", str(tmp_path / "a"), "--output",
                     str(tmp_path / "page.html")]) == 0
    assert (tmp_path / "page.html").read_text().startswith("<!DOCTYPE html>")
    assert cli.main(["report", "--out", str(tmp_path / "missing")]) == 2
    monkeypatch.setattr(experiments, "DEFAULT_SUITE", ("backprop_example",))
    assert cli.main(["--no-compile-cache", "run", "--out", str(tmp_path / "b")]) == 0
    assert "backprop_example" in _sections((tmp_path / "b" / "report.html").read_text())
    assert cli.main(["--no-compile-cache", "run", "backprop_example", "--out",
                     str(tmp_path / "c")]) == 0
    assert not (tmp_path / "c" / "report.html").exists(), "named runs do not write the page"


@pytest.mark.slow
def test_report_from_quick_runs(tmp_path):
    for name in ("learning_rate", "playground", "backprop_example"):
        experiments.run_experiment(name, tmp_path, quick=True)
    page = report.write_report(tmp_path).read_text(encoding="utf-8")
    sections = _sections(page)
    for name in ("learning_rate", "playground", "backprop_example"):
        results = json.loads((tmp_path / name / "results.json").read_text())
        html = sections[name]
        assert html.count("src='data:image/png;base64,") == len(results["figures"]) > 0
        assert f"href='#{name}'" in page
        if "claim" in results:
            assert results["claim"]["zh"] in html and results["claim"]["en"] in html
            assert ("not supported" if not results["supported"] else "supported") in html
