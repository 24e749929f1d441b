"""The Knative entry point: HTTP, and the platform clock's tick (overdue reports, the outbox)."""

from lscloud import knative

from .app import create_app
from .schedule import TICKED, on_tick

new = knative.function(create_app, events={TICKED: on_tick}, needs=("s3", "nats"))
