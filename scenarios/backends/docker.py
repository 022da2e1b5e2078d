"""Real RabbitMQ nodes in Docker containers, behind Warren's Toxiproxy-compatible proxy.

Theory of operation (measured recipe: ../shared/notes/docker.md; same style as
:mod:`scenarios.backends.local`). :class:`DockerCluster` drives the engine with the ``docker``
SDK. ``start()`` reuses an engine that answers ``ping()``, else launches ``dockerd`` with
``setsid`` as a child (stopped by its pid in ``close()``, and only then). It builds the
offline images with ``compose/offline/build.sh`` (debootstrap base, Debian's
``rabbitmq-server``, ``warren proxy``; cached by an inputs-hash label), creates a network with
an explicit subnet of its own (172.30.X.0/24), a proxy container (API and one listener per
node published on 127.0.0.1, proxies ``node1``..``nodeN`` created over the Toxiproxy HTTP API),
node 1, and once node 1 answers the AMQP header with connection.start, nodes 2..N. Each node
is clustered by classic-config peer discovery, ``pause_minority``, ``net_ticktime`` 10. Every
object it creates carries the label ``org.warren.project=<project>``, and ``close()`` removes
only those, by id.

Faults (node index ``i`` counts from 0), and what a client sees:

=================  ==========================================================================
kill(i)            ``docker kill`` (SIGKILL): connections reset at once
stop(i)            ``docker stop`` (SIGTERM via tini): 320 CONNECTION_FORCED, then close
start(i)           ``docker start``, then wait until the node answers AMQP again
restart(i)         ``docker restart`` (unpauses first), then wait
pause(i)           ``docker pause`` (cgroup freezer): silence until heartbeats time out. Longer
                   than ~0.75 x net_ticktime and the cluster sees the node down; under
                   pause_minority it then stays partitioned after ``resume`` until restarted
                   (``reset`` does that)
resume(i)          ``docker unpause``
partition(groups)  every node of every group but the largest (the first of equal ones) is
                   disconnected from the project network: it loses all its peers, the proxy
                   (clients through ``urls`` see silence) and its published port (clients on
                   ``direct_urls`` are closed by docker-proxy). Nodes in no group stay with
                   the largest. With net_ticktime 10 the cut is seen after 10-12.5 s and the
                   minority pauses itself (pause_minority).
heal()             reconnect them (same address and alias); the cluster heals in 0.5-4 s
set_memory_alarm   ``rabbitmqctl set_vm_memory_high_watermark`` ~0 / 0.4: connection.blocked
toxics             the Toxiproxy API at ``toxiproxy_url`` (``toxiproxy()``, ``down``, ``up``)
=================  ==========================================================================

Measured with ``bench/docker_backend.py`` on this project's 2-core shared machine (Docker
20.10.24, RabbitMQ 3.10.8 / Erlang 25, net_ticktime 10), "client" being a kombu connection
(heartbeat 2) through the proxy of the faulted node:

=================================  ====================================================
dockerd started here / reused      ~0.6 s / 0.15 s (``ping``)
images cold / warm                 102 s (debootstrap, rabbitmq, proxy) / 0.7 s (labels)
node 1 ready / 3 nodes + proxies   8.2-8.7 s / 18-22 s (node 1 first, then 2..N together)
kill(i)                            call 0.24 s; the client's OSError is there when it returns;
                                   start(i) ready again in 6-7.5 s
stop(i)                            call 1.3 s; ConnectionForced (320) by then; start(i) 6 s
pause(i) / resume(i)               0.03-0.07 s / 0.02 s; 3 s of pause is not seen by peers
partition / heal                   call 0.13 s, the client's missed heartbeats after 4.2 s /
                                   0.05 s; ``reset()`` after it 5.6-6.5 s
reset() after a 14 s pause         9.5-13 s (the node is restarted); with nothing to undo 3 s
set_memory_alarm on / off          1.5-1.9 s (rabbitmqctl in the container, then a poll)
close()                            1.3 s (+2.3 s to stop a dockerd it started)
=================================  ====================================================
"""

from __future__ import annotations

import io
import json
import os
import random
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

from broker_sim.urls import amqp_url
from scenarios.backends.base import BackendUnavailable
from scenarios.backends.local import free_port, wait_for_amqp

