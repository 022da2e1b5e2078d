"""A user's Celery app under Warren's scenarios: ``warren run --client celery:pkg.module:app``.

The consumer role is the app's own worker, a ``celery worker`` process
(:mod:`scenarios.adapters.celery_worker`) started against the backend's broker URLs in the
role's failover order and stopped by its pid; the publisher role sends Warren's
``warren.work`` task through the app (``app.send_task`` with the role's retry policy and,
for a confirming publisher, ``confirm_publish``), one task id per message id.

The worker's history reaches the run through a JSON-lines file its signals write
(``celery_worker.History``); this module folds it into Warren's events:

===========================  ================================================================
worker line                  history event
===========================  ================================================================
received                     deliver (``redelivered`` as the broker flagged it)
started                      ack, unless the task acks late (Celery acks on accept then)
succeeded                    processed; ack for a late-acking task
failed / retried             failed / retried (and ack for a late-acking task that failed)
worker_connection_lost       error (the consumer's "Connection to broker lost")
worker_connected             recovery_succeeded for every connect after the first
===========================  ================================================================

A task run twice is two ``deliver`` events (``duplicated``). A worker that exits before the
run settles is an escaped error carrying the tail of its log; one that does not stop within
``STOP_GRACE`` s of SIGTERM gets SIGUSR1 (Celery logs every thread's stack), then SIGKILL,
and is reported hung with that stack. Runs on the live backend and the real ones; a worker is
a process of its own, so not in virtual time.
"""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from scenarios.adapters import AdapterError

STOP_GRACE = 15.0  # s from SIGTERM (warm shutdown) to a worker called hung
STACK_WAIT = 2.0  # s for the SIGUSR1 stack dump to reach the log
LOG_TAIL = 30  # lines of the worker's log in an error
WARREN_ROOT = str(Path(__file__).resolve().parents[2])
PR_SET_PDEATHSIG = 1  # linux/prctl.h


class WorkerFailed(RuntimeError):
    """The Celery worker exited early or would not stop: the text carries its log."""


class CeleryAdapter:
    backends = ("live", "local", "docker")
    wind_down_seconds = STOP_GRACE + STACK_WAIT + 3.0  # a warm shutdown, or a stack dump

    def __init__(
        self, app_path: str, worker_args: tuple[str, ...] = (), pool: str = "solo"
    ) -> None:
        """``worker_args``: more ``celery worker`` options (``--without-gossip``,
        ``--concurrency 4``, ``-E``): the worker's command line is the user's too."""
        from scenarios.adapters import celery_worker

        self.app_path, self.worker_args, self.pool = app_path, tuple(worker_args), pool
        self.name = " ".join(("celery:" + app_path, *self.worker_args))
        try:
            self.app = celery_worker.load_app(app_path)
        except SystemExit as exc:
            raise AdapterError(str(exc).removeprefix("warren: ")) from None
        conflict = celery_worker.broker_conflict(self.app)
        if conflict:
            raise AdapterError(f"celery app {app_path!r}: {conflict}")

    # -- publisher: the app sends tasks -----------------------------------------------------

    def publisher(self, env, spec) -> None:
        from scenarios.adapters.celery_worker import work_queue

        queue = work_queue(env.queue.name, env.queue.queue_arguments)
        conn = self.app.connection_for_write(
            url=env.urls(spec.nodes),
            heartbeat=spec.heartbeat,
            failover_strategy=spec.failover_strategy,
            transport_options={"confirm_publish": spec.confirms},
        )
        with conn:
            producer = self.app.amqp.Producer(conn)
            for n in range(spec.messages):
                task_id = env.message_id(spec, n)
                env.record("publish_invoke", id=task_id)
                try:
                    self.app.send_task(
                        "warren.work",
                        args=(n,),
                        task_id=task_id,
                        producer=producer,
                        queue=queue,
                        retry=spec.retry,
                        retry_policy=spec.retry_policy,
                        timeout=spec.timeout,
                        confirm_timeout=spec.confirm_timeout if spec.confirms else None,
                    )
                except Exception as exc:  # the user's loop goes on
                    env.record("publish_fail", id=task_id, error=repr(exc)[:200])
                else:
                    env.record("publish_ok", id=task_id, confirmed=spec.confirms)
                env.sleep(spec.interval)

    # -- consumer: the app's worker process ---------------------------------------------------

    def consumer(self, env, spec) -> None:
        workdir = Path(tempfile.mkdtemp(prefix="warren-celery-"))
        worker = _Worker(self, env, spec, workdir)
        try:
            worker.follow_until_settled()
            worker.stop()
        finally:
            worker.kill()
        shutil.rmtree(workdir, ignore_errors=True)  # kept when the worker failed


