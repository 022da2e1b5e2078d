"""The virtual OS layer (broker_sim.drivers.virtual_os): what actors see, what everyone
else sees, and that it is all undone after the run."""

from __future__ import annotations

import errno
import os
import queue
import select
import selectors
import socket
import struct
import subprocess
import threading
import time
import uuid

import amqp.connection
import kombu.utils.functional
import pytest

from broker_sim.drivers.virtual import START, ActorFailed, World
from broker_sim.drivers.virtual_os.vsocket import WORLD_IP, VirtualSocket
from broker_sim.drivers.virtual_os.vtime import UPTIME


def bindings() -> dict:
    """What the layer swaps, as the test process sees it now."""
    return {
        "time.sleep": time.sleep,
        "time.monotonic": time.monotonic,
        "socket.socket": socket.socket,
        "socket.getaddrinfo": socket.getaddrinfo,
        "select.epoll": select.epoll,
        "select.select": select.select,
        "threading.Lock": threading.Lock,
        "Thread.start": threading.Thread.start,
        "os.urandom": os.urandom,
    }


REAL = bindings()  # at import, before any world ran


def run_actor(fn, seed: int = 3, until: float = 3600, **world_options) -> World:
    world = World(seed, **world_options)
    world.spawn("user", fn)
    world.run(until=until)
    return world


def failure_of(fn, **world_options) -> str:
    with pytest.raises(ActorFailed) as info:
        run_actor(fn, **world_options)
    return str(info.value)


# -- scoped and reversible ----------------------------------------------------------------


def test_actors_get_virtual_time_and_the_real_functions_come_back():
    seen = {}

    def user():
        seen["time"] = time.time()
        time.sleep(600)  # ten virtual minutes
        seen["monotonic"] = time.monotonic()
        seen["amqp"] = amqp.connection.monotonic()  # py-amqp's `from time import monotonic`
        seen["kombu"] = kombu.utils.functional.time()

    started = time.monotonic()
    world = run_actor(user)
    assert time.monotonic() - started < 5
    assert seen["time"] == pytest.approx(START)
    assert seen["monotonic"] == seen["amqp"] == pytest.approx(UPTIME + 600)  # as an uptime
    assert seen["kombu"] == pytest.approx(START + 600)  # kombu's `from time import time`
    assert world.clock.t - START == pytest.approx(600)
    assert bindings() == REAL
    assert amqp.connection.monotonic is REAL["time.monotonic"]
    assert kombu.utils.functional.sleep is REAL["time.sleep"]
    assert selectors.EpollSelector._selector_cls is REAL["select.epoll"]


def test_everything_is_restored_when_an_actor_raises():
    def user():
        time.sleep(1)
        raise ValueError("boom")

    assert "ValueError: boom" in failure_of(user)
    assert bindings() == REAL
    real = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    real.close()
    assert not isinstance(real, VirtualSocket)


def test_a_real_socket_works_again_after_the_run():
    run_actor(lambda: time.sleep(1))
    with socket.create_server(("127.0.0.1", 0)) as server:
        port = server.getsockname()[1]
        with socket.create_connection(("127.0.0.1", port), timeout=2) as client:
            peer, _ = server.accept()
            client.sendall(b"ping")
            assert peer.recv(4) == b"ping"
            peer.close()


def test_the_layer_never_leaks_into_another_thread_or_the_scheduler():
    """While the actors see virtual time and sockets, the world's own scheduler (a fault
    callback) and a real thread it starts see the real ones."""
    outside: dict = {}

    def beside():
        outside["monotonic"] = time.monotonic()
        with socket.socket() as sock:
            outside["socket"] = type(sock)

    def in_scheduler():
        outside["scheduler"] = time.time()
        thread = threading.Thread(target=beside)
        thread.start()
        thread.join(5)
        outside["alive"] = thread.is_alive()

    world = World(4)
    world.at(100, in_scheduler)
    world.spawn("user", lambda: time.sleep(200))
    real_before = time.time()
    world.run()
    assert outside["socket"] is socket.socket
    assert abs(outside["monotonic"] - time.monotonic()) < 5
    assert outside["scheduler"] >= real_before  # real time, not START + 100
    assert outside["alive"] is False
    assert [a.name for a in world.actors] == ["user"]


# -- violations ------------------------------------------------------------------------------


def test_dns_for_a_name_outside_the_world_is_a_violation_naming_the_actor():
    text = failure_of(lambda: socket.getaddrinfo("rabbit.example.com", 5672))
    assert "WorldViolation: socket.getaddrinfo called inside the world by actor 'user'" in text
    assert "'rabbit.example.com' is not in the world" in text


