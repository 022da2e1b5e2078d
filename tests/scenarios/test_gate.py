"""``warren gate`` in a CI-style run: a gate that must pass passes, one that must fail
fails, a regression against the stored baseline is caught, bad settings exit 2."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest


def gate(tmp_path, body: str, *args: str, env=None):
    (tmp_path / "pyproject.toml").write_text(body)
    return subprocess.run(
        [sys.executable, "-m", "scenarios.cli", "gate", "--pyproject",
         str(tmp_path / "pyproject.toml"), *args],
        capture_output=True, text=True, timeout=300, env=env,
    )  # fmt: skip


BASE = """
[tool.warren]
select = ["publish.confirms-kill", "consume.mixin-kill"]
seeds = 2
"""


def test_a_passing_gate_writes_the_step_summary_and_a_baseline(tmp_path):
    import os

    summary = tmp_path / "summary.md"
    env = {**os.environ, "GITHUB_STEP_SUMMARY": str(summary)}
    out = gate(tmp_path, BASE + "[tool.warren.thresholds]\nlost = '== 0'\n", env=env)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "4 of 4 runs passed, 0 regression(s)" in out.stdout
    assert "| publish.confirms-kill | 1 |" in summary.read_text()
    out = gate(tmp_path, BASE, "--update-baseline")
    assert out.returncode == 0 and (tmp_path / "warren-baseline.json").exists()
    assert gate(tmp_path, BASE).returncode == 0, "the same code against its own baseline"


def test_a_gate_that_must_fail_fails_with_the_replay_command(tmp_path):
    out = gate(tmp_path, BASE + "[tool.warren.thresholds]\nmax_publish_recovery = '<= 0.001'\n")
    assert out.returncode == 1
    assert "FAIL publish.confirms-kill (seed 1): max_publish_recovery <= 0.001" in out.stdout
    assert "warren replay --scenario publish.confirms-kill --seed 1" in out.stdout


def test_a_regression_against_the_baseline_is_caught(tmp_path):
    assert gate(tmp_path, BASE, "--update-baseline").returncode == 0
    path = tmp_path / "warren-baseline.json"
    data = json.loads(path.read_text())
    data["scenarios"]["publish.confirms-kill"]["max_publish_recovery"] = 0.0  # "was instant"
    path.write_text(json.dumps(data))
    out = gate(tmp_path, BASE + "slack = 0.01\n")
    assert out.returncode == 1
    assert "REGRESSION publish.confirms-kill: max_publish_recovery" in out.stdout


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("[tool.warren]\nseeds = 0\n", "seeds: an integer >= 1"),
        ("[tool.warren]\nfrobnicate = 1\n", "unknown keys ['frobnicate']"),
        ("[tool.warren.thresholds]\nlots = '== 0'\n", "unknown figure 'lots'"),
        ("[tool.warren.thresholds]\nlost = 'zero'\n", "threshold 'zero' for 'lost'"),
        ("[tool.warren]\nselect = 'nothing-like-this'\n", "matches no scenario"),
        ("[project]\nname = 'x'\n", "no [tool.warren] table"),
    ],
)
def test_bad_settings_exit_2_naming_the_bad_part(tmp_path, body, message):
    out = gate(tmp_path, body)
    assert out.returncode == 2 and message in out.stderr


def test_a_malformed_baseline_exits_2(tmp_path):
    (tmp_path / "warren-baseline.json").write_text("{not json")
    out = gate(tmp_path, BASE)
    assert out.returncode == 2 and "not JSON" in out.stderr
    (tmp_path / "warren-baseline.json").write_text('{"version": 1, "scenarios": {"x": 3}}')
    out = gate(tmp_path, BASE)
    assert out.returncode == 2 and "'scenarios' must map names" in out.stderr


def test_an_unknown_backend_is_a_usage_error_naming_it(tmp_path):
    from scenarios.gate import GateError, read_config

    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        '[tool.warren]\nclient = "celery:shop.worker:app"\nbackend = "kubernetes"\n'
    )
    with pytest.raises(
        GateError, match="backend: one of virtual, live, local, docker, got 'kubernetes'"
    ):
        read_config(pyproject)
    pyproject.write_text('[tool.warren]\nbackend = "live"\n')
    assert read_config(pyproject).backend == "live"
