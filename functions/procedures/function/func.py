"""The Knative entry point: ``new()`` builds the function object around the Flask app."""

from __future__ import annotations

from lscloud import knative

from .app import create_app

# the read-only catalogue: no events in or out, so readiness asks the object store only
new = knative.function(create_app, needs=("s3",))