def test_a_real_descriptor_in_select_is_a_violation():
    read, write = os.pipe()
    try:
        text = failure_of(lambda: select.select([read], [], [], 1))
    finally:
        os.close(read)
        os.close(write)
    assert f"descriptor {read}" in text and "is real" in text


def test_a_real_socket_from_outside_the_world_is_a_violation():
    real = socket.socket()
    try:
        text = failure_of(lambda: real.connect(("127.0.0.1", 9)))
    finally:
        real.close()
    assert "socket.connect called inside the world by actor 'user'" in text


def test_a_real_process_is_a_violation():
    text = failure_of(lambda: subprocess.run(["true"]))
    assert "subprocess.Popen called inside the world by actor 'user': a real process" in text


def test_a_thread_is_a_violation_when_the_world_forbids_threads():
    thread = threading.Thread(target=lambda: None, name="worker")
    text = failure_of(lambda: thread.start(), threads="forbid")
    assert "threading.Thread.start (worker) called inside the world by actor 'user'" in text


def test_an_address_the_world_does_not_know_is_refused_as_the_os_would():
    caught = {}

    def user():
        try:
            socket.create_connection(("127.0.0.1", 9), timeout=1)
        except ConnectionRefusedError as exc:
            caught["errno"], caught["text"] = exc.errno, exc.strerror

    run_actor(user)
    assert caught == {"errno": errno.ECONNREFUSED, "text": "Connection refused"}


# -- sockets ---------------------------------------------------------------------------------


def test_socket_timeouts_and_non_blocking_reads_follow_the_os():
    seen = {}

    def user():
        sock = socket.create_connection(("world", 50000), timeout=5)
        sock.settimeout(3)
        before = time.monotonic()
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        assert sock.recv(7)  # connection.start arrives
        sock.recv(65536)
        try:
            sock.recv(1)
        except TimeoutError as exc:
            seen["timeout"] = (str(exc), time.monotonic() - before)
        sock.setblocking(False)
        try:
            sock.recv(1)
        except BlockingIOError as exc:
            seen["eagain"] = exc.errno
        seen["peer"] = sock.getpeername()
        sock.close()
        try:
            sock.recv(1)
        except OSError as exc:
            seen["closed"] = exc.errno

    run_actor(user)
    text, waited = seen["timeout"]
    assert text == "timed out" and waited == pytest.approx(3, abs=0.01)
    assert seen["eagain"] == errno.EAGAIN
    assert seen["peer"] == (WORLD_IP, 50000)
    assert seen["closed"] == errno.EBADF


def _receive_timeout(sock, seconds: float) -> None:
    whole = int(seconds)
    timeval = struct.pack("ll", whole, int((seconds - whole) * 1e6))
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVTIMEO, timeval)


def test_so_rcvtimeo_ends_a_blocking_read_with_eagain_as_linux_does():
    """py-amqp's ``read_timeout`` is SO_RCVTIMEO on a blocking socket: Linux then fails the
    read with EAGAIN (BlockingIOError) after the timeout; the world's sockets do the same."""
    real, other = socket.socketpair()
    with real, other:
        _receive_timeout(real, 0.2)
        with pytest.raises(BlockingIOError) as info:
            real.recv(1)
        assert info.value.errno == errno.EAGAIN
    seen = {}

    def user():
        sock = socket.create_connection(("world", 50000), timeout=5)
        sock.settimeout(None)
        sock.sendall(b"AMQP\x00\x00\x09\x01")
        sock.recv(65536)  # connection.start
        _receive_timeout(sock, 2.5)
        before = time.monotonic()
        try:
            sock.recv(1)
        except BlockingIOError as exc:
            seen["eagain"] = (exc.errno, time.monotonic() - before)
        sock.close()

    run_actor(user)
    code, waited = seen["eagain"]
    assert code == errno.EAGAIN and waited == pytest.approx(2.5, abs=0.01)


def test_a_killed_node_refuses_and_a_pulled_cable_times_connects_out():
    seen = {}
    world = World(5)

    def user():
        time.sleep(2)
        try:
            socket.create_connection(("world", 50000), timeout=1)
        except ConnectionRefusedError:
            seen["killed"] = "refused"
        time.sleep(2)
        before = time.monotonic()
        try:
            socket.create_connection(("world", 50001), timeout=4)
        except TimeoutError as exc:
            seen["isolated"] = (str(exc), time.monotonic() - before)

    world.spawn("user", user)
    world.at(1, "kill", "node1")
    world.at(3, "isolate", "user")
    world.run()
    assert seen == {"killed": "refused", "isolated": ("timed out", pytest.approx(4, abs=0.01))}


