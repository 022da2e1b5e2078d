"""Reports of a ``warren run`` (DESIGN section 6): the terminal table (:mod:`.terminal`),
JUnit XML (:mod:`.junit`), a Markdown summary (:mod:`.markdown`) and an HTML page with one
timeline picture per scenario (:mod:`.html`, :mod:`.timeline`). Each takes the runner's
:class:`~scenarios.runner.Result` objects and knows nothing of backends."""

from __future__ import annotations

from pathlib import Path

from scenarios.checker import KEY_FIGURES, format_value


def probe_figures(result) -> dict[str, str]:
    """A probe run's own figures (``probe.*``, prefix dropped), formatted; {} for a pipeline."""
    return {
        k[len("probe.") :]: format_value(v)
        for k, v in sorted(result.figures.items())
        if k.startswith("probe.")
    }


def figure_cells(result) -> list[str]:
    """One cell per key figure; a probe run has no pipeline, so its cells say "-"."""
    if probe_figures(result):
        return ["-"] * len(KEY_FIGURES)
    return [format_value(result.figures.get(k, "-")) for k in KEY_FIGURES]


def probe_text(result) -> str:
    return " ".join(f"{k}={v}" for k, v in probe_figures(result).items())


def write_all(results: list, folder: Path, title: str = "warren run") -> dict[str, Path]:
    """Write report.xml, summary.md and index.html (+ timelines) into ``folder``."""
    from scenarios.report import html, junit, markdown

    folder.mkdir(parents=True, exist_ok=True)
    paths = {
        "junit": folder / "report.xml",
        "markdown": folder / "summary.md",
        "html": folder / "index.html",
    }
    junit.write(results, paths["junit"], title)
    paths["markdown"].write_text(markdown.render(results, title))
    html.write(results, paths["html"], title)
    return paths
