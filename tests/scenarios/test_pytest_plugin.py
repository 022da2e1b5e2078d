"""The pytest plugin (scenarios.pytest_plugin) as a downstream project meets it: inner pytest
sessions (pytester) with the plugin loaded from its pytest11 entry point."""

from __future__ import annotations

import threading

import psutil
import pytest

pytest_plugins = ["pytester"]

KOMBU_THROUGH_A_KILL = """
import kombu, pytest

QUEUE = kombu.Queue("jobs", routing_key="jobs", queue_arguments={"x-queue-type": "quorum"})

def publisher(warren, sent):
    with kombu.Connection(warren.url, transport_options={"confirm_publish": True}) as conn:
        producer = conn.Producer()
        for n in range(20):
            producer.publish({"n": n}, routing_key="jobs", declare=[QUEUE], retry=True,
                             retry_policy={"max_retries": None, "interval_start": 0.2})
            sent.append(n)
            warren.sleep(0.2)

def consumer(warren, got):
    with kombu.Connection(warren.url, heartbeat=4) as conn:
        def on_message(body, message):
            got.append(body["n"])
            message.ack()
        consumer = kombu.Consumer(conn, [QUEUE], callbacks=[on_message])
        def revive(channel):
            consumer.revive(channel)
            consumer.consume()
        conn.ensure(conn, consumer.consume, max_retries=None)()
        def drain():
            while len(set(got)) < 20:
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    conn.heartbeat_check()
        conn.ensure(conn, drain, on_revive=revive, max_retries=None)()

@pytest.mark.warren(backend="virtual", nodes=3)
def test_kombu_survives_a_kill(warren):
    sent, got = [], []
    warren.spawn("publisher", publisher, warren, sent)
    warren.spawn("consumer", consumer, warren, got)
    warren.at(1.5, "kill", "node1")
    warren.run(until=60)
    assert sorted(set(got)) == list(range(20))
    assert warren.figures()["lost"] == 0
"""


def test_a_kombu_test_runs_in_virtual_time_with_the_fixture(pytester):
    pytester.makepyfile(KOMBU_THROUGH_A_KILL)
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=1)


def test_a_failure_shows_the_fault_schedule_the_seed_and_the_replay_command(pytester):
    pytester.makepyfile(
        KOMBU_THROUGH_A_KILL.replace(
            'assert warren.figures()["lost"] == 0', 'assert warren.figures()["reconnects"] == 0'
        )
    )
    result = pytester.runpytest_inprocess("-q", "--warren-seed", "5")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*- warren -*",
            "backend virtual, seed 5, 1 faults:",
            "*1.500 kill node1",
            "replay: pytest '*.py::test_kombu_survives_a_kill' --warren-backend virtual"
            " --warren-seed 5",
        ]
    )


@pytest.mark.parametrize(
    "marker, message",
    [
        ('backend="cloud"', "unknown backend 'cloud': one of virtual, live, local, docker"),
        ("nodes=0", "nodes must be an integer >= 1, got 0"),
        ("colour=1", "unexpected keyword argument 'colour'"),
    ],
)
def test_a_bad_marker_is_a_usage_error_at_collection_naming_the_test(pytester, marker, message):
    pytester.makepyfile(
        f"""
        import pytest

        @pytest.mark.warren({marker})
        def test_it(warren):
            pass
        """
    )
    result = pytester.runpytest_inprocess("-q")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([f"*test_it: @pytest.mark.warren: *{message}*"])


def test_an_unknown_backend_option_is_a_usage_error(pytester):
    pytester.makepyfile("def test_it():\n    pass\n")
    result = pytester.runpytest_inprocess("--warren-backend", "cloud")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--warren-backend: unknown backend 'cloud'*"])


def test_the_live_fixture_serves_urls_users_vhosts_and_toxiproxy_and_leaves_nothing_behind(
    pytester,
):
    pytester.makepyfile(
        """
        import urllib.parse
        import kombu, pytest, toxiproxy
        from toxiproxy.api import APIConsumer

        @pytest.mark.warren(nodes=2, users={"app": "secret"}, vhosts=("orders",))
        def test_live(warren, warren_toxiproxy_url, monkeypatch):
            with kombu.Connection(warren.amqp_url(1, "app", "secret", "orders")) as conn:
                conn.ensure_connection(max_retries=1)
            api = urllib.parse.urlparse(warren_toxiproxy_url)
            monkeypatch.setattr(APIConsumer, "host", api.hostname)
            monkeypatch.setattr(APIConsumer, "port", api.port)
            assert sorted(toxiproxy.Toxiproxy().proxies()) == ["node1", "node2"]
            warren.fault("kill", "node1")
            assert warren.schedule[0].endswith("kill node1")
        """
    )
    process = psutil.Process()
    threads_before = {t.ident for t in threading.enumerate()}
    listening_before = {c.laddr for c in process.net_connections() if c.status == "LISTEN"}
    result = pytester.runpytest_inprocess("-q")
    result.assert_outcomes(passed=1)
    assert {t.ident for t in threading.enumerate() if t.is_alive()} <= threads_before
    listening_after = {c.laddr for c in process.net_connections() if c.status == "LISTEN"}
    assert listening_after <= listening_before


# -- the catalog as pytest items ----------------------------------------------------------


def test_the_catalog_collects_as_items_one_per_scenario_and_seed(pytester):
    result = pytester.runpytest_inprocess(
        "--warren-catalog", "-K", "consume.mixin-kill", "--warren-seeds", "3", "-v"
    )
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*warren::consume.mixin-kill[[]1[]] PASSED*"])


def test_a_failing_catalog_item_says_what_it_missed_and_how_to_replay_it(pytester):
    pytester.makepyfile(
        deaf="""
        from scenarios.adapters.bundled import BundledAdapter

        class Deaf(BundledAdapter):
            name = "deaf"

            def consumer(self, env, spec):  # never consumes anything
                while not env.settled():
                    env.sleep(1)

        def factory():
            return Deaf()
        """
    )
    pytester.syspathinsert()
    result = pytester.runpytest_inprocess(
        "--warren-catalog", "-K", "publish.confirms-kill", "--warren-client", "deaf:factory"
    )
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "replay: warren replay --scenario publish.confirms-kill --seed 1 --client deaf:factory",
            "FAILED *warren::publish.confirms-kill[[]1[]] - fail: lost == 0: got 100",
        ]
    )


def test_pytest_xdist_spreads_the_catalog_over_two_workers(pytester):
    result = pytester.runpytest_subprocess(
        "--warren-catalog", "-K", "network.*", "--warren-seeds", "2", "-n", "2", "-p", "xdist"
    )
    result.assert_outcomes(passed=12)
    result.stdout.fnmatch_lines(["*2 workers*"])


def test_catalog_options_are_checked_before_anything_runs(pytester):
    result = pytester.runpytest_inprocess("--warren-catalog", "--warren-seeds", "0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--warren-seeds: must be >= 1*"])
    result = pytester.runpytest_inprocess("--warren-catalog", "--warren-client", "nope")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--warren-catalog: unknown client 'nope'*"])
