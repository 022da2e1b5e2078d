"""The order service's broker code: ``place_order`` publishes an order with publisher
confirms and retries forever; ``OrderWorker`` (a kombu ``ConsumerMixin``) processes orders
and acks each one after it is processed. Only ``orders.warren_adapter`` knows Warren's
adapter interface (and imports nothing of Warren)."""

from orders.worker import ORDERS, OrderWorker, connect, place_order

__all__ = ["ORDERS", "OrderWorker", "connect", "place_order"]
