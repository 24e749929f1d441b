"""In the cluster a process given a store must have its own store user: the local store's
credentials are public (config.Settings' defaults), and the secret key also signs download links
(lscloud.web.downloads), so with it anyone could forge one."""

import pytest

from lscloud import config

# what infra/components/function.py gives every function, less a func.yaml's lscloud-s3 secretKeyRef lines
FUNCTION = {"LSCLOUD_ENV": "cluster", "LSCLOUD_JWT_JWKS_URL": "https://id.example/jwks", "LSCLOUD_PSEUDONYM_KEY": "p" * 40,
            "LSCLOUD_S3_ENDPOINT": "https://minio.lscloud-data.svc.cluster.local:9000", "LSCLOUD_BUCKET": "lscloud-border"}
OWN = {"LSCLOUD_S3_ACCESS_KEY": "fn-border", "LSCLOUD_S3_SECRET_KEY": "s" * 40}


@pytest.mark.parametrize("missing", ["LSCLOUD_S3_ACCESS_KEY", "LSCLOUD_S3_SECRET_KEY"])
def test_cluster_refuses_unset_store_credentials(missing):
    env = {**FUNCTION, **OWN}
    del env[missing]
    with pytest.raises(config.ConfigError, match=missing):
        config.load(env)


@pytest.mark.parametrize("var,local", [("LSCLOUD_S3_ACCESS_KEY", "lscloud"),
                                       ("LSCLOUD_S3_SECRET_KEY", "lscloud-local-secret")])
def test_cluster_refuses_the_public_local_credentials_set_explicitly(var, local):
    with pytest.raises(config.ConfigError, match=var):
        config.load({**FUNCTION, **OWN, var: local})


def test_cluster_with_its_own_store_user_loads():
    """The refusals leave a function's own store user alone (a guard: passes before the change too)."""
    s = config.load({**FUNCTION, **OWN})
    assert (s.s3_access_key, s.s3_secret_key) == ("fn-border", "s" * 40)


def test_cluster_process_without_a_store_needs_no_store_user():
    """A cluster process that uses no store is not asked for its credentials (a guard: passes before
    the change too)."""
    # the event bridge (infra/components/bridge.py): cluster settings, no bucket, no store endpoint
    bridge = {k: v for k, v in FUNCTION.items() if k not in ("LSCLOUD_S3_ENDPOINT", "LSCLOUD_BUCKET")}
    assert config.load(bridge).env == "cluster"


def test_local_mode_keeps_the_local_credentials():
    """Only the cluster refuses the public local credentials (a guard: passes before the change too)."""
    s = config.load({})
    assert (s.s3_access_key, s.s3_secret_key) == ("lscloud", "lscloud-local-secret")


@pytest.mark.parametrize("given", ["LSCLOUD_S3_ENDPOINT", "LSCLOUD_BUCKET"])
def test_either_a_store_endpoint_or_a_bucket_asks_for_the_store_user(given):
    env = {k: v for k, v in FUNCTION.items() if k not in ("LSCLOUD_S3_ENDPOINT", "LSCLOUD_BUCKET")}
    with pytest.raises(config.ConfigError, match="LSCLOUD_S3_ACCESS_KEY"):
        config.load({**env, given: FUNCTION[given]})
