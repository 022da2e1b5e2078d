"""The HTML report: one self-contained page (no server, no network: pictures inline as
base64 PNG) with the results table and a timeline per scenario (the first seed of each,
and every failing run)."""

from __future__ import annotations

import base64
import html
from pathlib import Path

from scenarios.checker import KEY_FIGURES
from scenarios.report import figure_cells, probe_text
from scenarios.report.timeline import STATE_COLORS, render_png

STYLE = """
body { font-family: sans-serif; margin: 2em; color: #222 }
table { border-collapse: collapse; font-size: 0.9em }
td, th { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: right }
td:first-child, th:first-child { text-align: left }
.pass { color: #2e7d32 } .fail, .error { color: #c62828; font-weight: bold }
code { background: #f4f4f4; padding: 0 0.3em }
section { margin: 2em 0 } img { max-width: 100%; border: 1px solid #ddd }
"""


def pictured(results: list) -> list:
    seen, chosen = set(), []
    for r in results:
        if r.scenario not in seen or not r.passed:
            seen.add(r.scenario)
            chosen.append(r)
    return chosen


def render(results: list, title: str = "warren run") -> str:
    esc = html.escape
    passed = sum(1 for r in results if r.passed)
    head = "".join(f"<th>{esc(k)}</th>" for k in (*KEY_FIGURES, "probe"))
    rows = []
    for r in results:
        cells = "".join(f"<td>{esc(c)}</td>" for c in (*figure_cells(r), probe_text(r)))
        rows.append(
            f"<tr><td><a href='#{esc(r.scenario)}-{r.seed}'>{esc(r.scenario)}</a></td>"
            f"<td>{r.seed}</td><td class='{r.verdict}'>{r.verdict}</td>{cells}</tr>"
        )
    legend = " ".join(
        f"<span style='background:{c};padding:0 0.5em'>{esc(s)}</span>"
        for s, c in STATE_COLORS.items()
    )
    sections = []
    for r in pictured(results):
        png = base64.b64encode(render_png(r)).decode()
        why = "; ".join(r.misses) or (r.error or "")
        sections.append(
            f"<section id='{esc(r.scenario)}-{r.seed}'><h2>{esc(r.scenario)} "
            f"<small class='{r.verdict}'>{r.verdict}</small></h2>"
            f"<p>{esc(r.description)}</p>"
            + (f"<p class='fail'>{esc(why)}</p>" if why else "")
            + f"<p>replay: <code>{esc(r.replay)}</code></p>"
            f"<img alt='timeline of {esc(r.scenario)}' src='data:image/png;base64,{png}'>"
            "</section>"
        )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{esc(title)}</title>"
        f"<style>{STYLE}</style></head><body><h1>{esc(title)}</h1>"
        f"<p>{passed} of {len(results)} runs passed. Node states: {legend}</p>"
        f"<table><tr><th>scenario</th><th>seed</th><th>verdict</th>{head}</tr>"
        + "".join(rows)
        + "</table>"
        + "".join(sections)
        + "</body></html>"
    )


def write(results: list, path: Path, title: str = "warren run") -> None:
    path.write_text(render(results, title))
