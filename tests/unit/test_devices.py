"""lscloud.devices without servers: the topic scheme, device messages as CloudEvents, nats-server users."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from lscloud import devices


def test_topics_and_subjects():
    t = devices.topic("environment", "stations", "lsn-1", "observations")
    assert t == "devices/environment/stations/lsn-1/observations"
    assert devices.subject(t) == "devices.environment.stations.lsn-1.observations"
    for bad in ("a/b", "+", "#", "A", "", "x.y"):
        with pytest.raises(ValueError):
            devices.topic("environment", "stations", bad)


def test_a_device_message_becomes_a_cloudevent():
    at = datetime(2026, 12, 3, 1, 2, 3, tzinfo=timezone.utc)
    e = devices.to_event("devices.environment.stations.lsn-1.observations", b'{"pm25": 3}', {"Nmqtt-Pub": "1"}, 42, at)
    assert (e["type"], e["source"], e["subject"], e["devicechannel"], e["data"]) == (
        "vn.langson.environment.device.message.received.v1", "/devices/environment", "stations/lsn-1/observations",
        "mqtt", {"pm25": 3})
    again = devices.to_event("devices.environment.stations.lsn-1.observations", b'{"pm25": 3}', {}, 42, at)
    assert again["id"] == e["id"] and again["devicechannel"] == "nats"      # a redelivery is the same event
    raw = devices.to_event("devices.environment.x", b"\xff\x00", None, 43, at)
    assert raw["datacontenttype"] == "application/octet-stream" and "data_base64" in raw
    assert devices.to_event("devices.Bad.x", b"{}", None, 1, at) is None
    assert devices.to_event("other.environment.x", b"{}", None, 1, at) is None


def test_nats_users_publish_only_their_topics():
    c = devices.DeviceCredential("env-lsn-1", domain="environment", topics=["devices/environment/stations/lsn-1/observations"],
                                 password_hash="$2b$11$x", issued_at="t", issued_by="op")
    (user,) = devices.nats_users([c], devices.LOCAL_CONNECTIONS)
    assert user["permissions"] == {"publish": {"allow": ["devices.environment.stations.lsn-1.observations"]},
                                   "subscribe": {"deny": [">"]}}
    assert user["password"].startswith("$2b$") and set(user["allowed_connection_types"]) == {"MQTT", "STANDARD"}
    # the cluster admits devices over MQTT only
    (user,) = devices.nats_users([c], devices.CLUSTER_CONNECTIONS)
    assert user["allowed_connection_types"] == ["MQTT"]


def test_device_users_go_where_the_accounts_template_marks_them():
    template = "accounts {\n  LSCLOUD: {\n    users: [\n      {user: \"fn-a@nats.lscloud\"}\n" \
               f"      {devices.USERS_MARKER}\n    ]\n  }}\n}}\n"
    users = [{"user": "env-lsn-1", "password": "$2b$11$hash", "allowed_connection_types": ["MQTT"]}]
    text = devices.render_users(template, users)
    assert devices.USERS_MARKER not in text
    assert '      {"allowed_connection_types": ["MQTT"], "password": "$2b$11$hash", "user": "env-lsn-1"}\n    ]' in text
    assert devices.render_users(template, []) == template.replace(f"      {devices.USERS_MARKER}\n", "")
    for broken in (template.replace(devices.USERS_MARKER, ""), template.replace(
            devices.USERS_MARKER, devices.USERS_MARKER + "\n      " + devices.USERS_MARKER)):
        with pytest.raises(ValueError, match="exactly once"):
            devices.render_users(broken, users)


def test_device_domains_are_the_functions_whose_device_messages_are_subscribed_to():
    from pathlib import Path
    from types import SimpleNamespace as NS

    from lscloud import manifest

    found = manifest.discover([Path(__file__).resolve().parents[2] / "functions"])
    assert devices.domains(found) == ["environment"]
    sub = lambda t: NS(type=t, source="default")  # noqa: E731
    ioc = NS(name="ioc", subscriptions=[sub(devices.event_type("environment"))])
    env = NS(name="environment", subscriptions=[])
    assert devices.domains([ioc, env]) == ["environment"]   # owned by environment, heard by the IOC
    with pytest.raises(ValueError, match="no function owns"):
        devices.domains([ioc])   # its credentials would be in no bucket
