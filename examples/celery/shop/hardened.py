"""The shop's worker with the workarounds for the two failures Warren finds in
``shop.worker`` (README, "Testing a Celery app"):

1. Native delayed delivery (Celery >= 5.5, on with quorum queues) sets itself up on every
   URL of the failover list at every reconnect, in the worker's main thread, before the
   event loop runs: about 17 s for each dead node (``retry_over_time`` sleeps 1, 3, 5 s,
   kombu's own connect retries add the rest), with no heartbeats sent. A heartbeat of 4 s
   lets the broker drop the new connection meanwhile, forever. The broker closes a
   connection after two missed intervals: 10 s (20 s) outlasts one dead node's 17 s only
   just, and lost that race on a loaded machine; 20 s (40 s) leaves room for one dead node,
   and for two only just.
2. See ``shop.hardened_hung``.
"""

from celery import Celery

app = Celery("shop", include=["shop.tasks"])
app.config_from_object("shop.settings")
app.conf.broker_heartbeat = 20
