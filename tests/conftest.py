"""Shared fixtures: one test body runs against the simulated node and a real RabbitMQ.

``broker`` is parametrized over ``sim`` and ``real``. Both objects offer the same small
admin surface (see ``scenarios.backends.base.BrokerAdmin``): ``url``, ``host``, ``port``,
``add_user``, ``delete_user``, ``add_vhost``, ``delete_vhost``, ``set_permissions``,
``clear_permissions``, ``set_memory_alarm``.

The real half skips with one clear line when rabbitmq-server is not installed, except under
``CI=true`` where a missing server is a failure.
"""

from __future__ import annotations

import os
import uuid

import pytest

from broker_sim import SimCluster
from scenarios.backends.local import RabbitMQUnavailable, RealRabbitNode

IN_CI = os.environ.get("CI", "").lower() == "true"


@pytest.fixture(scope="session")
def sim_cluster():
    with SimCluster(nodes=1) as cluster:
        yield cluster


@pytest.fixture(scope="session")
def sim_node(sim_cluster):
    return sim_cluster.nodes[0]


def running_real_node(tmp_path_factory, label: str, **options):
    """A private real rabbitmq-server for a fixture to yield (``RealRabbitNode`` options),
    stopped afterwards; skipped with one line when none can start, failed under CI=true."""
    try:
        node = RealRabbitNode(workdir=tmp_path_factory.mktemp(label), **options)
        node.start()
    except RabbitMQUnavailable as exc:
        if IN_CI:
            pytest.fail(f"CI=true and the real RabbitMQ could not start: {exc}")
        pytest.skip(f"real rabbitmq-server unavailable: {exc}")
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(scope="session")
def real_node(tmp_path_factory):
    yield from running_real_node(tmp_path_factory, "rabbitmq")


@pytest.fixture(params=["sim", "real"], scope="session")
def broker(request):
    """The broker under test: the simulated node or a real rabbitmq-server."""
    if request.param == "sim":
        return request.getfixturevalue("sim_node")
    return request.getfixturevalue("real_node")


@pytest.fixture
def uid() -> str:
    """A short unique suffix so tests sharing a session broker never collide."""
    return uuid.uuid4().hex[:10]