def test_select_poll_epoll_and_selectors_see_the_same_readiness():
    seen = {}

    def user():
        left, right = socket.socketpair()
        poller, epoll, chooser = select.poll(), select.epoll(), selectors.DefaultSelector()
        poller.register(left, select.POLLIN)
        epoll.register(left.fileno(), select.EPOLLIN)
        chooser.register(left, selectors.EVENT_READ)
        assert select.select([left], [], [], 0) == ([], [], [])
        assert poller.poll(0) == [] and epoll.poll(0) == [] and chooser.select(0) == []

        def later():
            time.sleep(7)
            right.send(b"x")

        threading.Thread(target=later).start()
        before = time.monotonic()
        seen["select"] = select.select([left], [right], [], 10)
        seen["waited"] = time.monotonic() - before
        seen["poll"] = poller.poll(1000)
        seen["epoll"] = epoll.poll(1)
        seen["selectors"] = [(key.fileobj, events) for key, events in chooser.select(1)]
        seen["left"] = left

    run_actor(user)
    left = seen["left"]
    assert seen["select"][0] == [] and seen["select"][1]  # writable at once, not readable
    assert seen["waited"] == 0
    assert seen["poll"] == [] or seen["poll"] == [(left.fileno(), select.POLLIN)]


def test_a_wait_for_readiness_blocks_in_virtual_time_until_data_arrives():
    seen = {}

    def user():
        left, right = socket.socketpair()

        def later():
            time.sleep(7)
            right.send(b"x")

        threading.Thread(target=later).start()
        before = time.monotonic()
        epoll = select.epoll()
        epoll.register(left.fileno(), select.EPOLLIN)
        seen["epoll"] = epoll.poll(30)
        seen["waited"] = time.monotonic() - before
        seen["data"] = left.recv(10)
        seen["fd"] = left.fileno()

    run_actor(user)
    assert seen["epoll"] == [(seen["fd"], select.EPOLLIN)]
    assert seen["waited"] == pytest.approx(7)
    assert seen["data"] == b"x"


def test_event_and_queue_timeouts_are_virtual_and_threads_are_actors():
    seen = {}

    def user():
        event, box = threading.Event(), queue.Queue()
        before = time.monotonic()
        seen["event"] = event.wait(5)
        try:
            box.get(timeout=5)
        except queue.Empty:
            seen["empty_after"] = time.monotonic() - before

        def worker():
            time.sleep(20)
            box.put("done")
            event.set()

        thread = threading.Thread(target=worker, name="worker")
        thread.start()
        seen["got"] = box.get(timeout=60)
        seen["set"] = event.wait(1)
        thread.join(5)
        seen["alive"] = thread.is_alive()
        seen["elapsed"] = time.monotonic() - before

    world = run_actor(user)
    assert seen == {
        "event": False,
        "empty_after": pytest.approx(10),
        "got": "done",
        "set": True,
        "alive": False,
        "elapsed": pytest.approx(30),
    }
    assert [a.name for a in world.actors] == ["user", "user/worker"]


def test_randomness_and_uuids_come_from_the_seed():
    def draws(seed: int) -> list:
        out = []
        run_actor(lambda: out.extend([uuid.uuid4().hex, os.urandom(4)]), seed=seed)
        return out

    assert draws(11) == draws(11)
    assert draws(11) != draws(12)


def test_a_wait_shorter_than_the_clocks_resolution_still_lets_time_pass():
    """pika polls with the time left to its next timer, 9.5e-8 s once: at 1.7e9 s a float
    cannot add that, and a poll that returned at once left pika polling forever."""
    seen = []

    def user():
        poller = select.poll()
        for _ in range(3):
            before = time.monotonic()
            poller.poll(1e-4)  # milliseconds: 1e-7 s
            select.select([], [], [], 1e-8)
            seen.append(time.monotonic() > before)

    run_actor(user, until=10)
    assert seen == [True, True, True]


def test_non_blocking_connects_answer_in_so_error_as_pika_expects():
    seen = {}

    def user():
        for name, port in (("up", 50000), ("refused", 50999)):
            sock = socket.socket()
            sock.setblocking(False)
            try:
                sock.connect(("world", port))
            except BlockingIOError as exc:
                seen[f"{name}.connect"] = exc.errno
            select.select([], [sock], [], 1)
            seen[f"{name}.so_error"] = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            sock.close()
        blocking = socket.socket()
        seen["connect_ex"] = blocking.connect_ex(("world", 50999))
        blocking.close()

    run_actor(user)
    assert seen == {
        "up.connect": errno.EINPROGRESS,
        "up.so_error": 0,
        "refused.connect": errno.EINPROGRESS,
        "refused.so_error": errno.ECONNREFUSED,
        "connect_ex": errno.ECONNREFUSED,
    }
