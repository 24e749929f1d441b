"""The Knative entry point: the Flask app plus the platform clock's tick (delivered at /events);
the dossiers publish their own facts, others listen."""

from __future__ import annotations

from lscloud import knative

from .app import create_app
from .schedule import TICKED, on_tick
from .signed_results import ISSUED, on_document_issued

# the tick flags what is due by conditional writes that find it flagged already: run twice, it
# flags once, so it takes no events-seen record a minute (schedule.on_tick)
new = knative.function(create_app, events={TICKED: knative.repeat_safe(on_tick), ISSUED: on_document_issued},
                       needs=("s3",))
