"""The Celery adapter (``--client celery:pkg.module:app``): the app's own worker process as
the consumer, the history from its signals, and one clear line for each bad input. The two
Celery failures it exposes are shown by examples/celery's own tests (test_celery_example.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scenarios import adapters, catalog
from scenarios.adapters import AdapterError
from scenarios.model import ConsumerSpec, Publisher, pipeline
from scenarios.runner import run_one

pytest.importorskip("celery")
pytestmark = pytest.mark.timeout(240)
PLAIN = "celery:tests.scenarios.celery_apps:plain"


def test_a_celery_worker_runs_every_confirmed_task_through_a_node_kill():
    result = run_one(catalog.find("publish.confirms-kill"), 1, adapters.load(PLAIN), "live")
    assert result.verdict == "pass", (result.misses, result.error, result.escaped)
    assert result.figures["confirmed"] == result.figures["delivered"] == 100
    kinds = {kind for _, kind, _ in result.events}
    assert {"worker_ready", "deliver", "processed", "ack"} <= kinds
    assert result.client == PLAIN


def test_the_virtual_backend_is_refused_with_the_backends_that_work():
    result = run_one(catalog.find("publish.confirms-kill"), 1, adapters.load(PLAIN), "virtual")
    assert result.verdict == "error"
    assert "runs on the live or local or docker backend" in result.error


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        ("celery:shop", "name the app as celery:package.module:attribute"),
        ("celery:no_such_pkg.worker:app", "module 'no_such_pkg.worker' does not import"),
        ("celery:tests.scenarios.celery_apps:nothing", "has no attribute 'nothing'"),
        ("celery:tests.scenarios.celery_apps:on_redis", "broker transport is 'redis'"),
    ],
)
def test_a_bad_app_is_one_line_naming_it(spec, says):
    with pytest.raises(AdapterError, match=None) as caught:
        adapters.load(spec)
    assert says in str(caught.value) and "\n" not in str(caught.value)


def test_a_worker_that_exits_is_escaped_with_the_tail_of_its_log():
    adapter = adapters.load(PLAIN + " --no-such-option")
    result = run_one(catalog.find("publish.confirms-kill"), 1, adapter, "live")
    assert result.figures["escaped"] == 1
    (escaped,) = result.escaped
    assert "exited with 2 before the run settled" in escaped
    assert "No such option '--no-such-option'" in escaped  # from the worker's log


def test_a_worker_that_will_not_stop_is_reported_hung_with_its_stack():
    """A task that outlasts the warm shutdown (SIGTERM waits for it): after STOP_GRACE s
    the worker gets SIGUSR1, and Celery's stack dump names the frame it is in."""
    stuck = pipeline(
        "celery.stuck-task",
        "a task that runs for two minutes",
        "the worker is reported hung, with its stack",
        publisher=Publisher(messages=1),
        consumer=ConsumerSpec(work_seconds=120.0),
        duration=45.0,
    )
    result = run_one(stuck, 1, adapters.load(PLAIN), "live")
    (escaped,) = result.escaped
    assert "hung: still running 15 s after SIGTERM" in escaped
    assert "time.sleep(work_seconds)" in escaped  # the frame in Celery's SIGUSR1 dump


def test_a_worker_dies_with_the_warren_process_that_started_it(tmp_path):
    """A run abandoned with its consumer role still running (or a Warren process killed)
    leaves no worker behind: the worker is started with PR_SET_PDEATHSIG."""
    import os
    import subprocess
    import sys
    import time

    script = tmp_path / "parent.py"
    script.write_text(
        "import subprocess, threading\n"
        "from scenarios.adapters.celery_adapter import _die_with_parent\n"
        "def start():\n"
        "    p = subprocess.Popen(['sleep', '60'], preexec_fn=_die_with_parent)\n"
        "    print(p.pid, flush=True)\n"
        "t = threading.Thread(target=start, daemon=True); t.start(); t.join()\n"
    )
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=30, cwd=os.getcwd())  # fmt: skip
    child = int(done.stdout.split()[0])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and os.path.exists(f"/proc/{child}"):
        time.sleep(0.05)
    status = Path(f"/proc/{child}/status")
    assert not status.exists() or "zombie" in status.read_text()
