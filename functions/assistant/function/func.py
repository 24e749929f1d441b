"""The Knative entry point: ``new()`` builds the function object around the Flask app."""

from __future__ import annotations

from lscloud import knative

from .app import create_app

# conversations and rate windows live in the store; the tick sweeps them (func.yaml subscribes)
new = knative.function(create_app, needs=("s3",))
