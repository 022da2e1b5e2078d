"""The terminal: a live progress bar while runs finish, then the results table (rich)."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from scenarios.checker import KEY_FIGURES, format_value
from scenarios.report import probe_figures, probe_text

STYLE = {"pass": "green", "fail": "bold red", "error": "bold magenta"}


def progress(console: Console) -> Progress:
    return Progress(
        TextColumn("[bold]warren run[/]"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.description}"),
        TimeElapsedColumn(),
        console=console,
        transient=True,
    )


SHORT = {
    "confirmed": "confirmed",
    "delivered": "delivered",
    "lost": "lost",
    "duplicated": "dup",
    "max_publish_recovery": "recovery",
    "reconnects": "reconnects",
}


def key_figures(result) -> str:
    """The figures that say most about a run: its probe's, or the pipeline's key ones."""
    if probe_figures(result):
        return probe_text(result)
    parts = [f"{SHORT[k]} {format_value(result.figures.get(k, '-'))}" for k in KEY_FIGURES]
    return " · ".join(parts)


def table(results: list) -> Table:
    failing = any(not r.passed for r in results)
    out = Table(title="Warren: scenarios", show_lines=failing)
    out.add_column("scenario", no_wrap=True)
    out.add_column("seed", justify="right")
    out.add_column("verdict")
    out.add_column("key figures")
    if failing:
        out.add_column("why")
    for r in results:
        row = [r.scenario, str(r.seed), f"[{STYLE[r.verdict]}]{r.verdict}[/]", key_figures(r)]
        if failing:
            why = "" if r.passed else ("; ".join(r.misses) or r.error or "")
            row.append(why)
        out.add_row(*row)
    return out


def replays(results: list) -> list[str]:
    """One line per failed run: its seed and the exact command that reproduces it."""
    return [f"{r.scenario} (seed {r.seed}): {r.replay}" for r in results if not r.passed]
