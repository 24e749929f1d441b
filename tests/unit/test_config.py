"""Settings: defaults fit the local cloud; bad values stop the process with the variable named."""

import pytest

from lscloud import config


def test_defaults_fit_the_local_cloud():
    s = config.load({})
    assert s.env == "local"
    assert s.s3_endpoint.startswith("http://127.0.0.1")
    assert s.nats_url.startswith("nats://127.0.0.1")
    assert s.bucket == "lscloud"


@pytest.mark.parametrize("var,value,named", [
    ("LSCLOUD_S3_ENDPOINT", "localhost:9000", "LSCLOUD_S3_ENDPOINT"),
    ("LSCLOUD_NATS_URL", "http://x:4222", "LSCLOUD_NATS_URL"),
    ("LSCLOUD_BUCKET", "Bad_Bucket", "LSCLOUD_BUCKET"),
    ("LSCLOUD_MAX_BODY_BYTES", "lots", "LSCLOUD_MAX_BODY_BYTES"),
    ("LSCLOUD_DOWNLOAD_LINK_TTL_S", "0", "LSCLOUD_DOWNLOAD_LINK_TTL_S"),
    ("LSCLOUD_DOWNLOAD_LINK_TTL_S", "86401", "LSCLOUD_DOWNLOAD_LINK_TTL_S"),
    ("LSCLOUD_ENV", "prod", "LSCLOUD_ENV"),
    ("LSCLOUD_JWT_ALGORITHMS", "HS256", "LSCLOUD_JWT_ALGORITHMS"),
    ("LSCLOUD_PARTNER_KEYS", "{\"mb\": [\"short\"]}", "LSCLOUD_PARTNER_KEYS"),
    ("LSCLOUD_PARTNER_KEYS", "not json", "LSCLOUD_PARTNER_KEYS"),
    ("LSCLOUD_EVENTS_JWKS_URL", "kubernetes.default.svc/openid/v1/jwks", "LSCLOUD_EVENTS_JWKS_URL"),
    ("LSCLOUD_EVENTS_PUBLIC_KEY", "not a pem", "LSCLOUD_EVENTS_PUBLIC_KEY"),
    ("LSCLOUD_EVENTS_PUBLIC_KEY", "-----BEGIN PUBLIC KEY-----\nno base64!\n-----END PUBLIC KEY-----", "LSCLOUD_EVENTS_PUBLIC_KEY"),
    ("LSCLOUD_EVENTS_PUBLIC_KEY_FILE", "/no/such/key.pem", "LSCLOUD_EVENTS_PUBLIC_KEY_FILE"),
    ("LSCLOUD_EVENTS_SUBJECTS", "system:serviceaccount:lscloud:*-trigger", "LSCLOUD_EVENTS_SUBJECTS"),
    ("LSCLOUD_EVENTS_SUBJECTS", "two words", "LSCLOUD_EVENTS_SUBJECTS"),
    ("LSCLOUD_EVENTS_AUDIENCE", "a b", "LSCLOUD_EVENTS_AUDIENCE"),
    ("LSCLOUD_NATS_CA_FILE", "/no/such/ca.crt", "LSCLOUD_NATS_CA_FILE"),
    ("LSCLOUD_S3_CA_FILE", "/no/such/ca.crt", "LSCLOUD_S3_CA_FILE"),
    ("LSCLOUD_EVENTS_JWKS_CA_FILE", "/no/such/ca.crt", "LSCLOUD_EVENTS_JWKS_CA_FILE"),
    ("OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", "otel-collector-metrics:4318", "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT"),
])
def test_bad_values_name_the_variable(var, value, named):
    with pytest.raises(config.ConfigError) as err:
        config.load({var: value})
    assert named in str(err.value)


def test_cluster_mode_requires_a_token_key():
    with pytest.raises(config.ConfigError, match="LSCLOUD_JWT"):
        config.load({"LSCLOUD_ENV": "cluster"})


def test_env_vars_round_trip():
    s = config.load({"LSCLOUD_BUCKET": "abc", "LSCLOUD_PARTNER_KEYS": '{"mb": ["k" , "0123456789abcdef"]}'.replace('"k" ', '"0123456789abcdeg"'),
                     "K_SERVICE": "directory", "LSCLOUD_NATS_URL": "nats://10.0.0.1:4222,nats://10.0.0.2:4222"})
    again = config.load(s.env_vars())
    assert again == s
    signer = config.load({"K_SERVICE": "identity", "LSCLOUD_JWT_SIGNING_KEY_FILE": "/state/keys/dev-es256.pem"})
    assert signer.jwt_signing_key_file == "/state/keys/dev-es256.pem" and config.load(signer.env_vars()) == signer


def test_secrets_are_not_in_repr():
    s = config.load({"LSCLOUD_S3_SECRET_KEY": "very-secret-value"})
    assert "very-secret-value" not in repr(s)


