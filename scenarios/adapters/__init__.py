"""Client adapters: how a scenario's publishers, consumers and probes are played by one
client library (DESIGN section 8).

The interface a user implements to put their own code under Warren's scenarios (their
kombu- or pika-based publisher or worker), without touching Warren internals::

    class MyAdapter:
        name = "my-service"

        def publisher(self, env, spec):   # spec: scenarios.model.Publisher
            ...  # publish spec.messages messages with message_id=env.message_id(spec, n)
        def consumer(self, env, spec):    # spec: scenarios.model.ConsumerSpec
            ...  # consume and ack until env.settled()
        def probe(self, env, probe):      # optional: scenarios.model.Probe
            raise NotImplementedError
        backends = ("live",)              # optional: where it can run (default: any)

    def factory():                        # warren run --client mypkg.warren:factory
        return MyAdapter()

Each method is ordinary blocking code run as one actor of the backend. ``env``
(:class:`scenarios.runner.Env`) gives it the broker URLs in a role's failover order
(``env.urls(spec.nodes)``), the queue to use (``env.queue``), a clock and a sleep that
follow the backend's time (``env.clock()``, ``env.sleep(s)``), the bundled client's runtime
(``env.runtime``), and ``env.record(kind, **details)`` for the history events DESIGN
section 5 lists that the client does not record itself: ``publish_invoke`` / ``publish_ok``
(``confirmed=``) / ``publish_fail`` / ``publish_unknown`` with ``id=``, ``deliver`` with
``id=``, ``redelivered=``, ``ack`` with ``id=``, ``recovery_succeeded`` per reconnect. The
bundled client records all of them itself. A consumer that calls ``env.processed(id)``
when its work on a message is done (before the ack) is checked for work lost between
delivery and processing too (the ``unprocessed`` figure: a worker that acks first and
dies mid-message). An exception that leaves a method is recorded
as ``escaped`` (a failure of the client code, not of Warren).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
from collections.abc import Callable


def play_style(styles: dict[str, Callable], env, spec) -> None:
    """Play a consumer ``spec`` with the function an adapter writes for its style
    (:data:`scenarios.model.CONSUMER_STYLES`); the built-in adapters write all four."""
    try:
        role = styles[spec.style]
    except KeyError:
        raise AdapterError(f"this adapter has no {spec.style!r} consumer") from None
    role(env, spec)


def drain_until_settled(env, conn) -> None:
    """The seeds' consumer loop: ``drain_events(timeout=1)`` and, when nothing came, a
    ``heartbeat_check()`` (seed 003), until the run settles. kombu's and the bundled
    client's connections both take it; a connection error leaves it for ``ensure``."""
    while not env.settled():
        try:
            conn.drain_events(timeout=1)
        except TimeoutError:
            conn.heartbeat_check()


class AdapterError(ValueError):
    """``--client`` names no adapter, or its factory cannot be imported or called."""


#: the built-in adapters over third-party libraries: name -> (module, class, the library)
LIBRARY_ADAPTERS = {
    "kombu": ("scenarios.adapters.kombu_adapter", "KombuAdapter", "kombu"),
    "pika": ("scenarios.adapters.pika_adapter", "PikaAdapter", "pika"),
}


def builtin() -> dict[str, Callable]:
    from scenarios.adapters.bundled import BundledAdapter

    known: dict[str, Callable] = {"bundled": BundledAdapter}
    for name, (module, cls, library) in LIBRARY_ADAPTERS.items():
        known[name] = functools.partial(_library_adapter, name, module, cls, library)
    return known


def _library_adapter(name: str, module: str, cls: str, library: str):
    try:
        return getattr(importlib.import_module(module), cls)()
    except ImportError as exc:
        if (exc.name or "").split(".")[0] != library:  # a bug of ours, not a missing library
            raise
        raise AdapterError(
            f"client {name!r} needs {library}, which is not installed ({exc}): "
            f"pip install {library}  (or: pip install 'warren[clients]')"
        ) from exc


#: ``celery:package.module:app [worker options]``: a user's Celery app, its worker as the
#: consumer (scenarios.adapters.celery_adapter)
CELERY_PREFIX = "celery:"


def check_spec(spec: str) -> None:
    """A usage error when ``spec`` is neither a built-in name, ``module:factory`` nor
    ``celery:module:app``."""
    if spec.startswith(CELERY_PREFIX):
        _check_celery(spec.removeprefix(CELERY_PREFIX).split(" ")[0])
        return
    known = builtin()
    if spec not in known and (":" not in spec or not all(spec.partition(":")[::2])):
        raise AdapterError(
            f"unknown client {spec!r}: one of {', '.join(known)} or package.module:factory"
        )
    if spec in LIBRARY_ADAPTERS:
        library = LIBRARY_ADAPTERS[spec][2]
        if not _installed(library):
            raise AdapterError(
                f"client {spec!r} needs {library}, which is not installed: pip install "
                f"{library}  (or: pip install 'warren[clients]')"
            )


def _check_celery(app_path: str) -> None:
    module, _, attr = app_path.partition(":")
    if not module or not attr:
        raise AdapterError(
            f"client 'celery:{app_path}': name the app as celery:package.module:attribute"
        )
    if not _installed("celery"):
        raise AdapterError(
            "client 'celery:...' needs celery, which is not installed: pip install celery"
        )


def _installed(library: str) -> bool:
    try:
        return importlib.util.find_spec(library) is not None
    except ValueError:  # imported, with no spec: it is there
        return True


def load(spec: str):
    """An adapter from a built-in name, ``package.module:factory`` or
    ``celery:package.module:app [celery worker options]``."""
    check_spec(spec)
    if spec.startswith(CELERY_PREFIX):
        from scenarios.adapters.celery_adapter import CeleryAdapter

        app_path, *worker_args = spec.removeprefix(CELERY_PREFIX).split()
        return CeleryAdapter(app_path, tuple(worker_args))
    known = builtin()
    if spec in known:
        return known[spec]()
    module_name, _, attr = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attr)
    except (ImportError, AttributeError) as exc:
        raise AdapterError(f"client {spec!r} cannot be imported: {exc}") from exc
    try:
        adapter = factory()
    except Exception as exc:
        raise AdapterError(f"client factory {spec!r} raised {exc!r}") from exc
    missing = [m for m in ("publisher", "consumer") if not callable(getattr(adapter, m, None))]
    if missing:
        raise AdapterError(f"client {spec!r} has no {' or '.join(missing)} method")
    return adapter
