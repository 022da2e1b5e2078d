"""The shop's Celery app: ``celery -A shop.worker worker``."""

from celery import Celery

app = Celery("shop", include=["shop.tasks"])
app.config_from_object("shop.settings")
