"""Celery apps for tests/scenarios/test_celery_adapter.py (imported by the worker too)."""

from celery import Celery

plain = Celery("plain")
plain.conf.update(broker_heartbeat=10, task_acks_late=True, worker_prefetch_multiplier=1)

on_redis = Celery("on_redis", broker="redis://127.0.0.1:6379/0")
