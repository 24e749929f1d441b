"""The Knative entry point: HTTP, and the platform clock's tick (overdue reports, the outbox)."""

from lscloud import knative

from .app import create_app
from .schedule import TICKED, on_tick

# the tick flags what is due by conditional writes that find it flagged already: run twice, it
# flags once, so it takes no events-seen record a minute (schedule.on_tick)
new = knative.function(create_app, events={TICKED: knative.repeat_safe(on_tick)}, needs=("s3",))
