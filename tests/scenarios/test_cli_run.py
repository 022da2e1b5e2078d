"""``warren run`` and ``warren replay --scenario`` end to end: exit codes 0/1/2, the results
table, the report folder (JUnit in pytest's layout, Markdown, HTML with timelines), a
failing run's replay command reproducing its history, bad input reported per run."""

from __future__ import annotations

import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import xmlschema

SCHEMA = Path(__file__).parent / "data" / "junit-10.xsd"

FAILING = """
[[scenario]]
name = "user.too-strict"
description = "a kill with an impossible recovery bound"
checks = "a failure is reported with its replay command"
publishers = [{messages = 20}]
consumers = [{style = "ensure"}]
faults = [{action = "kill", args = ["node1"], at = 1.0}]
expect = {max_publish_recovery = "<= 0.001"}
"""


def assert_valid_junit(path: Path) -> None:
    """Valid under the schema pytest's own JUnit output is checked against."""
    xmlschema.XMLSchema(SCHEMA).validate(path)


def test_the_schema_accepts_pytests_own_report_with_a_pass_a_failure_and_an_error(tmp_path):
    (tmp_path / "test_three.py").write_text(
        "import pytest\n"
        "@pytest.fixture\ndef broken():\n    raise RuntimeError('setup')\n"
        "def test_pass():\n    pass\n"
        "def test_fail():\n    assert 0\n"
        "def test_error(broken):\n    pass\n"
    )
    xml = tmp_path / "pytest.xml"
    subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", f"--junitxml={xml}"],
        cwd=tmp_path, capture_output=True, timeout=120,
    )  # fmt: skip
    suite = ET.parse(xml).getroot().find("testsuite")
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "1")
    assert_valid_junit(xml)
    bad = tmp_path / "bad.xml"
    bad.write_text('<testsuites><testsuite name="x"><testcase/></testsuite></testsuites>')
    with pytest.raises(xmlschema.XMLSchemaValidationError):
        assert_valid_junit(bad)


def warren(*args: str, cwd=None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "scenarios.cli", *args],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=cwd,
    )


def test_a_passing_run_prints_the_table_and_writes_the_report(tmp_path):
    out = warren("run", "-k", "publish.confirms-*", "--seeds", "2", "--report", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert "publish.confirms-kill" in out.stdout and "8 of 8 runs passed" in out.stdout
    assert_valid_junit(tmp_path / "report.xml")
    root = ET.parse(tmp_path / "report.xml").getroot()
    assert root.tag == "testsuites"
    (suite,) = root
    assert suite.tag == "testsuite"
    assert {k: suite.get(k) for k in ("tests", "failures", "errors", "skipped")} == {
        "tests": "8",
        "failures": "0",
        "errors": "0",
        "skipped": "0",
    }
    cases = suite.findall("testcase")
    assert len(cases) == 8 and all(c.get("classname") and c.get("time") for c in cases)
    assert cases[0].get("name") == "publish.confirms-kill[seed=1]"
    summary = (tmp_path / "summary.md").read_text()
    assert "8 of 8 runs passed" in summary and "| publish.confirms-kill | 1 |" in summary
    page = (tmp_path / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 4, "one timeline per scenario"


def test_a_failing_run_exits_1_and_its_replay_reproduces_it(tmp_path):
    toml = tmp_path / "mine.toml"
    toml.write_text(FAILING)
    report = tmp_path / "report"
    out = warren("run", "--scenarios", str(toml), "-k", "user.*", "--report", str(report))
    assert out.returncode == 1
    assert "max_publish_recovery <= 0.001: got" in out.stdout
    replay = re.search(
        r"warren replay --scenario user\.too-strict --seed 1 --scenarios \S+", out.stdout
    )
    assert replay, out.stdout
    assert_valid_junit(report / "report.xml")
    failure = ET.parse(report / "report.xml").getroot().find("testsuite/testcase/failure")
    assert "max_publish_recovery" in failure.get("message")
    assert replay.group(0) in failure.text
    again = warren(*replay.group(0).split()[1:])
    assert again.returncode == 1 and "verdict: fail" in again.stdout
    digest = again.stdout.strip().splitlines()[-1]
    assert digest.startswith("digest: ")
    assert warren(*replay.group(0).split()[1:]).stdout.strip().splitlines()[-1] == digest


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("-k", "no-such-scenario"), "no scenario matches -k 'no-such-scenario'"),
        (("--client", "nope"), "unknown client 'nope'"),
        (("--backend", "kubernetes"), "unknown backend 'kubernetes' (backends: virtual, live"),
        (("--scenarios", "no.such.module"), "cannot be imported"),
    ],
)
def test_usage_errors_exit_2_naming_the_bad_part(args, message):
    out = warren("run", "--no-report", *args)
    assert out.returncode == 2 and message in out.stderr


def test_an_adapter_that_cannot_be_imported_errs_each_run_and_the_report_says_so(tmp_path):
    out = warren(
        "run", "-k", "publish.confirms-kill", "--client", "no_such_pkg:factory",
        "--report", str(tmp_path),
    )  # fmt: skip
    assert out.returncode == 1
    assert_valid_junit(tmp_path / "report.xml")
    error = ET.parse(tmp_path / "report.xml").getroot().find("testsuite/testcase/error")
    assert "no_such_pkg:factory" in error.get("message") and "cannot be imported" in error.get(
        "message"
    )


def test_parallel_jobs_give_the_same_verdicts(tmp_path):
    out = warren("run", "-k", "consume.*", "--jobs", "2", "--no-report")
    assert out.returncode == 0 and "8 of 8 runs passed" in out.stdout


@pytest.mark.parametrize("value", ["-1", "11", "abc", "nan"])
def test_warren_sim_refuses_a_bad_reply_latency_naming_it(value):
    out = warren("sim", "--reply-latency", value)
    assert out.returncode == 2
    assert f"argument --reply-latency: {value!r} is not a number of seconds in 0..10" in out.stderr


@pytest.mark.parametrize("client, library", [("kombu", "kombu"), ("pika", "pika")])
def test_a_library_client_without_its_library_is_a_usage_error_naming_it(
    client, library, monkeypatch, capsys
):
    import importlib.util

    from scenarios.cli import main

    real = importlib.util.find_spec
    monkeypatch.setattr(  # as if it were not installed
        importlib.util, "find_spec", lambda name, *a: None if name == library else real(name, *a)
    )
    assert main(["run", "--client", client, "-k", "publish.confirms-kill"]) == 2
    err = capsys.readouterr().err
    assert f"client {client!r} needs {library}, which is not installed" in err
    assert f"pip install {library}" in err
