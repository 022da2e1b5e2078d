"""asyncio for actors: each actor has its own running event loop.

asyncio keeps "the running loop" (and the policy's current loop) per OS thread, and every
actor shares the world's one thread: without help, a second actor's ``asyncio.run()``
would see the first one's loop running. The world calls :func:`enter` / :func:`leave`
around every switch into an actor, so each actor sees only its own loop and the world's
scheduler (or an event loop the world was started from) gets its own back. The loops
themselves need nothing else: their selector is the world's (``selectors`` is virtual for
actors), their clock is ``time.monotonic`` (virtual), their self-pipe a ``socketpair``
(virtual) and ``getaddrinfo`` runs in a thread pool whose threads are actors.
"""

from __future__ import annotations

import sys


def _events():
    return sys.modules.get("asyncio.events")


def _policy_local(events):
    policy = events._event_loop_policy  # None until someone asked for the policy
    return getattr(policy, "_local", None) if policy is not None else None


def enter(actor) -> None:
    events = _events()
    if events is None:
        return
    local = _policy_local(events)
    actor.asyncio_outer = (events._get_running_loop(), getattr(local, "_loop", None))
    loop, current = getattr(actor, "asyncio_own", (None, None))
    events._set_running_loop(loop)
    if local is not None:
        local._loop = current


def leave(actor) -> None:
    events = _events()
    outer = getattr(actor, "asyncio_outer", None)
    if events is None or outer is None:
        return
    local = _policy_local(events)
    actor.asyncio_own = (events._get_running_loop(), getattr(local, "_loop", None))
    events._set_running_loop(outer[0])
    if local is not None:
        local._loop = outer[1]
    actor.asyncio_outer = None
