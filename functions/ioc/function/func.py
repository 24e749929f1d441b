"""The Knative entry point: every event type the IOC counts goes to the live projection."""

from flask import current_app

from lscloud import knative

from .app import create_app
from .facts import HANDLED


def absorb(event: dict) -> None:
    current_app.config["IOC_LIVE"].absorb(event)


new = knative.function(create_app, events={t: absorb for t in HANDLED})
