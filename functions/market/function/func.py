"""The Knative entry point: border's ``truck.exited`` completes export links (and the platform
clock's tick sweeps the function's run-once records)."""

from lscloud import knative

from .app import create_app
from .exports import EXITED, on_exited

new = knative.function(create_app, events={EXITED: on_exited})
