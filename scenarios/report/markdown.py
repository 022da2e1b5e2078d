"""The Markdown summary (also what ``warren gate`` writes to $GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

from scenarios.checker import KEY_FIGURES, format_value

VERDICT = {"pass": "pass", "fail": "**FAIL**", "error": "**ERROR**"}


def render(results: list, title: str = "warren run") -> str:
    passed = sum(1 for r in results if r.passed)
    lines = [
        f"# {title}",
        "",
        f"{passed} of {len(results)} runs passed.",
        "",
        "| scenario | seed | client | verdict | " + " | ".join(KEY_FIGURES) + " |",
        "|---|---:|---|---|" + "---:|" * len(KEY_FIGURES),
    ]
    for r in results:
        values = " | ".join(format_value(r.figures.get(k, "-")) for k in KEY_FIGURES)
        lines.append(f"| {r.scenario} | {r.seed} | {r.client} | {VERDICT[r.verdict]} | {values} |")
    bad = [r for r in results if not r.passed]
    if bad:
        lines += ["", "## Failures", ""]
        for r in bad:
            why = "; ".join(r.misses) or r.error or ""
            lines += [f"- **{r.scenario}** (seed {r.seed}): {why}  ", f"  replay: `{r.replay}`"]
    return "\n".join(lines) + "\n"
