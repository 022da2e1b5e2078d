"""Private real RabbitMQ nodes on loopback: the reference the simulator is compared with.

Theory of operation (measured recipe: ../shared/notes/real-rabbitmq.md). Each node runs
Debian's ``rabbitmq-server`` lib script directly (the /usr/sbin wrappers switch to the
``rabbitmq`` user and its cookie) as a child of this process, with everything private under
a work directory: HOME with its own ``.erlang.cookie``, mnesia and log folders, config files,
a pid file, free ports for AMQP and Erlang distribution, and its own epmd. Readiness is
proven on the wire: the port answers the AMQP protocol header with a connection.start
frame. ``stop`` ends only the processes this object started (the beam pid from the pid file,
its launcher, and the private epmd), by pid.

Faults on real nodes, with what a client sees (measured on RabbitMQ 3.10 / Erlang 25):
``kill`` (SIGKILL, ECONNRESET within ~15 ms), ``pause``/``resume`` (SIGSTOP/SIGCONT,
silence until heartbeats time out), ``stop_app``/``start_app`` (320 CONNECTION_FORCED,
accepting again ~1.4 s after start_app).

``RealRabbitNode(management=True)`` also enables the ``rabbitmq_management`` plugin on a
free loopback port (``management_url``, guest/guest), lowers
``collect_statistics_interval`` to :data:`MANAGEMENT_STATS_INTERVAL_MS` and samples every
second, so the API's queue depths and connection lists lag by about a second, not 5 s.
Readiness then also waits for the HTTP API to answer.
"""

from __future__ import annotations

import contextlib
import glob
import json
import os
import random
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import psutil

from broker_sim.urls import amqp_url
from scenarios.backends.base import BackendUnavailable
from scenarios.backends.netns import Lan

LOOPBACK = "127.0.0.1"
AMQP_HEADER = b"AMQP\x00\x00\x09\x01"
MANAGEMENT_STATS_INTERVAL_MS = 250  # RabbitMQ's default collect_statistics_interval: 5000
#: a log line's timestamp, before its level: "2026-12-03 11:54:52.09+00:00 [error] ..."
_LOG_PREFIX = re.compile(r"^\S+ \S+ (?=\[)")


class RabbitMQUnavailable(BackendUnavailable):
    """rabbitmq-server is not installed here, or a node could not start."""


def find_sbin() -> Path:
    """The lib folder's sbin (version found at run time, never hard-coded)."""
    found = sorted(glob.glob("/usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin"))
    if not found:
        raise RabbitMQUnavailable(
            "rabbitmq-server not found under /usr/lib/rabbitmq/lib/rabbitmq_server-*/sbin: "
            "apt-get install rabbitmq-server"
        )
    if shutil.which("erl") is None:
        raise RabbitMQUnavailable("erl not on PATH: apt-get install rabbitmq-server (erlang)")
    return Path(found[-1])


def free_port(low: int = 0, high: int = 0) -> int:
    """A port nobody listens on now: ephemeral, or drawn from [low, high)."""
    for _ in range(200):
        port = random.randrange(low, high) if low else 0
        with socket.socket() as s:
            try:
                s.bind((LOOPBACK, port))
            except OSError:
                continue
            return s.getsockname()[1]
    raise RabbitMQUnavailable(f"no free port in [{low}, {high})")


def wait_for_amqp(host: str, port: int, deadline: float, alive=None) -> bool:
    """True once ``port`` answers the protocol header with connection.start (class 10/10);
    False at ``deadline``, or as soon as ``alive()`` says the server process has exited."""
    while time.monotonic() < deadline and (alive is None or alive()):
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                s.sendall(AMQP_HEADER)
                s.settimeout(5)
                head = s.recv(11)
                if len(head) >= 11 and head[0] == 1 and head[7:11] == b"\x00\x0a\x00\x0a":
                    return True
        except OSError:
            pass
        time.sleep(0.25)
    return False


def wait_for_http(host: str, port: int, deadline: float) -> bool:
    """True once ``port`` answers an HTTP request with a status line."""
    request = f"GET /api/overview HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((host, port), timeout=2) as s:
                s.sendall(request.encode())
                s.settimeout(5)
                if s.recv(12).startswith(b"HTTP/1."):
                    return True
        except OSError:
            pass
        time.sleep(0.25)
    return False


