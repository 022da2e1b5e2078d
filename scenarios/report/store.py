"""``results.json``: a run's results in a form another process can read back, so the
reports of ``warren run --shard K/N`` jobs (CI matrix jobs, other hosts) can be merged by
``warren merge`` into one report as if a single run had made them.

Every result is kept with its figures, misses, error and replay data; the history
(``events``) is kept only for the results the HTML page pictures (the first seed of each
scenario and every run that did not pass), so a 1,000-seed shard stays small. A shard's
first seed of a scenario is also the merged run's first seed whenever it is the lowest
overall, so the merged page pictures the same runs a single run would have."""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path

FORMAT = "warren-results/1"
FILENAME = "results.json"


class StoreError(ValueError):
    """A results file that is missing, unreadable or not Warren's; names the file."""


def save(results: list, folder: Path, order: list[str], shard: tuple[int, int] = (1, 1)) -> Path:
    """Write ``folder/results.json``; ``order`` is the scenarios' order in the run."""
    from scenarios.report.html import pictured

    keep = {id(r) for r in pictured(results)}
    rows = []
    for r in results:
        row = asdict(r)
        if id(r) not in keep:
            row["events"] = []
        rows.append(row)
    path = folder / FILENAME
    document = {"format": FORMAT, "order": order, "shard": list(shard), "results": rows}
    path.write_text(json.dumps(document, separators=(",", ":")))
    return path


def load(folder: Path) -> tuple[list[str], list]:
    """The scenario order and the results saved in ``folder`` (or a results.json path)."""
    from scenarios.runner import Result

    path = folder if folder.suffix == ".json" else folder / FILENAME
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise StoreError(f"{path}: no such file (was it written by warren run?)") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise StoreError(f"{path}: not readable as JSON ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise StoreError(f"{path}: not a Warren results file (format {FORMAT!r} expected)")
    names = {f.name for f in fields(Result)}
    results = []
    for row in document["results"]:
        unknown = set(row) - names
        if unknown:
            raise StoreError(f"{path}: unknown result fields {sorted(unknown)}")
        row["events"] = [tuple(event) for event in row.get("events", [])]
        row["sources"] = tuple(row.get("sources", ()))
        results.append(Result(**row))
    return list(document["order"]), results


def merge(documents: list[tuple[list[str], list]]) -> tuple[list[str], list]:
    """One order and one result list from several shards; a (scenario, seed) run that two
    shards both hold is an error (the shards were not cut from the same run)."""
    order: list[str] = []
    seen: dict[tuple[str, int, str], int] = {}
    merged = []
    for index, (names, results) in enumerate(documents):
        order += [n for n in names if n not in order]
        for r in results:
            key = (r.scenario, r.seed, r.client)
            if key in seen:
                raise StoreError(
                    f"{r.scenario} seed {r.seed} is in reports {seen[key] + 1} and {index + 1}: "
                    "merge the shards of one run (warren run --shard K/N, K = 1..N)"
                )
            seen[key] = index
            merged.append(r)
    merged.sort(key=lambda r: (order.index(r.scenario), r.client, r.seed))
    return order, merged
