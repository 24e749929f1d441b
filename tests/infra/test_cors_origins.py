"""``lscloud:cors.origins``: the web pages that may call the functions from a browser, checked at
preview as the runtime reads them (exact https origins, or ``*``), and given to every function as
``LSCLOUD_CORS_ORIGINS`` (a platform variable: a func.yaml cannot set its own)."""

from __future__ import annotations

import dataclasses

import pytest

pulumi = pytest.importorskip("pulumi")

from lscloud import config, manifest  # noqa: E402

from components import function as fn  # noqa: E402
from components.settings import SettingsError, StackSettings  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BASE = {"domain": "d", "imageRegistry": "r", "imageTag": "t", "cluster": {"mode": "existing"},
        "apiServerCidrs": ["10.0.0.0/24"]}
PORTAL = "https://dichvucong.langson.gov.vn"
PLATFORM = fn.PlatformEndpoints(
    namespace="lscloud", s3_endpoint="https://minio.lscloud-data.svc:9000", nats_url="tls://nats.lscloud-data.svc:4222",
    stream="LSCLOUD", otlp_endpoint="http://otel:4318", bucket_prefix="lscloud", jwt_issuer="https://id.example",
    jwt_audience="lscloud", public_url_template="https://{name}.lscloud.example.vn")
FUNC_YAML = "specVersion: 0.36.0\nname: portal-api\nruntime: python\n"


def env_of(platform) -> dict:
    svc = fn.render_service(manifest.parse(FUNC_YAML, "/x/functions/portal-api/func.yaml"), platform, image="i")
    return {e["name"]: e.get("value") for e in svc["spec"]["template"]["spec"]["containers"][0]["env"]}


def test_the_stack_lists_exact_https_origins_or_star():
    assert StackSettings.from_values(BASE.get).cors.origins == ()
    origins = [PORTAL, "https://Officers.Langson.gov.vn:8443", "*"]
    s = StackSettings.from_values({**BASE, "cors": {"origins": origins}}.get)
    assert s.cors.origins == (PORTAL, "https://officers.langson.gov.vn:8443", "*")
    for bad in ([PORTAL + "/"], ["http://dichvucong.langson.gov.vn"], [PORTAL + ":443"], ["null"], PORTAL, [""]):
        with pytest.raises(SettingsError, match="lscloud:cors.origins"):
            StackSettings.from_values({**BASE, "cors": {"origins": bad}}.get)
    with pytest.raises(SettingsError, match="unknown field"):
        StackSettings.from_values({**BASE, "cors": {"origin": [PORTAL]}}.get)


def test_every_function_gets_the_list_the_runtime_reads():
    s = StackSettings.from_values({**BASE, "cors": {"origins": [PORTAL, "*"]}}.get)
    env = env_of(dataclasses.replace(PLATFORM, cors_origins=s.cors.origins))
    assert config.load({"LSCLOUD_ENV": "cluster", "LSCLOUD_JWT_JWKS_URL": "https://id.example/jwks",
                        "LSCLOUD_PSEUDONYM_KEY": "k" * 40,
                        "LSCLOUD_CORS_ORIGINS": env["LSCLOUD_CORS_ORIGINS"]}).cors_origins == (PORTAL, "*")
    assert "LSCLOUD_CORS_ORIGINS" not in env_of(PLATFORM)   # none: the runtime's default, no CORS
    assert "LSCLOUD_CORS_ORIGINS" in fn.PLATFORM_ENV



def test_the_prod_stack_gives_every_function_its_portal_origin():
    # the stack file's origins reach each function's environment (the program reads lscloud:cors)
    from infra_support import k8s_objects, run_program

    services = [o for o in k8s_objects(run_program("prod"))
                if o.get("kind") == "Service" and o.get("apiVersion") == "serving.knative.dev/v1"]
    envs = [c.get("env", []) for svc in services for c in svc["spec"]["template"]["spec"]["containers"]]
    assert envs and all({"name": "LSCLOUD_CORS_ORIGINS", "value": "https://dichvucong.langson.gov.vn"} in e
                        for e in envs)