class RealRabbitNode:
    """One private rabbitmq-server; the admin surface of scenarios.backends.base."""

    kind = "real"

    def __init__(
        self,
        workdir: Path | str,
        nodename: str | None = None,
        port: int | None = None,
        dist_port: int | None = None,
        epmd_port: int | None = None,
        home: Path | None = None,
        start_timeout: float = 90.0,
        management: bool = False,
        management_port: int | None = None,
        conf: str = "",
        rabbit_env: dict[str, int] | None = None,
        net_ticktime: int = 10,
        host: str = LOOPBACK,
        prefix: list[str] | None = None,
    ) -> None:
        self.sbin = find_sbin()
        self.net_ticktime = int(net_ticktime)  # Erlang's default 60; 10 to see a hung peer soon
        self.workdir = Path(workdir)
        suffix = "".join(random.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=6))
        self.host = host  # another address than loopback: a node in a network namespace
        self.prefix = list(prefix or [])  # e.g. ip netns exec NS: where the node runs
        self.name = nodename or f"warren-{suffix}@{'localhost' if host == LOOPBACK else host}"
        self.port = port or free_port()
        # The CLI uses DIST_PORT+10000..+10010: keep the whole range below 65535.
        self.dist_port = dist_port or free_port(20000, 45000)
        self.epmd_port = epmd_port or free_port(45000, 55000)
        self.home = home or self.workdir / "home"
        self.start_timeout = start_timeout
        self.management = management
        self.extra_conf = conf  # rabbitmq.conf lines (e.g. "consumer_timeout = 2000")
        self.rabbit_env = dict(rabbit_env or {})  # advanced.config: {rabbit, [...]} integers
        self.management_port = (management_port or free_port()) if management else None
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None
        self._log = None

    # -- URLs -----------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.amqp_url()

    def amqp_url(self, user: str = "guest", password: str = "guest", vhost: str = "/") -> str:
        return amqp_url(self.host, self.port, user, password, vhost)

    @property
    def management_url(self) -> str | None:
        """The management HTTP API's base URL (``.../api/overview``), when enabled."""
        if self.management_port is None:
            return None
        return f"http://{self.host}:{self.management_port}"

    # -- lifecycle ------------------------------------------------------------------------

    def _paths(self) -> dict[str, Path]:
        base = self.workdir / self.name.split("@")[0]
        return {
            "base": base,
            "mnesia": base / "mnesia",
            "log": base / "log",
            "conf": base / "rabbitmq.conf",
            "advanced": base / "advanced.config",
            "plugins": base / "enabled_plugins",
            "env": base / "rabbitmq-env.conf",
            "pid": base / "beam.pid",
        }

    def env(self) -> dict[str, str]:
        p = self._paths()
        env = {k: v for k, v in os.environ.items() if not k.startswith("RABBITMQ_")}
        env.update(
            HOME=str(self.home),
            RABBITMQ_NODENAME=self.name,
            RABBITMQ_NODE_IP_ADDRESS=self.host,
            RABBITMQ_NODE_PORT=str(self.port),
            RABBITMQ_DIST_PORT=str(self.dist_port),
            RABBITMQ_MNESIA_BASE=str(p["mnesia"]),
            RABBITMQ_LOG_BASE=str(p["log"]),
            RABBITMQ_ENABLED_PLUGINS_FILE=str(p["plugins"]),
            RABBITMQ_CONFIG_FILE=str(p["conf"]),
            RABBITMQ_ADVANCED_CONFIG_FILE=str(p["advanced"]),
            RABBITMQ_CONF_ENV_FILE=str(p["env"]),
            RABBITMQ_PID_FILE=str(p["pid"]),
            ERL_EPMD_PORT=str(self.epmd_port),
            ERL_EPMD_ADDRESS=self.host,
            ERL_CRASH_DUMP=str(p["log"] / "erl_crash.dump"),  # not in the caller's cwd
        )
        if self.host != LOOPBACK:  # node names with an address: rabbit@10.213.x.y
            env["RABBITMQ_USE_LONGNAME"] = "true"
        return env

    def _write_files(self) -> None:
        p = self._paths()
        for key in ("mnesia", "log"):
            p[key].mkdir(parents=True, exist_ok=True)
        self.home.mkdir(parents=True, exist_ok=True)
        cookie = self.home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text("WARREN" + "".join(random.choices("ABCDEFGHIJKLMNOP", k=20)))
            cookie.chmod(0o400)
        mode = cookie.stat().st_mode & 0o777
        if mode & 0o077:  # Erlang: "Cookie file ... must be accessible by owner only"
            raise RabbitMQUnavailable(
                f"the Erlang cookie {cookie} has mode {mode:04o}: Erlang accepts only a cookie "
                f"its owner alone can read (chmod 400 {cookie})"
            )
        conf = f"listeners.tcp.default = {self.host}:{self.port}\nloopback_users = none\n"
        if self.management:
            conf += (
                f"management.tcp.ip = {self.host}\n"
                f"management.tcp.port = {self.management_port}\n"
                f"collect_statistics_interval = {MANAGEMENT_STATS_INTERVAL_MS}\n"
                # the metrics collector samples at the shortest policy interval (5 s by
                # default, rabbitmq_management_agent's Makefile): once a second instead
                "management.sample_retention_policies.global.minute = 1\n"
                "management.sample_retention_policies.basic.minute = 1\n"
                "management.sample_retention_policies.detailed.10 = 1\n"
            )
        extra = self.extra_conf.rstrip("\n") + "\n" if self.extra_conf else ""
        p["conf"].write_text(conf + extra)
        rabbit = ", ".join(f"{{{k}, {int(v)}}}" for k, v in self.rabbit_env.items())
        apps = f"{{kernel, [{{net_ticktime, {self.net_ticktime}}}]}}" + (
            f", {{rabbit, [{rabbit}]}}" if rabbit else ""
        )
        p["advanced"].write_text(f"[{apps}].\n")
        p["plugins"].write_text("[rabbitmq_management].\n" if self.management else "[].\n")
        p["env"].write_text("")

    def start(self) -> RealRabbitNode:
        """Launch the node (again, after a kill: same data, so it rejoins its cluster)."""
        if self.proc is not None:  # reap the launcher of a killed node
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.proc.wait(timeout=10)
        self._write_files()
        self._check_ports_free()
        p = self._paths()
        self._log = open(p["log"] / "stdout.log", "ab")  # noqa: SIM115 (kept open while running)
        self.proc = subprocess.Popen(
            [*self.prefix, str(self.sbin / "rabbitmq-server")],
            env=self.env(),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        deadline = time.monotonic() + self.start_timeout
        alive = lambda: self.proc.poll() is None  # noqa: E731 (a node that exits fails at once)
        if not wait_for_amqp(self.host, self.port, deadline, alive) or not alive():
            tail = self.log_tail()
            why = f"exited ({self.proc.returncode})" if not alive() else (
                f"did not accept AMQP on port {self.port} within {self.start_timeout:.0f} s"
            )  # fmt: skip
            self.stop()
            raise RabbitMQUnavailable(f"rabbitmq-server {self.name} {why}; log tail: {tail}")
        if self.management_port is not None and not wait_for_http(
            self.host, self.management_port, deadline
        ):
            tail = self.log_tail()
            self.stop()
            raise RabbitMQUnavailable(
                f"rabbitmq-server {self.name}: the management API did not answer on port "
                f"{self.management_port} within {self.start_timeout:.0f} s; log tail: {tail}"
            )
        self.pid = int(p["pid"].read_text().strip())
        return self

    def _check_ports_free(self) -> None:
        """A port another process holds makes the node fail to boot after seconds with
        eaddrinuse deep in its log: say so before launching."""
        if self.host != LOOPBACK:  # a namespace's address: its ports are its own
            return
        ports = {"AMQP": self.port, "distribution": self.dist_port}
        if self.management_port:
            ports["management"] = self.management_port
        for what, port in ports.items():
            with socket.socket() as s:
                try:
                    s.bind((LOOPBACK, port))
                except OSError:
                    raise RabbitMQUnavailable(
                        f"the {what} port {port} on {LOOPBACK} is taken by another process: "
                        f"give rabbitmq-server {self.name} a free port (or stop that process)"
                    ) from None

    def log_tail(self, lines: int = 6) -> str:
        """The log lines that say why a node failed: its first error lines (the cause; a
        boot failure ends in pages of crash report) and then its last lines."""
        text = []
        for f in sorted(self._paths()["log"].glob("*.log")):
            text += [
                _LOG_PREFIX.sub("", line).strip()
                for line in f.read_text(errors="replace").splitlines()
            ]
        text = [line for line in text if line]
        errors = list(dict.fromkeys(line for line in text if line.startswith("[error]")))
        chosen = errors[: lines // 2] + [line for line in text[-lines:] if line not in errors]
        return " | ".join(chosen[:lines])

    def stop(self, timeout: float = 20.0) -> None:
        """Stop the node and its private epmd, by pid; idempotent."""
        _terminate(self._own_pids(), timeout)
        if self.proc is not None:
            try:
                self.proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._stop_epmd()
        if self._log is not None:
            self._log.close()
            self._log = None
        self.proc = None
        self.pid = None

    def _own_pids(self) -> list[int]:
        """The launcher, the beam (known once the node is ready) and, while it boots, every
        process of the launcher's own session (``start_new_session``: the beam is there
        before its pid file is read)."""
        pids = {pid for pid in (self.pid, self.proc.pid if self.proc else None) if pid}
        if self.proc is not None:
            for proc in psutil.process_iter(["pid"]):
                with contextlib.suppress(OSError, psutil.Error):
                    if os.getsid(proc.info["pid"]) == self.proc.pid:
                        pids.add(proc.info["pid"])
        return sorted(pids)

    def _stop_epmd(self) -> None:
        for proc in psutil.process_iter(["name", "cmdline", "environ"]):
            try:
                if proc.info["name"] != "epmd":
                    continue
                environ = proc.info["environ"] or {}
                if environ.get("ERL_EPMD_PORT") == str(self.epmd_port):
                    _terminate([proc.pid], 5)
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue

    def __enter__(self) -> RealRabbitNode:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- faults ---------------------------------------------------------------------------

    def kill(self) -> None:
        """SIGKILL the beam: clients see ECONNRESET."""
        if self.pid:
            os.kill(self.pid, signal.SIGKILL)

    def pause(self) -> None:
        if self.pid:
            os.kill(self.pid, signal.SIGSTOP)

    def resume(self) -> None:
        if self.pid:
            os.kill(self.pid, signal.SIGCONT)

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self, timeout: float = 60.0) -> None:
        self.ctl("start_app", timeout=timeout)
        wait_for_amqp(self.host, self.port, time.monotonic() + 30)

    # -- rabbitmqctl ----------------------------------------------------------------------

    def ctl(self, *args: str, timeout: float = 60.0, tool: str = "rabbitmqctl") -> str:
        cmd = [*self.prefix, str(self.sbin / tool), "-n", self.name, *args]
        try:
            done = subprocess.run(
                cmd,
                env=self.env(),
                capture_output=True,
                text=True,
                timeout=timeout,
                stdin=subprocess.DEVNULL,
            )
        except subprocess.TimeoutExpired:
            raise RuntimeError(f"{tool} {' '.join(args)} timed out after {timeout:.0f} s") from None
        if done.returncode != 0:
            raise RuntimeError(
                f"{tool} {' '.join(args)} failed ({done.returncode}): "
                f"{(done.stderr or done.stdout).strip()}"
            )
        return done.stdout

    def add_user(self, name: str, password: str, tags: tuple[str, ...] = ()) -> None:
        self.ctl("add_user", name, password)
        if tags:
            self.ctl("set_user_tags", name, *tags)

    def delete_user(self, name: str) -> None:
        self.ctl("delete_user", name)

    def add_vhost(self, name: str) -> None:
        self.ctl("add_vhost", name)

    def delete_vhost(self, name: str) -> None:
        self.ctl("delete_vhost", name)

    def set_permissions(self, user, vhost, configure=".*", write=".*", read=".*") -> None:
        self.ctl("set_permissions", "-p", vhost, user, configure, write, read)

    def clear_permissions(self, user: str, vhost: str) -> None:
        self.ctl("clear_permissions", "-p", vhost, user)

    def set_policy(self, vhost, name, pattern, definition, priority=0, apply_to="all") -> None:
        self.ctl("set_policy", "-p", vhost, "--priority", str(priority), "--apply-to",
                 apply_to, name, pattern, json.dumps(definition))  # fmt: skip

    def clear_policy(self, vhost: str, name: str) -> None:
        self.ctl("clear_policy", "-p", vhost, name)

    def set_vhost_limits(self, vhost: str, **limits: int) -> None:
        body = json.dumps({k.replace("_", "-"): int(v) for k, v in limits.items()})
        self.ctl("set_vhost_limits", "-p", vhost, body)

    def alarms(self) -> str:
        return self.ctl("eval", "rabbit_alarm:get_alarms().").strip()

    def set_memory_alarm(self, active: bool, timeout: float = 20.0) -> None:
        """Raise (watermark ~0) or clear (default 0.4) a memory alarm, and wait for it."""
        self.ctl("set_vm_memory_high_watermark", "0.000001" if active else "0.4")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if ("memory" in self.alarms()) == active:
                return
            time.sleep(0.2)
        raise RuntimeError(f"memory alarm did not become {'set' if active else 'clear'}")


class RealRabbitCluster:
    """N private nodes joined into one cluster (stop_app, join_cluster, start_app).

    ``netns=True`` runs each node in a network namespace of its own on a private bridge
    (scenarios.backends.netns, root only), so that :meth:`partition` can cut nodes from each
    other with iptables while clients on the host still reach every node."""

    kind = "real"

    def __init__(
        self,
        nodes: int,
        workdir: Path | str,
        start_timeout: float = 120.0,
        net_ticktime: int = 10,
        conf: str = "",
        netns: bool = False,
    ) -> None:
        workdir = Path(workdir)
        home = workdir / "home"
        epmd = free_port(45000, 55000)
        suffix = "".join(random.choices("abcdefghijklmnopqrstuvwxyz", k=5))
        self.lan = Lan(nodes) if netns else None
        self.nodes = [
            RealRabbitNode(
                workdir,
                nodename=f"warren-{suffix}{i + 1}@{self.lan.ips[i] if self.lan else 'localhost'}",
                home=home,
                epmd_port=epmd,
                dist_port=free_port(20000 + i * 1000, 20000 + (i + 1) * 1000),
                start_timeout=start_timeout,
                net_ticktime=net_ticktime,
                conf=conf,
                host=self.lan.ips[i] if self.lan else LOOPBACK,
                prefix=self.lan.prefix(i) if self.lan else None,
            )
            for i in range(nodes)
        ]

    @property
    def urls(self) -> list[str]:
        return [n.url for n in self.nodes]

    def start(self) -> RealRabbitCluster:
        try:
            if self.lan is not None:
                self.lan.create()
            for node in self.nodes:
                node.start()
            for node in self.nodes[1:]:
                node.ctl("stop_app")
                node.ctl("join_cluster", self.nodes[0].name)
                node.start_app()
        except RuntimeError as exc:  # a CLI call that failed or timed out: one line
            self.stop()
            if isinstance(exc, BackendUnavailable):
                raise
            raise RabbitMQUnavailable(f"the {len(self.nodes)}-node cluster did not form: {exc}")
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        for node in reversed(self.nodes):
            node.stop()
        # the shared epmd again: a node stopping after the first one's epmd went can have
        # started it anew (seen after a run of warren run --backend local)
        self.nodes[0]._stop_epmd()
        if self.lan is not None:
            self.lan.destroy()

    def partition(self, groups: list[list[int]]) -> None:
        """Cut the nodes of each group (indexes) from every other node (netns=True only).

        The packets are dropped, and each node also closes its Erlang distribution links to
        the nodes cut from it (``erlang:disconnect_node/1``), so each side sees the other
        down at once, as the simulated cluster models; dropped packets alone would be
        noticed only after ``net_ticktime`` (45-75 s by default)."""
        if self.lan is None:
            raise ValueError("partitions need a cluster started with netns=True")
        pairs = self.lan.cut(groups)
        threads = []
        for i in sorted({i for i, _ in pairs}):
            peers = ",".join(f"'{self.nodes[j].name}'" for k, j in pairs if k == i)
            code = f"[erlang:disconnect_node(N) || N <- [{peers}]]."
            thread = threading.Thread(target=self.nodes[i].ctl, args=("eval", code), daemon=True)
            thread.start()
            threads.append(thread)
        for thread in threads:
            thread.join(timeout=60)

    def heal(self) -> None:
        if self.lan is not None:
            self.lan.heal()

    def __enter__(self) -> RealRabbitCluster:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _terminate(pids: list[int], timeout: float) -> None:
    """SIGTERM, wait, then SIGKILL: only the given pids."""
    procs = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            proc.send_signal(signal.SIGCONT)  # a paused node cannot handle SIGTERM
            proc.terminate()
            procs.append(proc)
        except psutil.NoSuchProcess:
            continue
    _gone, alive = psutil.wait_procs(procs, timeout=timeout)
    for proc in alive:
        try:
            proc.kill()
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(alive, timeout=5)
