"""Per-vhost limits (rabbitmqctl set_vhost_limits) on the simulated node and a real
RabbitMQ: max-connections refuses connection.open with 530, max-queues refuses a new
queue with 406, both with RabbitMQ's texts; existing ones keep working."""

from __future__ import annotations

import pika
import pika.exceptions
import pytest

from tests.conformance.helpers import channel_error, connect


@pytest.fixture
def vhost(broker, uid):
    name = f"limited-{uid}"
    broker.add_vhost(name)
    broker.set_permissions("guest", name)
    yield name
    broker.delete_vhost(name)


def test_max_connections_refuses_the_next_open(broker, vhost):
    broker.set_vhost_limits(vhost, max_connections=1)
    first, _ = connect(broker, vhost=vhost)
    with pytest.raises(pika.exceptions.ProbableAccessDeniedError) as refused:
        connect(broker, vhost=vhost)  # pika names a close during open an access denial
    assert (
        '(530) "NOT_ALLOWED - access to vhost '
        f"'{vhost}' refused for user 'guest': connection limit (1) is reached\""
    ) in str(refused.value)
    assert first.is_open
    first.close()
    again, _ = connect(broker, vhost=vhost)  # the slot is free again
    again.close()


def test_max_queues_refuses_a_new_queue_but_not_a_redeclare(broker, vhost):
    broker.set_vhost_limits(vhost, max_queues=1)
    conn, ch = connect(broker, vhost=vhost)
    ch.queue_declare("only")
    ch.queue_declare("only")  # the same queue again is no new queue
    assert channel_error(ch.queue_declare, "second") == (
        406,
        f"PRECONDITION_FAILED - cannot declare queue 'second': queue limit in vhost "
        f"'{vhost}' (1) is reached",
    )
    ch = conn.channel()
    broker.set_vhost_limits(vhost, max_queues=-1)
    ch.queue_declare("second")
    conn.close()
