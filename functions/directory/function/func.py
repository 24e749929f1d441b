"""The Knative entry point: ``new()`` builds the function object around the Flask app."""

from __future__ import annotations

from lscloud import knative

from .app import create_app

new = knative.function(create_app)
