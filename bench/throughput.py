"""Throughput of kombu (py-amqp) through the simulated node and a private real rabbitmq-server,
measured side by side in one run.

    python bench/throughput.py [--messages 20000] [--size 100] [--repeat 3] [--prefetch 100]
                               [--only sim|real] [--require-real] [--json PATH]
                               [--noise-retries 2] [--sim-profile PATH]

Scenarios (persistent messages, delivery_mode=2, to a durable classic queue):

* publish without confirms; the clock stops when the broker reports every message queued;
* publish with publisher confirms, one synchronous confirm per message
  (``transport_options={'confirm_publish': True}``);
* consume with manual acks (kombu Consumer + ``drain_events``) from a pre-filled queue, with
  ``basic.qos`` prefetch ``--prefetch`` and with no prefetch limit.

The simulated node runs as a separate ``warren sim`` process, so the client and the broker do
not share a GIL (as with a real broker). Both brokers are up for the whole run and the
measurements are interleaved (scenario by scenario, alternating which broker goes first), so
background noise on a shared machine hits both alike. Each figure is the median of
``--repeat`` runs; the ratio is sim/real (goal: >= 1.0, the simulator must not be the
bottleneck). CPU% is CPU time over wall time of the timed section (100% = one core), for the
broker process (sim: the ``warren sim`` process; real: beam.smp, all its threads) and for
this client process: a client near 100% means kombu/py-amqp, not the broker, sets the pace.
CPU used by other processes during a sample is measured too; a sample during which they took
a quarter of a core or more is measured again (``--noise-retries``), keeping the quietest.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import amqp
import amqp.exceptions
import kombu
import kombu.exceptions
import psutil

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
from scenarios.backends.local import RabbitMQUnavailable, RealRabbitNode  # noqa: E402

MEASURE_DEADLINE_S = 120.0  # no single timed section may run longer than this
SIM_START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 15.0
CONNECT_TIMEOUT_S = 10.0
BUSY_CPU_PCT = 85.0  # a process above this share of one core is the one setting the pace
NOISY_CPU_PCT = 25.0  # other processes above this share of one core: a busy machine


class BenchError(RuntimeError):
    """A measurement did not complete (deadline, broker gone, short count)."""


# -- measuring -----------------------------------------------------------------------------


@dataclass
class Sample:
    rate: float  # messages per second
    seconds: float
    broker_cpu: float  # percent of one core
    client_cpu: float
    other_cpu: float  # everything else on the machine (noise), percent of one core
    attempts: int = 1  # measured this many times because of noise; the quietest is kept


class Meter:
    """Wall clock and CPU time of the broker process and of this (client) process."""

    def __init__(self, broker_pid: int) -> None:
        self.broker = psutil.Process(broker_pid)
        self.client = psutil.Process()
        self._t0 = self._b0 = self._c0 = self._m0 = 0.0

    @staticmethod
    def _cpu(proc: psutil.Process) -> float:
        t = proc.cpu_times()
        return t.user + t.system

    @staticmethod
    def _machine() -> float:
        t = psutil.cpu_times()
        return sum(t) - t.idle - getattr(t, "iowait", 0.0) - getattr(t, "steal", 0.0)

    def start(self) -> None:
        self._m0 = self._machine()
        self._b0 = self._cpu(self.broker)
        self._c0 = self._cpu(self.client)
        self._t0 = time.perf_counter()

    def stop(self, n: int) -> Sample:
        elapsed = time.perf_counter() - self._t0
        broker = self._cpu(self.broker) - self._b0
        client = self._cpu(self.client) - self._c0
        other = max(0.0, self._machine() - self._m0 - broker - client)
        return Sample(
            n / elapsed,
            elapsed,
            100 * broker / elapsed,
            100 * client / elapsed,
            100 * other / elapsed,
        )


def _check_deadline(deadline: float, what: str) -> None:
    if time.monotonic() > deadline:
        raise BenchError(f"{what} exceeded the {MEASURE_DEADLINE_S:.0f} s deadline")


def _connection(url: str, confirm: bool = False) -> kombu.Connection:
    options = {"confirm_publish": True} if confirm else {}
    return kombu.Connection(url, transport_options=options, connect_timeout=CONNECT_TIMEOUT_S)


@contextlib.contextmanager
def _connected(url: str, confirm: bool = False):
    """A kombu connection closed gracefully on success; on any error (a deadline, SIGTERM,
    a broker gone) its socket is just dropped: a close handshake after a half-read frame
    could wait forever."""
    conn = _connection(url, confirm)
    try:
        yield conn
    except BaseException:
        conn.collect()
        raise
    conn.release()


@contextlib.contextmanager
def _time_limit(seconds: float, what: str):
    """Bound blocking socket reads that no loop deadline can reach (py-amqp waits for a
    confirm or a close-ok without a timeout): SIGALRM interrupts them with BenchError."""

    def expired(*_: object) -> None:
        raise BenchError(f"{what} did not finish within {seconds:.0f} s")

    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _publish_all(conn, queue: str, n: int, body: bytes, confirm: bool, meter) -> Sample | None:
    """Publish n messages to ``queue`` (declared and purged first), timed if ``meter``."""
    ch = conn.channel()
    ch.queue_declare(queue, durable=True, auto_delete=False)
    ch.queue_purge(queue)
    producer = kombu.Producer(ch, serializer=None)
    deadline = time.monotonic() + MEASURE_DEADLINE_S
    if meter:
        meter.start()
    for i in range(n):
        producer.publish(
            body,
            routing_key=queue,
            delivery_mode=2,
            content_type="application/octet-stream",
            content_encoding="binary",
        )
        if i & 1023 == 0:
            _check_deadline(deadline, "publish")
    # A passive declare on the same channel is a barrier: the count is exact once every
    # publish before it has been routed. Bounded by the deadline all the same.
    for _ in range(100_000):
        if ch.queue_declare(queue, passive=True).message_count >= n:
            break
        _check_deadline(deadline, "waiting for the broker to queue every message")
        time.sleep(0.002)
    sample = meter.stop(n) if meter else None
    ch.close()  # on errors the caller drops the whole connection instead
    return sample


def publish(url: str, queue: str, n: int, body: bytes, confirm: bool, meter: Meter) -> Sample:
    with _connected(url, confirm=confirm) as conn:
        sample = _publish_all(conn, queue, n, body, confirm, meter)
        conn.channel().queue_delete(queue)  # untimed: each measurement starts from nothing
        return sample


def consume(url: str, queue: str, n: int, body: bytes, prefetch: int, meter: Meter) -> Sample:
    with _connected(url) as conn:
        _publish_all(conn, queue, n, body, False, None)  # fill, untimed
        ch = conn.channel()
        if prefetch:
            ch.basic_qos(0, prefetch, False)
        got = 0
        size_errors = 0

        def on_message(message) -> None:
            nonlocal got, size_errors
            got += 1
            if len(message.body) != len(body):
                size_errors += 1
            message.ack()

        consumer = kombu.Consumer(
            ch, [kombu.Queue(queue, no_declare=True)], on_message=on_message, no_ack=False
        )
        deadline = time.monotonic() + MEASURE_DEADLINE_S
        meter.start()
        with consumer:
            # Bounded in count (each pass delivers >= 1 message or times out) and in time.
            for _ in range(10 * n + 1000):
                if got >= n:
                    break
                _check_deadline(deadline, f"consume ({got}/{n} received)")
                try:
                    conn.drain_events(timeout=1)
                except TimeoutError:
                    continue
        sample = meter.stop(n)
        if got < n:
            raise BenchError(f"consume: only {got}/{n} messages")
        if size_errors:
            raise BenchError(f"consume: {size_errors} bodies of the wrong size")
        ch.queue_delete(queue)  # untimed
        return sample


def delete_queues(url: str, queues: list[str]) -> None:
    """Best effort: a broker that is already gone has nothing left to clean."""
    try:
        with _time_limit(30, "queue cleanup"), _connected(url) as conn:
            for queue in queues:
                ch = conn.channel()
                try:
                    ch.queue_delete(queue)
                except Exception:  # noqa: BLE001 (missing queue on this broker)
                    pass
                finally:
                    try:
                        ch.close()
                    except Exception:  # noqa: BLE001
                        pass
    except Exception as exc:  # noqa: BLE001
        print(f"  (cleanup of {url.split('@')[-1]} failed: {exc})", file=sys.stderr)


def server_version(url: str) -> str:
    with _time_limit(30, "connecting"), _connected(url) as conn:
        conn.connect()
        props = conn.connection.server_properties
    product = props.get("product", "?")
    version = props.get("version", "?")
    return f"{_text(product)} {_text(version)}"


def _text(value) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


# -- scenarios -----------------------------------------------------------------------------

Scenario = tuple[str, str, Callable[[str, str, Meter], Sample]]


def scenarios(n: int, size: int, prefetch: int) -> list[Scenario]:
    """(label, queue-suffix, fn(url, queue, meter))."""
    body = b"x" * size
    plan: list[Scenario] = [
        ("publish", "publish", lambda u, q, m: publish(u, q, n, body, False, m)),
        (
            "publish, confirms (sync per msg)",
            "confirm",
            lambda u, q, m: publish(u, q, n, body, True, m),
        ),
    ]
    if prefetch:
        plan.append(
            (
                f"consume + ack (prefetch {prefetch})",
                f"consume-p{prefetch}",
                lambda u, q, m: consume(u, q, n, body, prefetch, m),
            )
        )
    plan.append(
        (
            "consume + ack (no prefetch limit)",
            "consume-p0",
            lambda u, q, m: consume(u, q, n, body, 0, m),
        )
    )
    return plan


# -- brokers -------------------------------------------------------------------------------


@dataclass
class Broker:
    kind: str  # "sim" or "real"
    url: str
    pid: int  # the process whose CPU is measured
    version: str = ""


class SimSubprocess:
    """``warren sim --nodes 1 --port 0`` as a child process, optionally under cProfile."""

    def __init__(self, workdir: Path, profile: Path | None = None) -> None:
        self.workdir = workdir
        self.profile = profile
        self.proc: subprocess.Popen | None = None
        self.url = ""

    def start(self) -> SimSubprocess:
        if self.profile:  # every thread under cProfile (the event loop is not the main one)
            cmd = [sys.executable, str(REPO / "bench" / "cprofile_sim.py"), str(self.profile)]
        else:  # what the `warren` script runs, without a wrapper process in between
            cmd = [sys.executable, "-m", "scenarios.cli", "sim"]
        cmd += ["--nodes", "1", "--port", "0"]
        out = self.workdir / "sim.stdout"
        err = self.workdir / "sim.stderr"
        env = dict(
            os.environ, PYTHONPATH=os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])
        )
        with open(out, "wb") as fout, open(err, "wb") as ferr:
            self.proc = subprocess.Popen(
                cmd, stdout=fout, stderr=ferr, stdin=subprocess.DEVNULL, cwd=REPO, env=env
            )
        deadline = time.monotonic() + SIM_START_TIMEOUT_S
        while time.monotonic() < deadline:
            for line in out.read_text(errors="replace").splitlines():
                if line.startswith("amqp://"):
                    self.url = line.strip()
                    return self
            if self.proc.poll() is not None:
                tail = err.read_text(errors="replace").strip().splitlines()[-3:]
                raise BenchError(f"warren sim exited with {self.proc.returncode}: {tail}")
            time.sleep(0.05)
        raise BenchError(f"warren sim printed no amqp:// URL within {SIM_START_TIMEOUT_S:.0f} s")

    @property
    def pid(self) -> int:
        return self.proc.pid

    def stop(self) -> None:
        """SIGTERM (the sim stops cleanly; cProfile writes its file), then SIGKILL: by pid."""
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT_S)


# -- the run -------------------------------------------------------------------------------


def measure(fn, broker: Broker, queue: str, retries: int) -> Sample:
    """One sample; while other processes took >= NOISY_CPU_PCT of a core, measure again (at
    most ``retries`` more times) and keep the quietest attempt."""
    best: Sample | None = None
    for attempt in range(1 + retries):
        # fill (consume lines) + timed part, each with its own deadline; a margin on top
        with _time_limit(2 * MEASURE_DEADLINE_S + 30, f"measuring on {broker.kind}"):
            sample = fn(broker.url, queue, Meter(broker.pid))
        sample.attempts = attempt + 1
        if best is None or sample.other_cpu < best.other_cpu:
            best = sample
        if sample.other_cpu < NOISY_CPU_PCT:
            break
    best.attempts = attempt + 1
    return best


def run(args: argparse.Namespace, workdir: Path) -> tuple[int, dict]:
    started = time.monotonic()
    plan = scenarios(args.messages, args.size, args.prefetch)
    prefix = f"warren-bench-{os.getpid()}"
    queues = [f"{prefix}-{suffix}" for _, suffix, _ in plan]
    brokers: list[Broker] = []
    notes: list[str] = []
    sim = real = None
    try:
        if args.only != "real":
            sim = SimSubprocess(workdir, args.sim_profile)
            sim.start()  # assigned first: a start that fails half-way is still stopped
            brokers.append(Broker("sim", sim.url, sim.pid))
        if args.only != "sim":
            try:
                print("starting a private rabbitmq-server ...", file=sys.stderr, flush=True)
                real = RealRabbitNode(workdir / "real")
                real.start()
                brokers.append(Broker("real", real.url, real.pid))
            except (RabbitMQUnavailable, OSError) as exc:
                real = None
                line = f"real rabbitmq-server unavailable, sim figures only: {exc}"
                print(line, flush=True)
                notes.append(line)
                if args.require_real or not brokers:
                    return 1, {}
        for broker in brokers:
            broker.version = server_version(broker.url)
        samples: dict[str, dict[str, list[Sample]]] = {
            b.kind: {label: [] for label, _, _ in plan} for b in brokers
        }
        for r in range(args.repeat):
            for label, suffix, fn in plan:
                order = brokers if r % 2 == 0 else list(reversed(brokers))
                for broker in order:
                    sample = measure(fn, broker, f"{prefix}-{suffix}", args.noise_retries)
                    samples[broker.kind][label].append(sample)
                    print(
                        f"  [{r + 1}/{args.repeat}] {broker.kind:<4} {label:<34} "
                        f"{sample.rate:>9,.0f} msg/s  broker {sample.broker_cpu:3.0f}% "
                        f"client {sample.client_cpu:3.0f}% other {sample.other_cpu:3.0f}% CPU"
                        + (f" (quietest of {sample.attempts})" if sample.attempts > 1 else ""),
                        file=sys.stderr,
                        flush=True,
                    )
    finally:
        for broker in brokers:
            delete_queues(broker.url, queues)
        if sim is not None:
            sim.stop()
        if real is not None:
            real.stop()
    results = summarize(args, plan, brokers, samples, notes, time.monotonic() - started)
    report(results)
    return 0, results


def _median_sample(samples: list[Sample]) -> dict:
    """Median rate; CPU figures are medians too (each over the same repeats)."""
    return {
        "rate": statistics.median(s.rate for s in samples),
        "broker_cpu": statistics.median(s.broker_cpu for s in samples),
        "client_cpu": statistics.median(s.client_cpu for s in samples),
        "other_cpu": statistics.median(s.other_cpu for s in samples),
        "samples": [asdict(s) for s in samples],
    }


def summarize(args, plan, brokers, samples, notes, seconds) -> dict:
    return {
        "config": {
            "messages": args.messages,
            "size": args.size,
            "repeat": args.repeat,
            "prefetch": args.prefetch,
            "persistent": True,
        },
        "client": f"kombu {kombu.__version__} (py-amqp {amqp.__version__})",
        "python": platform.python_version(),
        "cpus": psutil.cpu_count(),
        "brokers": {b.kind: {"version": b.version, "pid": b.pid} for b in brokers},
        "results": {
            label: {b.kind: _median_sample(samples[b.kind][label]) for b in brokers}
            for label, _, _ in plan
        },
        "notes": notes,
        "seconds": seconds,
    }


def _bound(cell: dict | None) -> str:
    """Which side sets the pace, from CPU shares (one core = 100%)."""
    if not cell:
        return "-"
    client = cell["client_cpu"] >= BUSY_CPU_PCT
    broker = cell["broker_cpu"] >= BUSY_CPU_PCT
    if client and broker:
        return "both"
    if client:
        return "client"
    if broker:
        return "broker"
    return "round trips"


def report(results: dict) -> None:
    cfg = results["config"]
    brokers = results["brokers"]
    print(
        f"{results['client']}, Python {results['python']}, {results['cpus']} CPUs; "
        f"{cfg['messages']:,} x {cfg['size']}-byte persistent messages, "
        f"median of {cfg['repeat']}"
    )
    if "sim" in brokers:
        print(
            "sim  = `warren sim --nodes 1` in its own process (client and broker do not share "
            f"a GIL), {brokers['sim']['version']}"
        )
    if "real" in brokers:
        print(f"real = private rabbitmq-server on 127.0.0.1, {brokers['real']['version']}")
    print(
        "CPU% b/c/o = broker / client (this process) / other processes (noise), "
        "share of one core during the timed section"
    )
    header = (
        f"{'scenario':<36}{'sim msg/s':>11}{'real msg/s':>12}{'sim/real':>10}"
        f"{'sim CPU% b/c/o':>16}{'real CPU% b/c/o':>17}  bound by (sim; real)"
    )
    print(header)
    print("-" * len(header))
    for label, cells in results["results"].items():
        sim, real = cells.get("sim"), cells.get("real")
        ratio = f"{sim['rate'] / real['rate']:.2f}" if sim and real else "-"
        print(
            f"{label:<36}{_rate(sim):>11}{_rate(real):>12}{ratio:>10}"
            f"{_cpu(sim):>16}{_cpu(real):>17}  {_bound(sim)}; {_bound(real)}"
        )
    noise = max(
        (cell["other_cpu"] for cells in results["results"].values() for cell in cells.values()),
        default=0.0,
    )
    if noise >= NOISY_CPU_PCT:
        print(
            f"warning: other processes used up to {noise:.0f}% of a core during the timed "
            "sections: the machine was busy, the figures are noisy"
        )
    print(f"total run time {results['seconds']:.0f} s (including broker start-up)")


def _rate(cell: dict | None) -> str:
    return f"{cell['rate']:,.0f}" if cell else "-"


def _cpu(cell: dict | None) -> str:
    if not cell:
        return "-"
    return f"{cell['broker_cpu']:.0f}/{cell['client_cpu']:.0f}/{cell['other_cpu']:.0f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=20000, help="per measurement (20000)")
    parser.add_argument("--size", type=int, default=100, help="body size in bytes (100)")
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure; median (3)")
    parser.add_argument("--prefetch", type=int, default=100, help="consumer prefetch (100)")
    parser.add_argument("--only", choices=("sim", "real"), help="measure one broker only")
    parser.add_argument(
        "--require-real", action="store_true", help="exit 1 if rabbitmq-server cannot start"
    )
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument(
        "--noise-retries",
        type=int,
        default=2,
        help=f"re-measure a sample while other processes use >= {NOISY_CPU_PCT:.0f}%% of a "
        "core, at most this many times, keeping the quietest (2; 0 = never)",
    )
    parser.add_argument(
        "--sim-profile",
        type=Path,
        help="run the sim with all its threads under cProfile, write the stats here (slower)",
    )
    args = parser.parse_args(argv)
    # SIGTERM unwinds like Ctrl-C, so the finally blocks stop the brokers this run started.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    if min(args.messages, args.repeat) < 1 or min(args.size, args.prefetch, args.noise_retries) < 0:
        parser.error(
            "--messages >= 1, --repeat >= 1, --size >= 0, --prefetch >= 0, --noise-retries >= 0"
        )
    with tempfile.TemporaryDirectory(prefix="warren-bench-") as tmp:
        try:
            status, results = run(args, Path(tmp))
        except (BenchError, OSError, amqp.exceptions.AMQPError, kombu.exceptions.KombuError) as exc:
            print(f"benchmark failed: {type(exc).__name__}: {exc}", flush=True)
            return 1
    if args.json and results:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return status


if __name__ == "__main__":
    sys.exit(main())
