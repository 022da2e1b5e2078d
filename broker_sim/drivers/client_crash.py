"""The client-process faults of a virtual world: ``crash`` and ``restart_client``.

``crash(actor)`` is the client's process dying (SIGKILL, the OOM killer, a pod evicted):
the actor and every thread it started stop where they are and never run again (no
``finally``, no ``Connection.Close``: a dead process says nothing), and the kernel closes
their sockets, so each node sees its connections end at once, as RabbitMQ sees a TCP FIN
from a vanished client (its unacked deliveries go back to their queues, redelivered).
``restart_client(actor)`` is the supervisor (systemd, Kubernetes, Celery's pool) starting
the role again from the top, as a new actor of the same name.

The dead greenlets are kept referenced until the world ends: a collected greenlet would
have ``GreenletExit`` thrown into it, running its ``finally`` blocks after all."""

from __future__ import annotations

from typing import TYPE_CHECKING

from broker_sim.cluster import FaultError

if TYPE_CHECKING:
    from broker_sim.drivers.virtual import Actor, World


def crash(world: World, name: str) -> None:
    victims = _living(world, name)
    if world.current is not None and world.current in victims:
        raise FaultError(f"crash: actor {name!r} cannot crash itself")
    names = {a.name for a in victims}
    for actor in victims:
        actor.done = True
        actor.blocked_on = "crashed"
    world.crashed.extend(victims)
    for link in [link for link in world.links.values() if link.actor in names]:
        link.cut(reset=False)
    world.route()


def restart_client(world: World, name: str) -> None:
    roles = [a for a in world.actors if a.name == name and a.group is None]
    if not roles:
        raise FaultError(f"restart_client: no actor named {name!r}")
    if not roles[-1].done:
        raise FaultError(f"restart_client: actor {name!r} is running (crash it first)")
    world.actors.append(_fresh(roles[-1], world.clock()))


def awaiting_restart(world: World) -> bool:
    """Some crashed role has not been restarted (the run waits for the faults to come)."""
    latest = {a.name: a for a in world.actors if a.group is None}
    return any(latest.get(a.name) is a for a in world.crashed)


def _living(world: World, name: str) -> list[Actor]:
    roles = [a for a in world.actors if a.name == name and a.group is None]
    if not roles:
        raise FaultError(f"crash: no actor named {name!r}")
    living = [a for a in world.actors if not a.done and name in (a.name, a.group)]
    if not living:
        raise FaultError(f"crash: actor {name!r} has already ended")
    return living


def _fresh(actor: Actor, now: float) -> Actor:
    from broker_sim.drivers.virtual import Actor

    return Actor(actor.name, actor.fn, wake_at=now)
