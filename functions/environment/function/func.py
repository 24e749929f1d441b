"""The Knative entry point: HTTP, and device messages the platform relays from MQTT and NATS."""

from lscloud import knative, runtime

from . import device_messages
from .app import create_app


def _device_message(event: dict) -> None:
    device_messages.handle(event, runtime.current().settings)


new = knative.function(create_app, events={device_messages.TYPE: _device_message})