def test_event_sender_settings_local_and_cluster(tmp_path):
    """Locally /events trusts the dispatcher's own key and subject; the cluster trusts nobody until
    the deployment names the audience, the keys and the subjects (a function with events will not start)."""
    from lscloud.auth import check_eventing_settings, eventing_keys

    local = config.load({"K_SERVICE": "border"})
    assert local.events_issuer == config.LOCAL_EVENTS_ISSUER and local.events_subjects == (config.LOCAL_EVENTS_SUBJECT,)
    check_eventing_settings(local)
    cluster_env = {"LSCLOUD_ENV": "cluster", "LSCLOUD_JWT_JWKS_URL": "https://idp/jwks", "K_SERVICE": "border",
                   "LSCLOUD_PSEUDONYM_KEY": "p" * 40}
    cluster = config.load(cluster_env)
    assert cluster.events_issuer == "https://kubernetes.default.svc.cluster.local" and cluster.events_subjects == ()
    with pytest.raises(config.ConfigError, match="LSCLOUD_EVENTS_AUDIENCE"):
        check_eventing_settings(cluster)
    with pytest.raises(config.ConfigError, match="LSCLOUD_EVENTS_JWKS_URL"):
        check_eventing_settings(config.load({**cluster_env, "LSCLOUD_EVENTS_AUDIENCE": "serving.knative.dev/service/ns/border"}))
    full = config.load({**cluster_env, "LSCLOUD_EVENTS_AUDIENCE": "serving.knative.dev/service/ns/border",
                        "LSCLOUD_EVENTS_JWKS_URL": "https://kubernetes.default.svc/openid/v1/jwks"})
    with pytest.raises(config.ConfigError, match="LSCLOUD_EVENTS_SUBJECTS"):
        check_eventing_settings(full)
    pem = eventing_keys(tmp_path)[1]
    ok = config.load({**cluster_env, "LSCLOUD_EVENTS_AUDIENCE": "serving.knative.dev/service/ns/border",
                      "LSCLOUD_EVENTS_PUBLIC_KEY": pem, "LSCLOUD_EVENTS_SUBJECTS": "system:serviceaccount:ns:*"})
    check_eventing_settings(ok)
    assert config.load(ok.env_vars()) == ok and pem not in repr(ok)


# -- a function's own settings --------------------------------------------------------------------

def test_a_function_section_reads_its_prefixed_variables_typed_and_bounded():
    from dataclasses import dataclass, field

    @dataclass(frozen=True)
    class Border:
        call_minutes: int = field(default=20, metadata={"min": 1})
        weight_tolerance: float = 0.02
        strict: bool = False

    s = config.load({"K_SERVICE": "border", "BORDER_CALL_MINUTES": "5", "BORDER_STRICT": "yes", "SOFTATM_X": "1"})
    assert s.function_env == {"BORDER_CALL_MINUTES": "5", "BORDER_STRICT": "yes"}
    assert config.section(s, Border) == Border(5, 0.02, True)
    assert config.load(s.env_vars()).function_env == s.function_env  # a child process gets them too
    for bad, message in (("0", "at least 1"), ("x", "whole number")):
        with pytest.raises(config.ConfigError, match=f"BORDER_CALL_MINUTES must be .*{message}"):
            config.section(config.load({"K_SERVICE": "border", "BORDER_CALL_MINUTES": bad}), Border)
    # parsed once per settings object (domain code asks on every request); other settings, other section
    assert config.section(s, Border) is config.section(s, Border)
    other = s.replace(function_env={"BORDER_CALL_MINUTES": "7"})
    assert config.section(other, Border).call_minutes == 7 and config.section(s, Border).call_minutes == 5


def test_a_client_certificate_comes_with_its_key_and_both_survive_a_child_process(tmp_path):
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_text("c")
    key.write_text("k")
    with pytest.raises(config.ConfigError, match="LSCLOUD_NATS_KEY_FILE"):
        config.load({"LSCLOUD_NATS_CERT_FILE": str(cert)})
    s = config.load({"LSCLOUD_NATS_CERT_FILE": str(cert), "LSCLOUD_NATS_KEY_FILE": str(key),
                     "LSCLOUD_NATS_URL": "tls://nats.example:4222",
                     "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT": "http://otel-collector-metrics:4318/v1/metrics"})
    assert config.load(s.env_vars()) == s


@pytest.mark.parametrize("env", ["local", "cluster"])
def test_an_events_key_that_does_not_load_stops_a_function_that_takes_events(env):
    # config.load checks the PEM form only (no cryptography on the start of a function without events);
    # every function with /events checks at start that the key loads
    from lscloud.auth import check_eventing_settings

    bad = "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----"
    settings = config.load({"LSCLOUD_EVENTS_PUBLIC_KEY": bad, "LSCLOUD_ENV": env, "LSCLOUD_JWT_JWKS_URL": "https://idp/jwks",
                            "LSCLOUD_PSEUDONYM_KEY": "x" * 64})
    with pytest.raises(config.ConfigError, match="LSCLOUD_EVENTS_PUBLIC_KEY"):
        check_eventing_settings(settings)
