"""The HTML report: every experiment under the output folder appears with its claim, verdict,
summary and figures (embedded as data URIs); `fnn report` and `fnn run` write it."""
import base64
import json
import re
import shutil

import pytest

from fnn import plot
from fnn.app import cli, report


def _png(path):
    fig, ax = plot.figure(1, size=(2.0, 1.5))
    ax.plot([0, 1], [1, 0])
    return plot.save(fig, path, dpi=60)


def _fake_run(root, name, results, figures=("a.png",), quick=False):
    folder = root / name
    folder.mkdir(parents=True)
    for f in figures:
        _png(folder / f)
    (folder / "results.json").write_text(json.dumps(
        {**results, "figures": list(figures), "meta": {"experiment": name, "quick": quick,
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
    _fake_run(tmp_path, "plain", {"summary": "no claim here", "speedup": 3.5, "E_total": 0.29},
              quick=True)
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


def test_a_quick_run_has_no_verdict_and_its_card_says_why(tmp_path):
    checks = [{"what": "gap", "value": 0.5, "op": ">", "threshold": 2.0, "ok": False}]
    claim = {"zh": "效果不如", "en": "does worse", "source": "s"}
    _fake_run(tmp_path, "small", {"claim": claim, "criterion": "c", "supported": False,
                                  "summary": "s", "checks": checks}, quick=True)
    _fake_run(tmp_path, "full", {"claim": claim, "criterion": "c", "supported": False,
                                 "summary": "s", "checks": checks})
    page = report.render(tmp_path)
    small, full = _sections(page)["small"], _sections(page)["full"]
    assert "<span class='badge quick'>quick run</span>" in small
    assert "not supported" not in small and "class='fail'" not in small
    assert "A quick run" in small and "fnn run small" in small and "fails" in small
    assert "<span class='badge no'>not supported</span>" in full and "class='fail'" in full
    assert "A quick run" not in full
    overview = page.split("<section", 1)[0]
    assert overview.count("badge quick'>quick run") == 1
    assert "2 experiment(s): 0 supported, 1 not supported, 0 without a claim, 1 quick run(s) " \
           "without a verdict" in page


def test_cli_report_takes_the_folder_as_an_argument_and_run_writes_the_page(tmp_path, capsys):
    _fake_run(tmp_path / "a", "x", {"summary": "s"})
    assert cli.main(["report", str(tmp_path / "a")]) == 0
    assert capsys.readouterr().out == f"wrote {tmp_path / 'a' / 'report.html'}\n"
    assert cli.main(["report", "--out", str(tmp_path / "a"), "--output",
                     str(tmp_path / "page.html")]) == 0
    assert (tmp_path / "page.html").read_text().startswith("<!DOCTYPE html>")
    # a named run writes (or refreshes) OUT/report.html with every run under OUT
    _fake_run(tmp_path / "b", "x", {"summary": "s"})
    assert cli.main(["run", "backprop_example", "--out", str(tmp_path / "b"),
                     "--no-compile-cache"]) == 0
    page = tmp_path / "b" / "report.html"
    assert capsys.readouterr().out.endswith(f"wrote {page}\n")
    assert set(_sections(page.read_text())) == {"x", "backprop_example"}


@pytest.mark.slow
@pytest.mark.quick_runs("learning_rate", "playground", "backprop_example")
def test_report_from_quick_runs(tmp_path, quick_run):
    names = ("learning_rate", "playground", "backprop_example")
    for name in names:
        shutil.copytree(quick_run(name)[1], tmp_path / name)
    page = report.write_report(tmp_path).read_text(encoding="utf-8")
    sections = _sections(page)
    assert set(sections) == set(names)
    for name in names:
        results = json.loads((tmp_path / name / "results.json").read_text())
        html = sections[name]
        assert html.count("src='data:image/png;base64,") == len(results["figures"]) > 0
        assert f"href='#{name}'" in page
        if "claim" in results:   # quick runs: a claim, but no verdict
            assert results["claim"]["zh"] in html and results["claim"]["en"] in html
            assert "<span class='badge quick'>quick run</span>" in html
