"""Why unmodified pika (1.x, BlockingConnection) fails a scenario, one line each, read in
pika's source and shown by the run's history (``warren replay --client pika``); shown in
the comparison table. tests/scenarios/test_pika_weakness.py checks pika fails for it."""

from __future__ import annotations

#: pika.heartbeat.HeartbeatChecker: _check_interval = timeout + 5, and a check that saw no
#: byte since the last one closes the connection (AMQPHeartbeatTimeout); then the README's
#: loop builds a BlockingConnection over the same parameters list, which starts again at
#: the first (hung) node and waits out its stack_timeout (15 s) before the next one.
SLOW_HEARTBEAT_CHECK = (
    "pika finds a silent node only at a heartbeat check (every heartbeat + 5 s), then its "
    "parameters list retries the hung node first and waits out stack_timeout (15 s)"
)