LOOPBACK = "127.0.0.1"
LABEL = "org.warren.project"
RABBITMQ_IMAGE = "warren/rabbitmq:offline"
PROXY_IMAGE = "warren/proxy:offline"
PROXY_LISTEN_BASE = 25670  # inside the proxy container: nodeN listens on 0.0.0.0:25670+N
API_PORT = 8474
COMPOSE_DIR = Path(__file__).resolve().parents[2] / "compose"


class DockerUnavailable(BackendUnavailable):
    """No Docker engine could be reached or started, an image did not build, or a container
    never became ready. The message is one line saying what and, where known, a log tail."""


def _tail(text: str, lines: int = 12) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())


def _sdk():
    try:
        import docker
    except ImportError:
        raise DockerUnavailable("the docker Python SDK is not installed: pip install docker")
    return docker


class DockerCluster:
    """N clustered RabbitMQ containers and a proxy container, private to ``project``."""

    kind = "docker"

    def __init__(
        self,
        nodes: int = 3,
        project: str | None = None,
        net_ticktime: int = 10,
        start_timeout: float = 120.0,
        rabbitmq_image: str = RABBITMQ_IMAGE,
        proxy_image: str = PROXY_IMAGE,
        build: bool = True,
    ) -> None:
        if nodes < 1:
            raise ValueError(f"nodes must be >= 1, got {nodes}")
        suffix = "".join(random.choices("abcdefghijklmnopqrstuvwxyz0123456789", k=6))
        self.project = project or f"warren-{suffix}"
        self.size = nodes
        self.net_ticktime = net_ticktime
        self.start_timeout = start_timeout
        self.rabbitmq_image, self.proxy_image, self.build = rabbitmq_image, proxy_image, build
        self.hosts = [f"rmq{i + 1}" for i in range(nodes)]
        self.nodes = [f"rabbit@{h}" for h in self.hosts]
        self.proxies = [f"node{i + 1}" for i in range(nodes)]
        self.cookie = "WARREN" + "".join(random.choices("ABCDEFGHIJKLMNOPQRSTUVWXYZ", k=24))
        self.client = None
        self.network = None
        self.containers: list = []  # the node containers, by index
        self.proxy = None
        self.ports: list[int] = []
        self.proxy_ports: list[int] = []
        self.api_port = 0
        self.subnet = ""
        self.timings: dict[str, float] = {}
        self.dockerd: subprocess.Popen | None = None
        self._workdir: str | None = None
        self._paused_at: dict[int, float] = {}
        self._needs_restart: set[int] = set()
        self._cut: dict[int, str] = {}  # disconnected node -> its address on the network
        self._alarms: set[int] = set()

    # -- URLs -------------------------------------------------------------------------------

    @property
    def urls(self) -> list[str]:
        """amqp:// through the proxy ``nodeN`` (toxics apply), one per node."""
        return [amqp_url(LOOPBACK, p) for p in self.proxy_ports]

    @property
    def direct_urls(self) -> list[str]:
        return [amqp_url(LOOPBACK, p) for p in self.ports]

    @property
    def toxiproxy_url(self) -> str:
        return f"http://{LOOPBACK}:{self.api_port}"

    def url(self, i: int, vhost: str = "/", direct: bool = False) -> str:
        return amqp_url(LOOPBACK, (self.ports if direct else self.proxy_ports)[i], vhost=vhost)

    # -- lifecycle --------------------------------------------------------------------------

    def __enter__(self) -> DockerCluster:
        return self._start_cluster()

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _start_cluster(self) -> DockerCluster:
        t0 = time.monotonic()
        try:
            self._engine()
            self.timings["engine"] = time.monotonic() - t0
            self._images()
            self.timings["images"] = time.monotonic() - t0 - self.timings["engine"]
            t1 = time.monotonic()
            self._create_network()
            self._create_proxy()
            self.containers = [self._create_node(i) for i in range(self.size)]
            self.containers[0].start()
            self._wait_ready(0, time.monotonic() + self.start_timeout)
            self.timings["node1"] = time.monotonic() - t1
            for c in self.containers[1:]:
                c.start()
            deadline = time.monotonic() + self.start_timeout
            for i in range(1, self.size):
                self._wait_ready(i, deadline)
            self._wait_cluster(deadline)
            self._create_proxies(deadline)
            self.timings["cluster"] = time.monotonic() - t1
        except BaseException as exc:
            self.close()
            if isinstance(exc, _sdk().errors.DockerException):
                text = getattr(exc, "explanation", None) or exc
                raise DockerUnavailable(f"docker: {_tail(str(text), 3)}") from None
            raise
        return self

    @staticmethod
    def _answering_client():
        """A client of the engine that answers a ping now, or None."""
        try:
            client = _sdk().from_env(timeout=30)
            client.ping()
            return client
        except DockerUnavailable:
            raise
        except Exception:
            return None

    def _engine(self) -> None:
        self.client = self._answering_client()
        if self.client is not None:
            return
        dockerd = shutil.which("dockerd")
        if dockerd is None:
            raise DockerUnavailable(
                "no Docker engine answers and dockerd is not installed: apt-get install docker.io"
            )
        if os.geteuid() != 0:
            raise DockerUnavailable("no Docker engine answers, and starting dockerd needs root")
        self._workdir = tempfile.mkdtemp(prefix="warren-dockerd-")
        log_path = Path(self._workdir) / "dockerd.log"
        with open(log_path, "ab") as log:
            self.dockerd = subprocess.Popen(
                [dockerd],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # setsid: its own session, stopped by pid in close()
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.dockerd.poll() is not None:
                break
            self.client = self._answering_client()
            if self.client is not None:
                return
            time.sleep(0.2)
        raise DockerUnavailable(
            f"dockerd did not answer within 30 s (exit {self.dockerd.poll()}); log tail: "
            f"{_tail(log_path.read_text(errors='replace'), 6)}"
        )

    def _images(self) -> None:
        script = Path(os.environ.get("WARREN_COMPOSE_DIR", COMPOSE_DIR)) / "offline" / "build.sh"
        defaults = (self.rabbitmq_image, self.proxy_image) == (RABBITMQ_IMAGE, PROXY_IMAGE)
        if self.build and defaults and script.exists():
            try:
                done = subprocess.run(
                    ["bash", str(script)],
                    capture_output=True,
                    text=True,
                    timeout=1200,
                    stdin=subprocess.DEVNULL,
                )
            except subprocess.TimeoutExpired:
                raise DockerUnavailable(f"{script} did not finish within 20 min") from None
            if done.returncode != 0:
                raise DockerUnavailable(
                    f"building the images failed ({script}, exit {done.returncode}): "
                    f"{_tail(done.stdout + done.stderr)}"
                )
        for image in (self.rabbitmq_image, self.proxy_image):
            try:
                self.client.images.get(image)
            except Exception:
                raise DockerUnavailable(
                    f"image {image} is missing and {script} is not there to build it: run from "
                    "a Warren checkout or set WARREN_COMPOSE_DIR to its compose/ folder"
                ) from None

    def _create_network(self) -> None:
        used = set()
        for net in self.client.networks.list():
            for cfg in (net.attrs.get("IPAM") or {}).get("Config") or []:
                used.add(cfg.get("Subnet"))
        start = random.randrange(256)
        for k in range(256):
            subnet = f"172.30.{(start + k) % 256}.0/24"
            if subnet in used:
                continue
            ipam = _sdk().types.IPAMConfig(pool_configs=[_sdk().types.IPAMPool(subnet=subnet)])
            try:
                self.network = self.client.networks.create(
                    f"{self.project}-net", driver="bridge", ipam=ipam, labels={LABEL: self.project}
                )
            except _sdk().errors.APIError as exc:
                if "overlap" in str(exc).lower():
                    continue
                raise DockerUnavailable(f"docker network create failed: {exc}") from None
            self.subnet = subnet
            return
        raise DockerUnavailable("no free /24 in 172.30.0.0/16 for the project network")

    def _endpoint(self, alias: str) -> dict:
        return {self.network.name: self.client.api.create_endpoint_config(aliases=[alias])}

    def _create_proxy(self) -> None:
        self.api_port = free_port()
        self.proxy_ports = [free_port() for _ in range(self.size)]
        ports = {f"{API_PORT}/tcp": (LOOPBACK, self.api_port)}
        for i, port in enumerate(self.proxy_ports):
            ports[f"{PROXY_LISTEN_BASE + i + 1}/tcp"] = (LOOPBACK, port)
        self.proxy = self.client.containers.create(
            self.proxy_image,
            name=f"{self.project}-proxy",
            hostname="proxy",
            init=True,
            ports=ports,
            labels={LABEL: self.project},
            network=self.network.name,
            networking_config=self._endpoint("proxy"),
        )
        self.proxy.start()

    def _create_proxies(self, deadline: float) -> None:
        while True:
            try:
                self.toxiproxy("GET", "/version")
                break
            except OSError:
                if time.monotonic() > deadline:
                    raise DockerUnavailable(
                        f"the proxy API on {self.toxiproxy_url} never answered; docker logs "
                        f"tail: {self._logs(self.proxy)}"
                    ) from None
                time.sleep(0.2)
        for i, name in enumerate(self.proxies):
            listen = f"0.0.0.0:{PROXY_LISTEN_BASE + i + 1}"
            body = {"name": name, "listen": listen, "upstream": f"{self.hosts[i]}:5672"}
            self.toxiproxy("POST", "/proxies", body | {"enabled": True})
        for i, port in enumerate(self.proxy_ports):
            if not wait_for_amqp(LOOPBACK, port, deadline):
                raise DockerUnavailable(f"proxy {self.proxies[i]} (127.0.0.1:{port}) never ready")

    def _config(self) -> bytes:
        peers = "".join(
            f"cluster_formation.classic_config.nodes.{i + 1} = {n}\n"
            for i, n in enumerate(self.nodes)
        )
        conf = (
            "loopback_users = none\nlisteners.tcp.default = 5672\n"
            "cluster_formation.peer_discovery_backend = classic_config\n"
            f"{peers}cluster_formation.discovery_retry_limit = 3\n"
            "cluster_formation.discovery_retry_interval = 500\n"
            "cluster_partition_handling = pause_minority\n"
        )
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w") as tar:
            for name, data in (("rabbitmq.conf", conf.encode()), ("enabled_plugins", b"[].\n")):
                info = tarfile.TarInfo(name)
                info.size, info.mode, info.mtime = len(data), 0o644, int(time.time())
                tar.addfile(info, io.BytesIO(data))
        return buf.getvalue()

    def _create_node(self, i: int):
        port = free_port()
        self.ports.append(port)
        container = self.client.containers.create(
            self.rabbitmq_image,
            name=f"{self.project}-{self.hosts[i]}",
            hostname=self.hosts[i],
            init=True,
            environment={
                "COOKIE": self.cookie,
                "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": f"-kernel net_ticktime {self.net_ticktime}",
            },
            ports={"5672/tcp": (LOOPBACK, port)},
            labels={LABEL: self.project},
            network=self.network.name,
            networking_config=self._endpoint(self.hosts[i]),
        )
        container.put_archive("/etc/rabbitmq", self._config())
        return container

    def _logs(self, container, lines: int = 12) -> str:
        try:
            return _tail(container.logs(tail=lines).decode(errors="replace"), lines)
        except Exception as exc:
            return f"(no logs: {exc})"

    def _wait_ready(self, i: int, deadline: float) -> None:
        """Until node ``i`` answers the AMQP header with connection.start on its port."""
        container = self.containers[i]
        while True:
            if wait_for_amqp(LOOPBACK, self.ports[i], min(deadline, time.monotonic() + 2)):
                return
            container.reload()
            if container.status == "exited" or time.monotonic() > deadline:
                raise DockerUnavailable(
                    f"{container.name} did not answer AMQP on 127.0.0.1:{self.ports[i]} "
                    f"(status {container.status}); docker logs tail: {self._logs(container)}"
                )

    def _wait_cluster(self, deadline: float) -> None:
        while True:
            status = self.cluster_status(0)
            if status and len(status.get("running_nodes", [])) == self.size:
                return
            if time.monotonic() > deadline:
                raise DockerUnavailable(
                    f"the cluster did not form (running: {status and status['running_nodes']}); "
                    f"docker logs tail of {self.containers[-1].name}: "
                    f"{self._logs(self.containers[-1])}"
                )
            time.sleep(0.5)

    def close(self, stop_engine: bool = True) -> None:
        """Remove every container and the network of this project, and stop dockerd if this
        object started it (``stop_engine=False`` keeps it for a later ``close()``)."""
        if self.client is not None:
            mine = {c.id: c for c in [*self.containers, self.proxy] if c is not None}
            try:
                for c in self.client.containers.list(all=True, filters={"label": self._label}):
                    mine.setdefault(c.id, c)
            except Exception:
                pass
            for c in mine.values():
                try:
                    c.remove(force=True, v=True)
                except Exception:
                    pass
            try:
                nets = self.client.networks.list(filters={"label": self._label})
                for net in {n.id: n for n in [*nets, self.network] if n is not None}.values():
                    net.remove()
            except Exception:
                pass
            self.client.close()
        self.containers, self.proxy, self.network, self.client = [], None, None, None
        if self.dockerd is not None and stop_engine:
            self.dockerd.send_signal(signal.SIGTERM)
            try:
                self.dockerd.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.dockerd.kill()
                self.dockerd.wait(timeout=10)
            self.dockerd = None
        if self._workdir is not None and self.dockerd is None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    @property
    def _label(self) -> str:
        return f"{LABEL}={self.project}"

    # -- faults -----------------------------------------------------------------------------

    def kill(self, i: int) -> None:
        self.containers[i].kill()

    def stop(self, i: int, timeout: int = 10) -> None:
        self.containers[i].stop(timeout=timeout)

    def start(self, i: int | None = None, timeout: float = 60.0) -> DockerCluster:
        """``start()`` brings the cluster up; ``start(i)`` starts node ``i``'s container and
        waits until it answers AMQP again."""
        if i is None:
            return self._start_cluster()
        self.containers[i].start()
        self._wait_ready(i, time.monotonic() + timeout)
        return self

    def restart(self, i: int, timeout: float = 60.0) -> None:
        container = self.containers[i]
        container.reload()
        if container.status == "paused":
            container.unpause()
        container.restart(timeout=10)
        self._paused_at.pop(i, None)
        self._needs_restart.discard(i)
        self._wait_ready(i, time.monotonic() + timeout)

    def pause(self, i: int) -> None:
        self.containers[i].pause()
        self._paused_at[i] = time.monotonic()

    def resume(self, i: int) -> None:
        self.containers[i].unpause()
        since = self._paused_at.pop(i, None)
        if since is not None and time.monotonic() - since >= 0.7 * self.net_ticktime:
            self._needs_restart.add(i)  # may have been seen down: pause_minority keeps it out

    def partition(self, groups: list[list[int]]) -> None:
        seen = [i for g in groups for i in g]
        if len(seen) != len(set(seen)) or any(not 0 <= i < self.size for i in seen):
            raise ValueError(f"groups must be disjoint node indices < {self.size}: {groups}")
        if not groups:
            return
        keep = max(range(len(groups)), key=lambda k: len(groups[k]))  # the first largest
        for k, group in enumerate(groups):
            if k == keep:
                continue
            for i in group:
                if i in self._cut:
                    continue
                container = self.containers[i]
                container.reload()
                nets = container.attrs["NetworkSettings"]["Networks"]
                self._cut[i] = nets[self.network.name]["IPAddress"]
                self.network.disconnect(container, force=True)

    def heal(self) -> None:
        for i, address in sorted(self._cut.items()):
            self.network.connect(
                self.containers[i], aliases=[self.hosts[i]], ipv4_address=address or None
            )
        self._cut.clear()

    def set_memory_alarm(self, i: int, active: bool, timeout: float = 20.0) -> None:
        """Raise (watermark ~0) or clear (0.4, the default) node ``i``'s memory alarm."""
        self.ctl(i, "set_vm_memory_high_watermark", "0.000001" if active else "0.4")
        (self._alarms.add if active else self._alarms.discard)(i)
        mark = f"memory,{self.nodes[i]}}}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            alarms = self.ctl(i, "eval", "rabbit_alarm:get_alarms().").replace(" ", "")
            if (mark in alarms) == active:
                return
            time.sleep(0.2)
        raise RuntimeError(f"memory alarm on {self.nodes[i]} did not become {active}")

    # -- reset ------------------------------------------------------------------------------

    def reset(self, timeout: float = 120.0) -> None:
        """Undo every fault: unpause, reconnect, start stopped nodes, clear alarms, remove
        toxics and enable proxies (Toxiproxy ``POST /reset``), restart nodes left outside the
        cluster, and wait until all N nodes run with no partition."""
        deadline = time.monotonic() + timeout
        for i in list(self._paused_at):
            self.resume(i)
        self.heal()
        self.proxy.reload()
        if self.proxy.status != "running":
            self.proxy.restart()
        for c in self.containers:
            c.reload()
            if c.status == "paused":
                c.unpause()
            elif c.status != "running":
                c.start()
        for i in sorted(self._needs_restart):
            self.restart(i)
        for i in range(self.size):
            self._wait_ready(i, deadline)
        for i in sorted(self._alarms):
            self.set_memory_alarm(i, False)
        settle = time.monotonic() + 10  # a reconnected minority heals itself in 0.5-4 s
        while True:
            outside = self._outsiders()
            if not outside:
                break
            if time.monotonic() > settle:
                for i in outside:
                    self.restart(i)
                settle = time.monotonic() + 20
            if time.monotonic() > deadline:
                raise RuntimeError(f"reset: {[self.nodes[i] for i in outside]} stay outside")
            time.sleep(0.5)
        if not self._proxies_exist():  # the proxy container was restarted: recreate them
            self._create_proxies(deadline)
        self.toxiproxy("POST", "/reset")

    def _outsiders(self) -> list[int]:
        """Nodes not running in the cluster as the majority sees it, or in a partition."""
        views = [self.cluster_status(i, timeout=15) for i in range(self.size)]
        votes = [0] * self.size
        for view in views:
            if not view:
                continue
            running = set(view.get("running_nodes", []))
            parted = {n for ns in (view.get("partitions") or {}).values() for n in ns}
            for i, node in enumerate(self.nodes):
                votes[i] += node in running and node not in parted
        return [i for i in range(self.size) if votes[i] * 2 <= self.size or not views[i]]

    def _proxies_exist(self) -> bool:
        return set(self.proxies) <= set(self.toxiproxy("GET", "/proxies") or {})

    # -- rabbitmqctl and the Toxiproxy API --------------------------------------------------

    def ctl(self, i: int, *args: str, timeout: float = 30.0) -> str:
        """``rabbitmqctl ARGS`` inside node ``i``'s container (bounded by coreutils timeout)."""
        rc, out = self.containers[i].exec_run(["timeout", str(int(timeout)), "rabbitmqctl", *args])
        text = out.decode(errors="replace")
        if rc != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.nodes[i]}: {_tail(text)}")
        return text

    def cluster_status(self, i: int, timeout: float = 15.0) -> dict | None:
        """Node ``i``'s ``cluster_status`` as JSON, or None (down, paused, or not JSON)."""
        try:
            text = self.ctl(i, "-q", "cluster_status", "--formatter", "json", timeout=timeout)
            return json.loads(text[text.index("{") :])
        except (RuntimeError, ValueError, _sdk().errors.APIError):
            return None

    def add_vhost(self, name: str, user: str = "guest") -> None:
        """``add_vhost`` and full permissions for ``user`` (3.10 grants none by itself)."""
        i = self._any_running()
        self.ctl(i, "add_vhost", name)
        self.ctl(i, "set_permissions", "-p", name, user, ".*", ".*", ".*")

    def delete_vhost(self, name: str) -> None:
        self.ctl(self._any_running(), "delete_vhost", name)

    def _any_running(self) -> int:
        for i, c in enumerate(self.containers):
            c.reload()
            if c.status == "running" and i not in self._cut:
                return i
        raise RuntimeError("no node is running")

    def toxiproxy(self, method: str, path: str, body: dict | None = None):
        """One Toxiproxy API request; the decoded JSON answer (None when empty)."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.toxiproxy_url + path, data=data, method=method)
        request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=10) as answer:
                raw = answer.read()
        except urllib.error.HTTPError as exc:
            raise RuntimeError(f"toxiproxy {method} {path}: {exc.code} {exc.read()!r}") from None
        return json.loads(raw) if raw.strip() else None

    def down(self, i: int) -> None:
        """Disable proxy ``node<i+1>`` (Toxiproxy ``enabled: false``): new connections fail."""
        self.toxiproxy("POST", f"/proxies/{self.proxies[i]}", {"enabled": False})

    def up(self, i: int) -> None:
        self.toxiproxy("POST", f"/proxies/{self.proxies[i]}", {"enabled": True})
