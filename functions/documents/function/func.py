"""The Knative entry point."""

from lscloud import knative

from .app import create_app

new = knative.function(create_app, needs=("s3",))
