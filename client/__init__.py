"""Warren's bundled AMQP 0-9-1 failover client (kombu's API, done right) — in progress.

Built so far (issue 5): validated broker URL lists (:mod:`client.url`), retry schedules,
budgets and failover strategies (:mod:`client.retry`), and kombu/py-amqp-compatible
exceptions (:mod:`client.errors`). The connection, producer and consumer come next.
"""
