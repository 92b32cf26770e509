"""One self-contained HTML page from a folder of experiment runs.

``fnn run`` writes ``OUT/NAME/results.json`` and ``OUT/NAME/*.png`` for every experiment;
:func:`write_report` reads them back (it never imports the experiments) and writes
``OUT/report.html``: an overview table (experiment, the claim of the notes it tests, whether
the numbers support it — a quick run, too small to answer, gets no verdict —, the one-line
summary), then one section per experiment with the
claim (Chinese original and English translation), the criterion and each check with its
measured value (the schema is :mod:`fnn.app.claims`), the key numbers and every figure
embedded as a base64 PNG data URI, so the page can be mailed or opened anywhere without the folder.
"""
from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import math
from pathlib import Path
from typing import Any

from fnn.app.claims import VERDICT_FIELDS, claims_of

__all__ = ["collect", "render", "write_report"]


def collect(out_dir: str | Path) -> list[dict]:
    """Every ``out_dir/*/results.json`` as ``{"name", "dir", "results"}``, sorted by name.

    Unreadable or malformed files are kept with an ``error`` entry instead of results, so a
    broken run shows up in the report rather than silently disappearing.
    """
    root = Path(out_dir)
    if not root.is_dir():
        raise ValueError(f"report: {str(root)!r} is not a folder (expected the --out folder of "
                         f"`fnn run`)")
    runs = []
    for path in sorted(root.glob("*/results.json")):
        entry = {"name": path.parent.name, "dir": path.parent}
        try:
            entry["results"] = json.loads(path.read_text())
            if not isinstance(entry["results"], dict):
                raise ValueError("not a JSON object")
        except (OSError, ValueError) as error:
            entry["results"], entry["error"] = {}, f"cannot read {path.name}: {error}"
        runs.append(entry)
    return runs


# ----------------------------------------------------------------------------- formatting

def _e(text: Any) -> str:
    return html.escape(str(text), quote=True)


def _num(value: Any) -> str:
    """Numbers for people: 4 significant digits, ints as ints, None as n/a."""
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        if value != 0 and (abs(value) >= 1e5 or abs(value) < 1e-3):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def _quick(results: dict) -> bool:
    return bool((results.get("meta") or {}).get("quick"))


def _verdict(results: dict) -> tuple[str, str]:
    """(css class, label) of an experiment's verdict. A quick run (the small config for
    tests) gets no verdict: its numbers are too small to answer the claim."""
    supported = results.get("supported")
    if supported is not None and _quick(results):
        return "quick", "quick run"
    if supported is True:
        return "yes", "supported"
    if supported is False:
        return "no", "not supported"
    return "none", "no claim tested"


