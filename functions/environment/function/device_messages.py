"""Readings that devices published over MQTT (or gateways over NATS), relayed onto the bus by the
platform as ``vn.langson.environment.device.message.received.v1`` (:mod:`lscloud.devices`).

Topic scheme (MQTT; NATS subjects use dots): ``devices/environment/stations/<station>/observations``,
payload one observation ``{"observed_at": …, "pm25": …}`` or a list of them. NATS permissions let
each station's credentials publish only its own topic, so the topic names the station.
"""

from __future__ import annotations

import re

from lscloud import errors
from lscloud.store import ConditionalCheckFailed

from . import ingest, settings, stations

TYPE = "vn.langson.environment.device.message.received.v1"
_TOPIC = re.compile(r"^stations/([a-z0-9][a-z0-9-]{1,62}[a-z0-9])/observations$")


def handle(event: dict, platform) -> dict:
    """Store the message's readings like an HTTP batch; a message no retry can fix is a 4xx (dead letter)."""
    m = _TOPIC.match(event.get("subject") or "")
    if not m:
        raise errors.Invalid.at("subject", "not a station's observations topic",
                                "Chủ đề này không phải chủ đề dữ liệu quan trắc của một trạm.")
    station = stations.get(m.group(1))
    data = event.get("data")
    items = data if isinstance(data, list) else [data]
    channel = event.get("devicechannel") if event.get("devicechannel") in ("mqtt", "nats") else "nats"
    try:
        return ingest.record(station, items, channel, settings.of(platform))
    except ConditionalCheckFailed:
        # the hour kept changing under other writers: not the message's fault, deliver it again later
        raise errors.Unavailable("the station's hour is being written by others; retry", retry_after_s=1,
                                 detail_vi="Dữ liệu giờ này của trạm đang được ghi; vui lòng thử lại.") from None
