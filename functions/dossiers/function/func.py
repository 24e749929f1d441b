"""The Knative entry point: the Flask app plus the platform clock's tick (delivered at /events);
the dossiers publish their own facts, others listen."""

from __future__ import annotations

from lscloud import knative

from .app import create_app
from .schedule import TICKED, on_tick
from .signed_results import ISSUED, on_document_issued

new = knative.function(create_app, events={TICKED: on_tick, ISSUED: on_document_issued}, needs=("s3", "nats"))