def _short(text: str, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _scalars(results: dict, limit: int = 24) -> list[tuple[str, Any]]:
    """Top-level numbers and strings worth showing for experiments without ``checks``."""
    skip = {*VERDICT_FIELDS, "checks_text", "figures", "meta", "config"}
    rows = []
    for key, value in results.items():
        if key in skip or key.startswith("_"):
            continue
        if isinstance(value, (bool, int, float)) or value is None:
            rows.append((key, value))
        elif isinstance(value, str) and len(value) < 200:
            rows.append((key, value))
        elif isinstance(value, dict) and 0 < len(value) <= 12 and all(
                isinstance(v, (bool, int, float)) or v is None for v in value.values()):
            rows.append((key, ", ".join(f"{k}: {_num(v)}" for k, v in value.items())))
    return rows[:limit]


def _image(path: Path) -> str | None:
    try:
        data = path.read_bytes()
    except OSError:
        return None
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


def _figures(entry: dict) -> list[Path]:
    listed = entry["results"].get("figures")
    if isinstance(listed, list) and listed:
        return [entry["dir"] / str(name) for name in listed]
    return sorted(entry["dir"].glob("*.png"))


# ----------------------------------------------------------------------------- page

_CSS = """
body{font:15px/1.5 -apple-system,'Segoe UI',Roboto,'Noto Sans','Noto Sans CJK SC',
'PingFang SC','Microsoft YaHei',sans-serif;color:#1d1d1f;margin:0;background:#f6f7f9}
main{max-width:1220px;margin:0 auto;padding:24px 28px 60px}
h1{font-size:26px;margin:8px 0 4px} h2{font-size:21px;margin:0 0 6px}
.sub{color:#555;margin:0 0 18px} a{color:#0b5cad;text-decoration:none}
table{border-collapse:collapse;width:100%;background:#fff;font-size:13.5px}
th,td{border:1px solid #dde1e6;padding:6px 8px;vertical-align:top;text-align:left}
th{background:#eef1f5;font-weight:600}
td.num{text-align:right;font-variant-numeric:tabular-nums;white-space:nowrap}
.badge{display:inline-block;padding:1px 9px;border-radius:10px;font-size:12.5px;
font-weight:600;white-space:nowrap}
.yes{background:#dff3e4;color:#13652c}.no{background:#fde2e1;color:#a4161a}
.none{background:#eceff3;color:#555}.err{background:#fff3cd;color:#7a5b00}
.quick{background:#e6eefa;color:#2b4c7e}
.quicknote{margin:8px 0;padding:8px 12px;background:#e6eefa;border-radius:6px;font-size:13.5px}
section{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:18px 22px;
margin:22px 0}
.meta{color:#666;font-size:12.5px;margin-bottom:10px}
blockquote{margin:8px 0;padding:8px 14px;border-left:4px solid #9ab;background:#f7f9fb}
blockquote .zh{font-size:15px} blockquote .en{color:#333;margin-top:4px}
blockquote .src{color:#777;font-size:12px;margin-top:4px}
.criterion{font-size:13px;color:#333;margin:8px 0}
.summary{margin:10px 0;padding:8px 12px;background:#f3f6fa;border-radius:6px}
figure{margin:14px 0 4px} figure img{max-width:100%;height:auto;border:1px solid #e3e6ea}
figcaption{font-size:12px;color:#666}
.ok{color:#13652c;font-weight:600}.fail{color:#a4161a;font-weight:600}
.counts{margin:10px 0 0;font-size:14px}
"""


def _overview(runs: list[dict]) -> str:
    rows = []
    for entry in runs:
        r = entry["results"]
        css, label = ("err", "error") if "error" in entry else _verdict(r)
        claims = claims_of(r)
        claim = _short(claims[0].get("en", "")) if claims else "—"
        seconds = (r.get("meta") or {}).get("seconds")
        quick = _quick(r)
        checks = [c for c in r.get("checks") or [] if isinstance(c, dict)]
        held = (f"<br><small>{sum(bool(c.get('ok')) for c in checks)}/{len(checks)} checks "
                f"hold</small>" if checks else "")
        rows.append(
            f"<tr><td><a href='#{_e(entry['name'])}'>{_e(entry['name'])}</a>"
            f"{' <small>(quick)</small>' if quick else ''}</td>"
            f"<td>{_e(claim)}</td><td><span class='badge {css}'>{_e(label)}</span>{held}</td>"
            f"<td>{_e(r.get('summary', entry.get('error', '')))}</td>"
            f"<td class='num'>{_e(_num(seconds)) + ' s' if seconds is not None else ''}</td></tr>")
    return ("<table><tr><th>experiment</th><th>claim of the notes</th><th>verdict</th>"
            "<th>summary (key numbers)</th><th>run time</th></tr>" + "".join(rows) + "</table>")


def _checks_table(checks: list, quick: bool = False) -> str:
    """The checks with their measured values; a quick run's are shown without colour."""
    rows = []
    for c in checks:
        if not isinstance(c, dict):
            continue
        ok = bool(c.get("ok"))
        css = "" if quick else f" class='{'ok' if ok else 'fail'}'"
        rows.append(f"<tr><td>{_e(c.get('what', ''))}</td>"
                    f"<td class='num'>{_e(_num(c.get('value')))}</td>"
                    f"<td class='num'>{_e(c.get('op', ''))} {_e(_num(c.get('threshold')))}</td>"
                    f"<td{css}>{'holds' if ok else 'fails'}</td></tr>")
    if not rows:
        return ""
    return ("<table><tr><th>check (computed from the numbers)</th><th>measured</th>"
            "<th>needs</th><th></th></tr>" + "".join(rows) + "</table>")


def _section(entry: dict) -> str:
    name, r = entry["name"], entry["results"]
    css, label = ("err", "error") if "error" in entry else _verdict(r)
    meta = r.get("meta") or {}
    parts = [f"<section id='{_e(name)}'><h2>{_e(name)} <span class='badge {css}'>"
             f"{_e(label)}</span></h2>"]
    bits = [f"{k} {_e(_num(meta[k]))}" for k in ("seconds", "backend", "jax", "fnn") if k in meta]
    if meta.get("quick"):
        bits.insert(0, "quick config")
    if bits:
        parts.append(f"<div class='meta'>{' · '.join(bits)}</div>")
    if css == "quick":
        parts.append(f"<div class='quicknote'>A quick run: the small config for tests. Its "
                     f"checks are computed below, but its numbers are too small to answer the "
                     f"claim, so it has no verdict; <code>fnn run {_e(name)}</code> gives "
                     f"one.</div>")
    if "error" in entry:
        parts.append(f"<p>{_e(entry['error'])}</p>")
    for claim in claims_of(r):
        lines = [f"<div class='{css}'{' lang=zh' if key == 'zh' else ''}>{_e(claim[key])}</div>"
                 for key, css in (("zh", "zh"), ("en", "en"), ("source", "src"))
                 if claim.get(key)]
        parts.append("<blockquote>" + "".join(lines) + "</blockquote>")
    if r.get("criterion"):
        parts.append(f"<div class='criterion'><b>Criterion.</b> {_e(r['criterion'])}</div>")
    if r.get("summary"):
        parts.append(f"<div class='summary'>{_e(r['summary'])}</div>")
    checks = r.get("checks")
    if isinstance(checks, list) and checks:
        parts.append(_checks_table(checks, quick=css == "quick"))
    else:
        scalars = _scalars(r)
        if scalars:
            parts.append("<table><tr><th>key number</th><th>value</th></tr>" + "".join(
                f"<tr><td>{_e(k)}</td><td>{_e(_num(v))}</td></tr>" for k, v in scalars)
                + "</table>")
    for path in _figures(entry):
        uri = _image(path)
        if uri is None:
            parts.append(f"<p class='fail'>figure {_e(path.name)} is missing or not a PNG</p>")
        else:
            parts.append(f"<figure><img src='{uri}' alt='{_e(name)}: {_e(path.name)}'>"
                         f"<figcaption>{_e(path.name)}</figcaption></figure>")
    parts.append("</section>")
    return "".join(parts)


def render(out_dir: str | Path, *, title: str = "fnn experiments") -> str:
    """The report page for the runs under ``out_dir``, as an HTML string."""
    runs = collect(out_dir)
    verdicts = [_verdict(e["results"])[0] for e in runs if "error" not in e]
    counts = (f"{len(runs)} experiment(s): {verdicts.count('yes')} supported, "
              f"{verdicts.count('no')} not supported, {verdicts.count('none')} without a claim"
              + (f", {verdicts.count('quick')} quick run(s) without a verdict"
                 if "quick" in verdicts else "")
              + (f", {len(runs) - len(verdicts)} unreadable" if len(runs) > len(verdicts) else ""))
    quick = sum(_quick(e["results"]) for e in runs)
    if quick:
        counts += (f" — {quick} ran the quick config (small, for tests): their numbers are not "
                   f"the experiments' answers; run `fnn run NAME` for those")
    stamp = _dt.datetime.now().strftime("%Y-%m-%d %H:%M")
    body = (f"<h1>{_e(title)}</h1><p class='sub'>Results under <code>{_e(Path(out_dir))}</code>, "
            f"page written {stamp}. Each experiment tests a sentence of the study notes; "
            f"'supported' is computed from the measured numbers by the criterion shown, never "
            f"set by hand.</p><p class='counts'>{_e(counts)}</p>"
            + (_overview(runs) if runs else "<p>No results.json found.</p>")
            + "".join(_section(e) for e in runs))
    return ("<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>"
            "<meta name='viewport' content='width=device-width,initial-scale=1'>"
            f"<title>{_e(title)}</title><style>{_CSS}</style></head><body><main>{body}"
            "</main></body></html>\n")


def write_report(out_dir: str | Path, path: str | Path | None = None, *,
                 title: str = "fnn experiments") -> Path:
    """Write :func:`render`'s page to ``path`` (default ``out_dir/report.html``); return it."""
    target = Path(path) if path is not None else Path(out_dir) / "report.html"
    text = render(out_dir, title=title)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(target)
    return target
