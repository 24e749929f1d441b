"""The Knative entry point: HTTP, and device messages the platform relays from MQTT and NATS."""

from lscloud import knative, runtime

from . import device_messages
from .app import create_app


def _device_message(event: dict) -> None:
    device_messages.handle(event, runtime.current().settings)


# Device messages are the platform's busiest events (every station, every minute or faster), and
# a repeat of one changes nothing by itself: a reading is kept once per station and observed_at
# (the same values again are a duplicate, storage.write_hour), the day's summary and the
# observations.recorded event follow only readings accepted, and an alert is judged only when a
# reading opens its hour. So no events-seen record: it cost each message a create-only PUT and a
# PUT, and later the clock's sweep a GET and a DELETE, half of the message's store work.
new = knative.function(create_app, events={device_messages.TYPE: knative.repeat_safe(_device_message)}, needs=("s3",))
