"""The Knative entry point: ``new()`` builds the function object around the Flask app."""

from __future__ import annotations

from lscloud import knative

from .app import create_app

# no events in or out: readiness asks the object store (registry, attempt counters) only
new = knative.function(create_app, needs=("s3",))
