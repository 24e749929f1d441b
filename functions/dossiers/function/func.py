"""The Knative entry point: the Flask app (no subscriptions: the dossiers publish, others listen)."""

from __future__ import annotations

from lscloud import knative

from .app import create_app

new = knative.function(create_app, needs=("s3", "nats"))
