"""The Markdown summary (also what ``warren gate`` writes to $GITHUB_STEP_SUMMARY)."""

from __future__ import annotations

from scenarios.checker import KEY_FIGURES
from scenarios.report import figure_cells, probe_text

VERDICT = {"pass": "pass", "fail": "**FAIL**", "error": "**ERROR**"}


def render(results: list, title: str = "warren run") -> str:
    passed = sum(1 for r in results if r.passed)
    lines = [
        f"# {title}",
        "",
        f"{passed} of {len(results)} runs passed.",
        "",
        "| scenario | seed | client | verdict | " + " | ".join(KEY_FIGURES) + " | probe |",
        "|---|---:|---|---|" + "---:|" * len(KEY_FIGURES) + "---|",
    ]
    for r in results:
        values = " | ".join(figure_cells(r))
        lines.append(
            f"| {r.scenario} | {r.seed} | {r.client} | {VERDICT[r.verdict]} | {values} "
            f"| {probe_text(r)} |"
        )
    bad = [r for r in results if not r.passed]
    if bad:
        lines += ["", "## Failures", ""]
        for r in bad:
            why = "; ".join(r.misses) or r.error or ""
            lines += [f"- **{r.scenario}** (seed {r.seed}): {why}  ", f"  replay: `{r.replay}`"]
    return "\n".join(lines) + "\n"
