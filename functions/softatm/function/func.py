"""The Knative entry point: the Flask app, plus the transfer facts that become bank webhooks (at /events)."""

from __future__ import annotations

from lscloud import knative

from .app import create_app
from .webhooks import TYPES, deliver

new = knative.function(create_app, events={t: deliver for t in TYPES}, needs=("s3", "nats"))
