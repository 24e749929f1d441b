"""Every JetStream stream the platform puts on the NATS store is bounded and fits it: the functions'
stream, its dead-letter stream, the devices' stream, the partner nonces' bucket, each broker's channel
stream and the dead-letter channel's."""

from __future__ import annotations

import json

import pytest
import yaml

from infra_support import INFRA, k8s_objects

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

from components import bus, knative  # noqa: E402
from components.settings import NatsSettings, SettingsError, StackSettings, check_store_budget, duration_ns  # noqa: E402

STACKS = sorted(p.name.split(".")[1] for p in INFRA.glob("Pulumi.*.yaml"))


def stack_nats(stack: str) -> NatsSettings:
    doc = yaml.safe_load((INFRA / f"Pulumi.{stack}.yaml").read_text(encoding="utf-8"))["config"]
    return NatsSettings(**doc.get("lscloud:nats", {}))


@pytest.mark.parametrize("stack", STACKS)
def test_every_stream_and_channel_is_bounded_and_together_they_fit_the_store(stack, program):
    objs = k8s_objects(program(stack))
    (cm,) = [o for o in objs if o["kind"] == "ConfigMap" and o["metadata"]["name"] == "nats-config"]
    store = int(next(line.split(":")[1] for line in cm["data"]["nats.conf"].splitlines() if "max_file_store" in line))
    streams = [json.loads(cm["data"][k]) for k in ("stream.json", "dlq-stream.json", "devices-stream.json",
                                                    "nonces-stream.json")]
    channels = [o["spec"]["stream"]["config"] for o in objs if o["kind"] == "NatsJetStreamChannel"]
    template = [yaml.safe_load(o["data"]["channel-template-spec"])["spec"]["stream"]["config"] for o in objs
                if o["kind"] == "ConfigMap" and o["metadata"]["name"] == knative.BROKER_CONFIG]
    brokers = [o for o in objs if o["kind"] == "Broker"]
    assert streams and channels and template and brokers
    for s in streams:
        # full, the nonces' bucket refuses new nonces: dropping old ones would forget them early
        assert s["max_bytes"] > 0 and s["max_age"] > 0, s["name"]
        assert s["discard"] == ("new" if s["name"].endswith("_NONCES") else "old"), s["name"]
    for c in channels + template:
        assert c["maxBytes"] > 0 and c["maxAge"] and c["discard"] == "Old"
    # what JetStream reserves on each server: the four streams, one channel stream per broker, the dead-letter channel
    reserved = sum(s["max_bytes"] for s in streams) + template[0]["maxBytes"] * len(brokers) + \
        sum(c["maxBytes"] for c in channels)
    assert reserved <= store, f"{stack}: {reserved} bytes reserved on a {store}-byte store"


def test_the_old_prod_limits_are_refused_naming_the_streams():
    """Prod once gave LSCLOUD and LSCLOUD_DLQ 40 GB each on a 45 GiB store: the second stream failed."""
    with pytest.raises(SettingsError, match=r"insufficient storage resources") as err:
        NatsSettings(storageSize="50Gi", streamMaxBytes="40GB", dlqMaxBytes="40GB")
    assert "LSCLOUD 40.00 GB" in str(err.value) and "LSCLOUD_DLQ 40.00 GB" in str(err.value)


def test_each_broker_adds_a_channel_stream_to_the_budget():
    n = NatsSettings(storageSize="10Gi", streamMaxBytes="5GB", dlqMaxBytes="1GB", channelMaxBytes="1GB",
                     deadLetterChannelMaxBytes="1GB")   # 8 GB of a 9.66 GB store with one broker
    check_store_budget(n, ["default"])
    with pytest.raises(SettingsError, match="channel of broker border"):
        check_store_budget(n, ["default", "border", "softatm"])


@pytest.mark.parametrize("field, value", [("streamMaxBytes", "0"), ("dlqMaxBytes", "-1"), ("channelMaxBytes", "lots"),
                                          ("deadLetterChannelMaxAge", "0h"), ("streamMaxAge", "forever")])
def test_unbounded_or_malformed_limits_are_refused(field, value):
    with pytest.raises(SettingsError, match=f"nats.{field}"):
        NatsSettings(**{field: value})


def test_the_program_checks_the_budget_with_the_brokers_func_yaml_subscribes_on():
    base = {"domain": "d", "imageRegistry": "r", "imageTag": "t", "cluster": {"mode": "existing"},
            "apiServerCidrs": ["10.0.0.0/24"]}
    s = StackSettings.from_values({**base, "nats": {"storageSize": "8Gi"}}.get)
    assert s.nats.store_bytes == int(8 * 1024**3 * 0.9)
    with pytest.raises(SettingsError, match="storageSize 5Gi"):  # the defaults reserve 7.5 GB
        StackSettings.from_values({**base, "nats": {"storageSize": "5Gi"}}.get)
    assert bus.render_stream(s.nats)["max_bytes"] == 4_000_000_000


def test_the_nonces_bucket_keeps_a_nonce_as_long_as_any_function_s_window_lets_it_verify():
    from components.settings import check_nonce_lifetime

    # the default keeps a nonce what the default window needs (2 × 300 + 60 = 11 min), no longer: a
    # nonce kept an hour held its bytes six times as long, and the bucket filled six times as soon
    assert duration_ns(NatsSettings().noncesMaxAge) / 1e9 == 2 * 300 + 60
    check_nonce_lifetime(NatsSettings(), [{}, {"LSCLOUD_SIGNATURE_WINDOW_S": "300"}])
    with pytest.raises(SettingsError, match=r"noncesMaxAge \(11m\) is shorter .* 662 s .* window 301 s"):
        check_nonce_lifetime(NatsSettings(), [{}, {"LSCLOUD_SIGNATURE_WINDOW_S": "301"}])
    check_nonce_lifetime(NatsSettings(noncesMaxAge="1h"), [{"LSCLOUD_SIGNATURE_WINDOW_S": "1770"}])   # 2 × 1770 + 60 = 1 h
    with pytest.raises(SettingsError, match=r"noncesMaxAge \(1h\) is shorter .* 3660 s .* window 1800 s"):
        check_nonce_lifetime(NatsSettings(noncesMaxAge="1h"), [{}, {"LSCLOUD_SIGNATURE_WINDOW_S": "1800"}])
    check_nonce_lifetime(NatsSettings(noncesMaxAge="2h"), [{"LSCLOUD_SIGNATURE_WINDOW_S": "1800"}])
    with pytest.raises(SettingsError, match="noncesMaxAge"):
        check_nonce_lifetime(NatsSettings(), [{"LSCLOUD_SIGNATURE_WINDOW_S": "soon"}])
