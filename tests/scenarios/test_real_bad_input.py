"""Bad input to the real backends: one line saying what is wrong and how to fix it, and
nothing left running (issue 15's "Bad input")."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import psutil
import pytest

from scenarios.backends import local
from scenarios.backends.local import RabbitMQUnavailable, RealRabbitNode
from tests.conftest import IN_CI


@pytest.fixture
def sbin():
    try:
        return local.find_sbin()
    except RabbitMQUnavailable as exc:
        if IN_CI:
            pytest.fail(f"CI=true and rabbitmq-server is not installed: {exc}")
        pytest.skip(str(exc))


def beams_under(path) -> list[int]:
    """Pids of beam processes whose command line names ``path`` (ours alone)."""
    found = []
    for proc in psutil.process_iter(["cmdline"]):
        if any(str(path) in part for part in proc.info["cmdline"] or ()):
            found.append(proc.pid)
    return found


def test_rabbitmq_server_missing_is_one_line_from_warren_run(tmp_path):
    """No rabbitmq-server: `warren run --backend local` exits 2 with what to install."""
    code = (
        "import sys, glob\n"
        "real = glob.glob\n"
        "glob.glob = lambda p, *a, **k: [] if 'rabbitmq_server' in p else real(p, *a, **k)\n"
        "from scenarios.cli import main\n"
        "sys.exit(main(['run', '--backend', 'local', '-k', 'publish.confirms-kill',\n"
        f"               '--report', {str(tmp_path)!r}]))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)  # fmt: skip
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert lines == [
        "warren run: the local backend cannot start: rabbitmq-server not found under "
        "/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin: apt-get install rabbitmq-server"
    ]


def test_a_taken_port_is_named_before_the_node_is_launched(sbin, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        node = RealRabbitNode(tmp_path, port=port)
        taken_by = rf"the AMQP port {port} on 127\.0\.0\.1 is taken by another process: give"
        with pytest.raises(RabbitMQUnavailable, match=taken_by):
            node.start()
    assert node.proc is None and beams_under(tmp_path) == []


def test_a_cookie_others_can_read_is_refused_with_the_fix(sbin, tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    cookie = home / ".erlang.cookie"
    cookie.write_text("SECRETCOOKIE")
    cookie.chmod(0o644)
    node = RealRabbitNode(tmp_path, home=home)
    with pytest.raises(RabbitMQUnavailable, match=rf"cookie {cookie} has mode 0644: .*"
                       rf"\(chmod 400 {cookie}\)"):  # fmt: skip
        node.start()
    assert node.proc is None


def test_a_node_that_will_not_boot_fails_at_once_with_its_log_tail(sbin, tmp_path):
    """A config rabbitmq-server rejects: the error comes when the node exits (not after the
    start timeout) and carries the log's tail; nothing of it is left running."""
    node = RealRabbitNode(tmp_path, conf="no_such_setting_at_all = 1", start_timeout=120)
    with pytest.raises(RabbitMQUnavailable) as caught:
        node.start()
    message = str(caught.value)
    assert f"rabbitmq-server {node.name} exited" in message
    assert "no_such_setting_at_all" in message  # the tail says which line is wrong
    assert beams_under(tmp_path) == []


def test_sigterm_while_the_cluster_boots_leaves_nothing_running(sbin, tmp_path):
    """`warren run --backend local` stopped (SIGTERM) while its nodes boot: every process
    it started is stopped, and its namespaces and bridge are gone."""
    code = (
        "import sys\n"
        "from scenarios.backends import local_run\n"
        "print('starting', flush=True)\n"
        "local_run.shared_target(3, 60)\n"
    )
    before = namespaces()
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "starting"
    deadline = time.monotonic() + 60
    while not beams_of(proc.pid) and time.monotonic() < deadline:  # a node is booting
        time.sleep(0.2)
    assert beams_of(proc.pid), "no node started within 60 s"
    started = beams_of(proc.pid)
    proc.terminate()
    assert proc.wait(timeout=120) != 0
    assert [pid for pid in started if psutil.pid_exists(pid)] == []
    assert namespaces() - before == set()


def namespaces() -> set[str]:
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    return {line.split()[0] for line in names.splitlines() if line.startswith("warren-")}


def beams_of(parent: int) -> list[int]:
    """The rabbitmq-server launchers and beams under ``parent`` (new sessions included:
    found through the launcher's parent)."""
    try:
        children = psutil.Process(parent).children(recursive=True)
    except psutil.NoSuchProcess:
        return []
    return [c.pid for c in children if c.name() in ("beam.smp", "rabbitmq-server")]
