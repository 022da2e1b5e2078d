"""JUnit XML: one ``testcase`` per scenario and seed, in the layout pytest's own
``--junitxml`` writes (``testsuites/testsuite/testcase``; ``failure``/``error`` carrying a
message and the figures and replay command as text)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from scenarios.checker import format_value


def build(results: list, title: str) -> ET.Element:
    failures = sum(1 for r in results if r.verdict == "fail")
    errors = sum(1 for r in results if r.verdict == "error")
    total = sum(r.wall_seconds for r in results)
    root = ET.Element("testsuites")
    suite = ET.SubElement(
        root,
        "testsuite",
        name=title,
        errors=str(errors),
        failures=str(failures),
        skipped="0",
        tests=str(len(results)),
        time=f"{total:.3f}",
    )
    for r in results:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"warren.{r.family}.{r.client}",
            name=f"{r.scenario}[seed={r.seed}]",
            time=f"{r.wall_seconds:.3f}",
        )
        if r.verdict == "pass":
            continue
        tag = "failure" if r.verdict == "fail" else "error"
        message = "; ".join(r.misses) if r.verdict == "fail" else (r.error or "error")
        node = ET.SubElement(case, tag, message=message)
        node.text = details(r)
    return root


def details(r) -> str:
    figures = "\n".join(f"  {k} = {format_value(v)}" for k, v in sorted(r.figures.items()))
    lines = [
        f"scenario {r.scenario} ({r.description})",
        f"client {r.client}, backend {r.backend}, seed {r.seed}",
        f"replay: {r.replay}",
        *(f"missed: {m}" for m in r.misses),
        *([f"error: {r.error}"] if r.error else []),
        *([f"lost ids: {', '.join(map(str, r.lost))}"] if r.lost else []),
        "figures:",
        figures,
        *r.escaped,
    ]
    return "\n".join(lines)


def write(results: list, path: Path, title: str = "warren run") -> None:
    tree = ET.ElementTree(build(results, title))
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
