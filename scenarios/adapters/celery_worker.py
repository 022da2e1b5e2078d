"""The worker process of the Celery adapter: the user's Celery app as ``celery worker``,
against the backend's broker URLs, writing its history as JSON lines.

Run by :mod:`scenarios.adapters.celery_adapter` as::

    python -m scenarios.adapters.celery_worker --app pkg.module:app --broker 'amqp://..;amqp://..'
        --queue NAME --queue-arguments JSON --history FILE [--pool solo] [-- WORKER-OPTIONS]

Only the broker URL list (Celery's own failover list, ``broker_url`` with ``;``) and the
work queue are Warren's; every other setting (heartbeat, prefetch multiplier, acks_late,
``confirm_publish``, quorum queues, delayed delivery, events) is the app's, since that is
what is under test. Warren adds one task, ``warren.work``, that sleeps as the scenario's
consumer works and returns its argument.

The history lines come from Celery's signals (``celery.signals``: task_received,
task_prerun, task_success, task_failure, task_retry, worker_ready) and from the consumer's
log, the only place Celery tells of a lost broker connection
(``celery.worker.consumer.consumer``: "Connection to broker lost") and of each connect
(``celery.worker.consumer.connection``: "Connected to amqp://..."). Each line is appended
with one ``write`` on a file opened for appending, so the prefork pool's children, which run
the task signals, can write to it too. SIGUSR1 makes Celery log every thread's stack
(``celery.apps.worker.install_cry_handler``): the adapter sends it to a worker that will not
stop.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
import time

#: schemes of the transports that speak AMQP 0-9-1 (kombu.transport.TRANSPORT_ALIASES)
AMQP_SCHEMES = ("amqp", "pyamqp", "librabbitmq")


class History:
    """Appends one JSON line per event to ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def write(self, kind: str, **details) -> None:
        line = json.dumps({"t": time.time(), "kind": kind, "pid": os.getpid(), **details})
        with open(self.path, "a", encoding="utf-8") as out:
            out.write(line + "\n")


class ConsumerLog(logging.Handler):
    """The worker consumer's connection log lines as history events."""

    MARKERS = (
        ("Connection to broker lost", "worker_connection_lost"),
        ("Cannot connect to", "worker_cannot_connect"),
        ("Connected to", "worker_connected"),
    )

    def __init__(self, history: History) -> None:
        super().__init__(logging.INFO)
        self.history = history

    def emit(self, record: logging.LogRecord) -> None:
        text = record.getMessage()
        for marker, kind in self.MARKERS:
            if marker in text and not text.startswith("pidbox"):
                self.history.write(kind, text=text.splitlines()[0][:200])
                return


def load_app(spec: str):
    """The Celery app at ``package.module:attribute`` (a usage error names what failed)."""
    module_name, _, attr = spec.partition(":")
    if not module_name or not attr:
        raise SystemExit(f"warren: celery app {spec!r} is not package.module:attribute")
    if os.getcwd() not in sys.path:  # the user's project, as `celery -A` finds it
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except Exception as exc:  # the user's module: any error is theirs to see
        raise SystemExit(f"warren: celery app module {module_name!r} does not import: {exc!r}")
    try:
        return getattr(module, attr)
    except AttributeError:
        raise SystemExit(f"warren: module {module_name!r} has no attribute {attr!r}") from None


def broker_conflict(app) -> str | None:
    """Why the app's broker settings cannot run against a Warren backend, or None."""
    transport = app.conf.broker_transport
    url = app.conf.broker_url
    if isinstance(url, (list, tuple)):
        url = url[0] if url else None
    scheme = transport or (url.partition("://")[0] if url and "://" in url else "amqp")
    if scheme not in AMQP_SCHEMES:
        return (
            f"the app's broker transport is {scheme!r} (broker_url / broker_transport); "
            "Warren's brokers speak AMQP 0-9-1: use amqp:// (py-amqp)"
        )
    if app.conf.broker_use_ssl:
        return "the app sets broker_use_ssl; the backend's brokers listen without TLS"
    return None


def work_queue(name: str, arguments: dict):
    """The scenario's queue, through the default exchange (as the setup role declared it)."""
    from kombu import Exchange, Queue

    return Queue(name, Exchange(""), routing_key=name, queue_arguments=arguments or None)


def connect_signals(app, history: History, work_seconds: float) -> None:
    from celery import signals

    @app.task(name="warren.work")
    def work(n):
        if work_seconds:
            time.sleep(work_seconds)  # the scenario consumer's work per message
        return n

    def received(request=None, **_):
        info = getattr(request, "delivery_info", None) or {}
        history.write("received", id=request.id, redelivered=bool(info.get("redelivered")))

    def prerun(task_id=None, task=None, **_):
        history.write("started", id=task_id, acks_late=bool(getattr(task, "acks_late", False)))

    def success(sender=None, **_):
        history.write("succeeded", id=sender.request.id)

    def failure(task_id=None, exception=None, **_):
        history.write("failed", id=task_id, error=repr(exception)[:200])

    def retry(request=None, reason=None, **_):
        history.write("retried", id=getattr(request, "id", None), reason=repr(reason)[:200])

    def ready(**_):
        history.write("worker_ready")

    for signal, handler in (
        (signals.task_received, received),
        (signals.task_prerun, prerun),
        (signals.task_success, success),
        (signals.task_failure, failure),
        (signals.task_retry, retry),
        (signals.worker_ready, ready),
    ):
        signal.connect(handler, weak=False)
    log = ConsumerLog(history)
    for name in ("celery.worker.consumer.consumer", "celery.worker.consumer.connection"):
        logging.getLogger(name).addHandler(log)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="warren-celery-worker")
    parser.add_argument("--app", required=True)
    parser.add_argument("--broker", required=True, help="URLs joined by ';' (failover order)")
    parser.add_argument("--queue", required=True)
    parser.add_argument("--queue-arguments", default="{}")
    parser.add_argument("--history", required=True)
    parser.add_argument("--hostname", default="warren@localhost")
    parser.add_argument("--pool", default="solo")
    parser.add_argument("--work-seconds", type=float, default=0.0)
    parser.add_argument("worker_args", nargs="*", help="more celery worker options")
    args = parser.parse_args(argv)
    app = load_app(args.app)
    conflict = broker_conflict(app)
    if conflict:
        raise SystemExit(f"warren: {conflict}")
    history = History(args.history)
    queue = work_queue(args.queue, json.loads(args.queue_arguments))
    app.conf.broker_url = args.broker
    app.conf.task_queues = (queue,)
    app.conf.task_default_queue = args.queue
    connect_signals(app, history, args.work_seconds)
    import click

    argv = ["worker", "--loglevel=INFO", f"--hostname={args.hostname}", f"--pool={args.pool}",
            f"--queues={args.queue}", *args.worker_args]  # fmt: skip
    try:
        app.worker_main(argv)
    except click.exceptions.ClickException as exc:  # a bad worker option: its one line
        print(f"warren: celery {' '.join(argv)}: {exc.format_message()}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
