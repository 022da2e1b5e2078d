"""The sans-IO rule (DESIGN section 1): the core never touches sockets, threads, asyncio,
the clock or a random source; only broker_sim/drivers may."""

from __future__ import annotations

import ast
from pathlib import Path

import broker_sim

FORBIDDEN = {
    "socket",
    "asyncio",
    "threading",
    "time",
    "random",
    "select",
    "selectors",
    "subprocess",
    "multiprocessing",
    "signal",
}
ROOT = Path(broker_sim.__file__).parent


def core_modules() -> list[Path]:
    return sorted(p for p in ROOT.rglob("*.py") if "drivers" not in p.relative_to(ROOT).parts)


def imported_roots(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    roots = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            roots.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            roots.add(node.module.split(".")[0])
        elif (
            isinstance(node, ast.Call)
            and getattr(node.func, "id", None) == "__import__"
            and node.args
            and isinstance(node.args[0], ast.Constant)
        ):
            roots.add(str(node.args[0].value).split(".")[0])
    return roots


def test_core_modules_exist():
    names = {p.stem for p in core_modules()}
    assert {"node", "connection", "channel", "framing", "queues", "exchanges"} <= names


def test_core_never_imports_io_clock_or_randomness():
    offenders = {
        str(p.relative_to(ROOT)): sorted(imported_roots(p) & FORBIDDEN) for p in core_modules()
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert offenders == {}, f"sans-IO core imports forbidden modules: {offenders}"


def test_checker_catches_a_violation(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text("import time\nfrom asyncio import sleep\n__import__('socket')\n")
    assert imported_roots(bad) & FORBIDDEN == {"time", "asyncio", "socket"}
