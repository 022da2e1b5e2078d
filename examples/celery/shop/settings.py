"""The shop's Celery settings, as a team would write them for RabbitMQ in production.

``broker_url`` is a failover list (kombu's ``;`` form); Warren replaces it with the test
cluster's nodes. Everything else is under test."""

broker_url = (
    "amqp://guest:guest@rabbit1//;amqp://guest:guest@rabbit2//;amqp://guest:guest@rabbit3//"
)
task_default_queue = "orders"
task_default_queue_type = "quorum"  # replicated; turns on native delayed delivery (5.5+)
task_acks_late = True  # a task is acked when done, so a lost worker's task runs again
task_reject_on_worker_lost = True
worker_prefetch_multiplier = 1
broker_heartbeat = 4  # find a dead broker in ~8 s rather than the default 120 s
broker_connection_retry_on_startup = True
