"""The shop: orders are charged by a Celery worker (``shop.worker:app``)."""
