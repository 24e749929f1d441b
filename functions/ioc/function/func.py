"""The Knative entry point: every event type the IOC counts goes to the live projection."""

from flask import current_app

from lscloud import knative

from .app import create_app
from .facts import HANDLED


def absorb(event: dict) -> None:
    current_app.config["IOC_LIVE"].absorb(event)


# A repeat of an event changes nothing by itself: its fact is written under the digest of its source
# and id (the same object, the same bytes) and folded in once (Projection.apply keeps a fact id once).
# So no events-seen lease: the IOC takes every event the platform publishes, and the lease's create
# and completion, with the clock sweep's read and delete after, were four store calls an event
# beside the one the fact needs.
new = knative.function(create_app, events={t: knative.repeat_safe(absorb) for t in HANDLED}, needs=("s3",))
