"""``warren run --shard K/N`` and ``warren merge``: shards of one run hold each (scenario,
seed) exactly once, and their merged report is the unsharded run's report."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest

from scenarios.shard import deal
from tests.scenarios.test_cli_run import assert_valid_junit, warren

RUN = ("run", "-k", "publish.confirms-*", "--seeds", "2")  # 4 scenarios x 2 seeds


def cases(folder) -> dict[str, str]:
    suite = ET.parse(folder / "report.xml").getroot().find("testsuite")
    return {case.get("name"): "pass" if len(case) == 0 else case[0].tag for case in suite}


def test_the_shards_hold_every_run_once_and_merge_into_the_unsharded_report(tmp_path):
    whole = warren(*RUN, "--report", str(tmp_path / "whole"))
    assert whole.returncode == 0, whole.stderr
    for k in (1, 2, 3):
        out = warren(*RUN, "--shard", f"{k}/3", "--report", str(tmp_path / f"shard{k}"))
        assert out.returncode == 0, out.stderr
        assert f"shard {k}/3" in out.stdout
    sizes = [len(cases(tmp_path / f"shard{k}")) for k in (1, 2, 3)]
    assert sizes == [3, 3, 2]
    shards = [str(tmp_path / f"shard{k}") for k in (1, 2, 3)]
    merged = warren("merge", *shards, "--report", str(tmp_path / "merged"), "--expect", "8")
    assert merged.returncode == 0, merged.stderr
    assert "8 of 8 runs passed (3 reports merged)" in merged.stdout
    assert cases(tmp_path / "merged") == cases(tmp_path / "whole")
    assert_valid_junit(tmp_path / "merged" / "report.xml")
    whole_md = (tmp_path / "whole" / "summary.md").read_text().splitlines()
    merged_md = (tmp_path / "merged" / "summary.md").read_text().splitlines()
    assert [line for line in merged_md if line.startswith("| publish")] == [
        line for line in whole_md if line.startswith("| publish")
    ]
    page = (tmp_path / "merged" / "index.html").read_text()
    assert page.count("data:image/png;base64,") == 4, "one timeline per scenario, as unsharded"
    digests = {
        (r["scenario"], r["seed"]): r["digest"]
        for folder in ("whole", "merged")
        for r in json.loads((tmp_path / folder / "results.json").read_text())["results"]
    }
    assert len(digests) == 8, "a seed's history does not depend on its shard"


def test_merging_a_shard_twice_or_missing_one_is_refused(tmp_path):
    out = warren(*RUN, "--shard", "1/2", "--report", str(tmp_path / "a"))
    assert out.returncode == 0, out.stderr
    twice = warren("merge", str(tmp_path / "a"), str(tmp_path / "a"), "--report", str(tmp_path))
    assert twice.returncode == 2
    assert "seed 1 is in reports 1 and 2" in twice.stderr
    short = warren("merge", str(tmp_path / "a"), "--report", str(tmp_path / "m"), "--expect", "8")
    assert short.returncode == 1 and "4 runs merged, 8 expected" in short.stderr
    missing = warren("merge", str(tmp_path / "nope"), "--report", str(tmp_path / "m"))
    assert missing.returncode == 2 and "nope/results.json: no such file" in missing.stderr
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "results.json").write_text("{}")
    bad = warren("merge", str(tmp_path / "bad"), "--report", str(tmp_path / "m"))
    assert bad.returncode == 2 and "not a Warren results file" in bad.stderr


@pytest.mark.parametrize(
    "shard, message",
    [
        ("3/2", "'3/2': K must be in 1..N"),
        ("0/2", "'0/2': K must be in 1..N"),
        ("1/0", "'1/0': K must be in 1..N and N >= 1"),
        ("half", "'half' is not K/N"),
    ],
)
def test_a_bad_shard_is_a_usage_error_naming_it(shard, message):
    out = warren("run", "--no-report", "--shard", shard)
    assert out.returncode == 2
    assert f"argument --shard: {message}" in out.stderr


def test_a_shard_with_no_runs_is_a_usage_error():
    out = warren("run", "--no-report", "-k", "publish.confirms-kill", "--shard", "2/3")
    assert out.returncode == 2 and "shard 2/3 has no runs: the selection has 1" in out.stderr


def test_dealing_is_round_robin_and_covers_every_item_once():
    items = list(range(10))
    hands = [deal(items, (k, 4)) for k in range(1, 5)]
    assert hands[0] == [0, 4, 8] and hands[3] == [3, 7]
    assert sorted(sum(hands, [])) == items
