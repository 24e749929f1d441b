"""The Knative entry point: border's events complete or undo export links (``truck.exited``; a
declaration cancelled, refused or expired), and the platform clock's tick sweeps the function's
run-once records."""

from lscloud import knative

from .app import create_app
from .exports import ENDED, EXITED, on_ended, on_exited

new = knative.function(create_app, events={EXITED: on_exited, **{t: on_ended for t in ENDED}}, needs=("s3",))
