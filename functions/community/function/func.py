"""The Knative entry point: HTTP, and the platform clock's tick (the counts a stopped verification
left low; then the runtime sweeps the function's run-once records and flushes its outbox)."""

from lscloud import knative
from lscloud.clock import TICKED

from .app import create_app
from .recount import on_tick

# the tick only raises counts to what it lists and deletes settled entries: run twice, it changes
# nothing more, so it takes no events-seen record a minute
new = knative.function(create_app, events={TICKED: knative.repeat_safe(on_tick)}, needs=("s3",))
