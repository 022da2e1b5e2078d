"""examples/downstream as its users meet it: Warren built into a wheel and installed, with
the example project, into a fresh virtual environment; the example's own tests (Warren's
fixture, markers and strategies, reached through the installed pytest11 entry point) pass.

Both wheels are built as pip builds any project (an isolated build, setuptools from the
package index). The environment sees this interpreter's site-packages (kombu, pytest and
hypothesis come from there, installed once by the README's test command), but Warren and
the example are installed into it from their wheels."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "downstream"


def run(*args, cwd=None, timeout=300) -> subprocess.CompletedProcess:
    out = subprocess.run(args, cwd=cwd, capture_output=True, text=True, timeout=timeout)
    assert out.returncode == 0, f"{' '.join(map(str, args))}\n{out.stdout[-3000:]}{out.stderr}"
    return out


def test_the_downstream_example_passes_with_warren_installed_from_its_wheel(tmp_path):
    # built from copies: a build writes build/ and *.egg-info beside the sources, and a
    # stale build/ in the checkout could slip deleted modules into the wheel
    skip = shutil.ignore_patterns(".*", "build", "*.egg-info", "__pycache__", "warren-report")
    shutil.copytree(ROOT, tmp_path / "warren", ignore=skip)
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", wheels,
        tmp_path / "warren", tmp_path / "warren" / "examples" / "downstream")  # fmt: skip
    venv = tmp_path / "venv"
    run(sys.executable, "-m", "venv", "--system-site-packages", venv)
    python = venv / "bin" / "python"
    run(python, "-m", "pip", "install", "-q", "--no-deps", "--no-index", *wheels.glob("*.whl"))
    project = tmp_path / "project"  # the tests alone: the code under test is the installed one
    shutil.copytree(EXAMPLE / "tests", project / "tests")
    shutil.copy(EXAMPLE / "pyproject.toml", project)
    which = "import scenarios, orders; print(scenarios.__file__, orders.__file__)"
    where = run(python, "-c", which, cwd=project).stdout
    assert where.count(str(venv)) == 2, f"not the installed packages: {where}"
    out = run(python, "-m", "pytest", "-q", "-p", "no:cacheprovider", cwd=project, timeout=600)
    assert " passed" in out.stdout and "failed" not in out.stdout, out.stdout
    assert "6 passed" in out.stdout, out.stdout[-2000:]
