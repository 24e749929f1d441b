"""The Knative entry point: the Flask app, plus the transfer facts that become bank webhooks (at /events)."""

from __future__ import annotations

from lscloud import knative

from .app import create_app
from .webhooks import TYPES, deliver

# a webhook carries the event id and banks dedupe by it (docs/partner-banks.md, the kit's
# webhook-duplicates check): a redelivery is safe without the runtime's events-seen lease
new = knative.function(create_app, events={t: knative.repeat_safe(deliver) for t in TYPES}, needs=("s3", "nats"))
