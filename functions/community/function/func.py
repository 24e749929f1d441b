"""The Knative entry point (the platform clock's tick sweeps the function's run-once records)."""

from lscloud import knative

from .app import create_app

new = knative.function(create_app)
