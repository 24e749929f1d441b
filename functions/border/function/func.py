"""The Knative entry point: the Flask app plus the gate devices' events and the platform clock's tick
(delivered at /events)."""

from __future__ import annotations

from lscloud import knative

from .app import create_app
from .device_events import PLATE_READ, WEIGHT_MEASURED, on_plate, on_weight
from .schedule import TICKED, on_tick

new = knative.function(create_app, events={WEIGHT_MEASURED: on_weight, PLATE_READ: on_plate, TICKED: on_tick},
                       needs=("s3",))
