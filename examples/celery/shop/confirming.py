"""The shop's worker with publisher confirms on every broker connection
(``broker_transport_options = {"confirm_publish": True}``, as Celery's docs suggest for not
losing tasks a worker sends): the variant of finding 2 in which the worker never even
notices the hung node, since its main loop waits for the confirm of a worker event."""

from celery import Celery

app = Celery("shop", include=["shop.tasks"])
app.config_from_object("shop.settings")
app.conf.broker_transport_options = {"confirm_publish": True}