class _Worker:
    """One worker process and the reading of its history."""

    def __init__(self, adapter: CeleryAdapter, env, spec, workdir: Path) -> None:
        self.env, self.spec = env, spec
        self.history = workdir / "history.jsonl"
        self.log_path = workdir / "worker.log"
        self.history.touch()
        command = [
            sys.executable, "-m", "scenarios.adapters.celery_worker",
            "--app", adapter.app_path,
            "--broker", env.urls(spec.nodes),
            "--queue", env.queue.name,
            "--queue-arguments", json.dumps(env.queue.queue_arguments or {}),
            "--history", str(self.history),
            "--hostname", f"warren-{spec.name}@localhost",
            "--pool", adapter.pool,
            "--work-seconds", str(spec.work_seconds),
            "--", *adapter.worker_args,
        ]  # fmt: skip
        path = os.pathsep.join(
            p for p in (os.getcwd(), WARREN_ROOT, os.environ.get("PYTHONPATH")) if p
        )
        self._log = open(self.log_path, "wb")  # noqa: SIM115 (closed in kill)
        self.proc = subprocess.Popen(
            command,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONPATH": path},
            preexec_fn=_die_with_parent,
        )
        self._offset = 0
        self._connected = False
        self._acks_late: dict[str, bool] = {}

    def follow_until_settled(self) -> None:
        while not self.env.settled():
            self.read()
            if self.proc.poll() is not None:
                raise WorkerFailed(
                    f"celery worker pid {self.proc.pid} exited with {self.proc.returncode} "
                    f"before the run settled; {self._tail()}"
                )
            self.env.sleep(0.05)
        self.read()

    def read(self) -> None:
        with open(self.history, encoding="utf-8") as lines:
            lines.seek(self._offset)
            while True:
                line = lines.readline()
                if not line.endswith("\n"):  # a line still being written: read it next time
                    break
                self._offset += len(line.encode("utf-8"))
                self._record(json.loads(line))

    def _record(self, line: dict) -> None:
        record, kind, task_id = self.env.record, line["kind"], line.get("id")
        if kind == "received":
            record("deliver", id=task_id, redelivered=line["redelivered"])
        elif kind == "started":
            self._acks_late[task_id] = line["acks_late"]
            if not line["acks_late"]:
                record("ack", id=task_id)
        elif kind in ("succeeded", "failed"):
            if kind == "succeeded":
                record("processed", id=task_id)
            else:
                record("failed", id=task_id, error=line.get("error"))
            if self._acks_late.get(task_id):
                record("ack", id=task_id)
        elif kind == "retried":
            record("retried", id=task_id, reason=line.get("reason"))
        elif kind == "worker_connection_lost":
            record("error", what="worker connection lost", text=line["text"])
        elif kind == "worker_connected":
            if self._connected:
                record("recovery_succeeded", text=line["text"])
            self._connected = True
        elif kind == "worker_ready":
            record("worker_ready", pid=line["pid"])

    def stop(self) -> None:
        """Warm shutdown (SIGTERM) by pid; a worker still there after STOP_GRACE s is hung:
        its stack (SIGUSR1) goes into the error."""
        if self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        if _wait(self.proc, STOP_GRACE):
            self.read()
            return
        self.proc.send_signal(signal.SIGUSR1)
        time.sleep(STACK_WAIT)
        raise WorkerFailed(
            f"celery worker pid {self.proc.pid} hung: still running {STOP_GRACE:g} s after "
            f"SIGTERM; {self._tail()}"
        )

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()

    def _tail(self) -> str:
        self._log.flush()
        lines = self.log_path.read_text(errors="replace").splitlines()[-LOG_TAIL:]
        return f"the tail of its log ({self.log_path}):\n" + "\n".join(lines)


def _die_with_parent() -> None:
    """In the worker, before exec: SIGKILL when the thread that started it ends (Linux
    ``prctl(PR_SET_PDEATHSIG)``), so that a run abandoned with its role still running, or a
    Warren process killed, leaves no worker behind."""
    try:
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:  # not Linux: the role's own kill() is what stops it
        pass


def _wait(proc: subprocess.Popen, seconds: float) -> bool:
    try:
        proc.wait(timeout=seconds)
        return True
    except subprocess.TimeoutExpired:
        return False
