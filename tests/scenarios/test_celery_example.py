"""examples/celery: a Celery project of its own whose tests use Warren (run as its users
would: pytest in the project's directory)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("celery")
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "celery"


@pytest.mark.timeout(1200)
def test_the_celery_example_passes():
    root = str(EXAMPLE.parents[1])
    path = os.pathsep.join(p for p in (str(EXAMPLE), root, os.environ.get("PYTHONPATH")) if p)
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=EXAMPLE,
        env={**os.environ, "PYTHONPATH": path},
        capture_output=True,
        text=True,
        timeout=1100,
    )
    assert done.returncode == 0, done.stdout[-4000:] + done.stderr[-2000:]
    assert "4 passed" in done.stdout
