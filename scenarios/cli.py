"""The ``warren`` command line.

``warren sim`` runs a standalone simulated cluster on loopback and prints one ``amqp://``
URL per node, one per line, then the ``http://`` URL of its Toxiproxy-compatible API, then
each node's management API URL (``http://``, guest/guest), and stays up until Ctrl-C or
SIGTERM. ``warren proxy`` runs a standalone Toxiproxy-compatible
server (API on 127.0.0.1:8474 by default, as Toxiproxy).
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from broker_sim import NodeConfig, SimCluster
from broker_sim.drivers.proxy import ToxiproxyServer
from scenarios.shard import add_merge_parser, parse_shard


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"port must be an integer, got {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port must be 0..65535, got {value}")
    return value


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="warren", description="Chaos testing for AMQP 0-9-1 (RabbitMQ) clients."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    sim = sub.add_parser("sim", help="run a simulated RabbitMQ cluster on loopback")
    sim.add_argument("--nodes", type=_positive, default=1, help="number of nodes (default 1)")
    sim.add_argument(
        "--port",
        type=_port,
        default=0,
        help="first node's port (default: ephemeral; node i gets port+i)",
    )
    sim.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    sim.add_argument("--seed", type=int, default=None, help="seed for names, elections, toxics")
    sim.add_argument(
        "--api-port",
        type=_port,
        default=0,
        help="port of the Toxiproxy-compatible API (default: ephemeral)",
    )
    sim.add_argument(
        "--reply-latency",
        type=_seconds,
        default=0.0,
        metavar="SECONDS",
        help="delay every reply by this much (e.g. 0.002, as a real node; default 0: off)",
    )
    sim.set_defaults(func=cmd_sim)
    proxy = sub.add_parser("proxy", help="run a Toxiproxy-compatible server (API on :8474)")
    proxy.add_argument("--host", default="127.0.0.1", help="API address (default 127.0.0.1)")
    proxy.add_argument("--port", type=_port, default=8474, help="API port (default 8474)")
    proxy.add_argument(
        "--config",
        type=Path,
        default=None,
        help="a Toxiproxy populate file (JSON list of proxies) to load",
    )
    proxy.add_argument("--seed", type=int, default=None, help="seed for every toxic draw")
    proxy.set_defaults(func=cmd_proxy)
    replay = sub.add_parser("replay", help="re-run a deterministic virtual-time run")
    replay.add_argument("seed_arg", nargs="?", type=int, metavar="SEED", help="the run's seed")
    replay.add_argument("--seed", type=int, help="the run's seed (or give it as SEED)")
    replay.add_argument(
        "--workload",
        default="failover-demo",
        help="a built-in workload (see --list) or package.module:function",
    )
    replay.add_argument("--list", action="store_true", help="list the built-in workloads")
    replay.add_argument("--scenario", help="replay one catalog scenario (as warren run ran it)")
    replay.add_argument("--client", default="bundled", help="the scenario's client adapter")
    replay.add_argument(
        "--backend",
        default="virtual",
        choices=("virtual", "live"),
        help="virtual (the same history again) or live (a fresh real-time run)",
    )
    replay.add_argument(
        "--scenarios", action="append", default=[], help="user scenarios (module or .toml)"
    )
    replay.set_defaults(func=cmd_replay)
    add_run_parser(sub)
    add_merge_parser(sub)
    from scenarios.gate import add_parser as add_gate_parser

    add_gate_parser(sub)
    from scenarios.compare import add_parser as add_compare_parser

    add_compare_parser(sub)
    from scenarios.fidelity import add_parser as add_fidelity_parser

    add_fidelity_parser(sub)
    return parser


def add_run_parser(sub) -> None:
    run = sub.add_parser(
        "run",
        help="run the scenario catalog against a client and report (the main job)",
        description="Run failure scenarios against a client; exit 0 if all pass, 1 if any "
        "fails, 2 on a usage error.",
    )
    run.add_argument("-k", dest="pattern", help="scenarios whose name or family matches")
    run.add_argument("--client", default="bundled", help="bundled, or package.module:factory")
    run.add_argument(
        "--backend",
        default="virtual",
        help="virtual (default), live (real TCP, real time) or local (real rabbitmq-server "
        "processes: Debian's package)",
    )
    run.add_argument("--seed", type=int, default=1, help="the (first) seed (default 1)")
    run.add_argument("--seeds", type=_positive, default=1, help="a sweep: N seeds from --seed")
    run.add_argument("--jobs", type=_positive, default=1, help="parallel processes")
    run.add_argument("--report", type=Path, default=Path("warren-report"), help="report folder")
    run.add_argument("--no-report", action="store_true", help="write no report folder")
    run.add_argument(
        "--scenarios", action="append", default=[], help="user scenarios: module or .toml"
    )
    run.add_argument(
        "--wall-timeout",
        type=float,
        default=120.0,
        help="real seconds one run may take (an adapter that never returns), default 120",
    )
    run.add_argument(
        "--shard",
        type=parse_shard,
        default=(1, 1),
        metavar="K/N",
        help="play the K-th of N round-robin shares of the runs (CI matrix jobs; warren merge)",
    )
    run.add_argument("--list", action="store_true", help="list the scenarios and exit")
    run.set_defaults(func=cmd_run)


def cmd_run(args: argparse.Namespace) -> int:
    from scenarios.command import run_command

    return run_command(args)


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = float("nan")  # refused below with the same message
    if not 0 <= value <= 10:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds in 0..10")
    return value


def cmd_sim(args: argparse.Namespace) -> int:
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        cluster = SimCluster(
            nodes=args.nodes,
            host=args.host,
            port=args.port,
            seed=args.seed,
            api_port=args.api_port,
            config=NodeConfig(reply_latency=args.reply_latency),
        )
        cluster.start()
    except OSError as exc:
        print(
            f"warren sim: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr
        )
        return 2
    try:
        for url in cluster.urls:
            print(url, flush=True)
        print(cluster.api_url, flush=True)
        for node in cluster.nodes:
            print(node.management_url, flush=True)
        while not stop.wait(0.5):
            pass
    finally:
        cluster.stop()
    return 0


def cmd_proxy(args: argparse.Namespace) -> int:
    if args.config is not None and not args.config.is_file():
        print(f"warren proxy: --config {args.config}: no such file", file=sys.stderr)
        return 2
    server = ToxiproxyServer(args.host, args.port, seed=args.seed, config=args.config)
    try:
        server.start_background()
    except OSError as exc:
        print(
            f"warren proxy: cannot listen on {args.host}:{args.port}: {exc.strerror}",
            file=sys.stderr,
        )
        return 2
    except ValueError as exc:
        print(f"warren proxy: {exc}", file=sys.stderr)
        return 2
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    print(f"toxiproxy API on {server.url} (seed {server.seed})", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.stop_background()
    return 0


def cmd_replay(args: argparse.Namespace) -> int:
    from broker_sim.cluster import FaultError
    from broker_sim.drivers.virtual import ActorFailed, WorldDeadlock
    from scenarios.workloads import RUN_FOR, WORKLOADS, prepare

    if args.scenario:
        from scenarios.command import replay_scenario

        return replay_scenario(args)
    if args.list:
        for name, fn in WORKLOADS.items():
            print(f"{name}: {(fn.__doc__ or '').strip().splitlines()[0]}")
        return 0
    seed = args.seed if args.seed is not None else args.seed_arg
    if seed is None:
        print("warren replay: give the seed (warren replay 7, or --seed 7)", file=sys.stderr)
        return 2
    try:
        world = prepare(seed, args.workload)
    except ValueError as exc:
        print(f"warren replay: {exc}", file=sys.stderr)
        return 2
    failure = None
    try:
        world.run(until=RUN_FOR)
    except (ActorFailed, WorldDeadlock, FaultError) as exc:  # the history up to it still prints
        failure = exc
    for line in world.history:
        print(line)
    print(f"digest: {world.digest()}")
    if failure is not None:
        print(f"warren replay: {failure}", file=sys.stderr)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
