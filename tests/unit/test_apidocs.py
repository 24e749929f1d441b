"""The gateway's /docs: Swagger UI from the installed package, the function list, and the dev-token
getter that exists in the local cloud only."""

from __future__ import annotations

import asyncio
import re

import httpx
import jwt
import pytest

from lscloud.config import Settings
from lscloud.local import apidocs
from lscloud.local.gateway import Gateway, Route

ROUTES = {"directory": Route("directory", 1), "softatm": Route("softatm", 2)}


def get(gateway: Gateway, target: str, *, base_url: str = "http://127.0.0.1:8080",
        client: tuple[str, int] = ("127.0.0.1", 52000)) -> httpx.Response:
    async def go():
        transport = httpx.ASGITransport(app=gateway, client=client)
        async with httpx.AsyncClient(transport=transport, base_url=base_url) as http:
            return await http.get(target)

    return asyncio.run(go())


@pytest.fixture
def local_gateway(tmp_path):
    settings = Settings(state_dir=str(tmp_path))
    assert settings.env == "local"
    return Gateway(lambda: ROUTES, dev_tokens=apidocs.dev_tokens_for(settings)), settings


def test_the_page_lists_every_function_and_loads_only_its_own_assets(local_gateway):
    gateway, _ = local_gateway
    page = get(gateway, "/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert '"url": "/directory/openapi.json"' in page.text and '"url": "/softatm/openapi.json"' in page.text
    refs = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text)
    assets = [r for r in refs if r.startswith("/docs/assets/")]
    assert len(assets) >= 3 and all(r.startswith("/") and not r.startswith("//") for r in refs)
    for asset in assets:
        r = get(gateway, asset)
        assert r.status_code == 200 and len(r.content) > 500, asset
    assert "SwaggerUIBundle" in get(gateway, "/docs/assets/swagger-ui-bundle.js").text
    # nothing else of the package folder, and no path tricks
    for target in ("/docs/assets/index.html", "/docs/assets/../__init__.py", "/docs/nothing"):
        r = get(gateway, target)
        assert r.status_code in (400, 404) and r.headers["content-type"] == "application/problem+json", target


def test_a_dev_token_for_a_role_in_the_local_cloud(local_gateway):
    gateway, settings = local_gateway
    assert 'id="dev-token"' in get(gateway, "/docs").text
    r = get(gateway, "/docs/token?role=officer&unit=05983&agency=ubnd-lang-son")
    assert r.status_code == 200 and r.headers["cache-control"] == "no-store"
    body = r.json()
    from lscloud.auth import dev_keys

    claims = jwt.decode(body["token"], dev_keys(settings.state_dir)[1], algorithms=["ES256", "RS256"],
                        audience=settings.jwt_audience, issuer=settings.jwt_issuer)
    assert claims["role"] == "officer" and claims["unit"] == "05983" and claims["agency"] == "ubnd-lang-son"
    assert claims["exp"] - claims["iat"] <= settings.jwt_max_lifetime_s
    bad = get(gateway, "/docs/token?role=bank&unit=<script>")
    assert bad.status_code == 400 and {e["field"] for e in bad.json()["errors"]} == {"role", "unit"}


@pytest.mark.parametrize("base_url, client", [
    ("http://evil.example:8080", ("127.0.0.1", 52000)),      # a page whose name was rebound to 127.0.0.1
    ("http://192.168.1.20:8080", ("192.168.1.7", 52000)),    # the LAN, the cloud listening on 0.0.0.0
    ("http://localhost:8080", ("192.168.1.7", 52000)),       # another machine naming this one
])
def test_a_dev_token_only_to_this_machine_by_its_own_name(local_gateway, base_url, client):
    gateway, _ = local_gateway
    assert get(gateway, "/docs/token?role=operator", base_url=base_url, client=client).status_code == 404
    assert 'id="dev-token"' not in get(gateway, "/docs", base_url=base_url, client=client).text
    for here in ("http://localhost:8080", "http://[::1]:8080", "http://127.0.0.1"):
        assert get(gateway, "/docs/token?role=operator", base_url=here).status_code == 200, here


def test_no_dev_token_getter_outside_the_local_cloud(tmp_path):
    settings = Settings(state_dir=str(tmp_path), env="cluster")
    assert apidocs.dev_tokens_for(settings) is None
    gateway = Gateway(lambda: ROUTES, dev_tokens=apidocs.dev_tokens_for(settings))
    assert 'id="dev-token"' not in get(gateway, "/docs").text and "/docs/token" not in get(gateway, "/docs").text
    r = get(gateway, "/docs/token?role=operator")
    assert r.status_code == 404 and "token" not in r.text
    assert not (tmp_path / "keys").exists()  # not even a key was made


def test_the_page_sends_no_document_to_a_validator_and_labels_its_fields(local_gateway):
    gateway, _ = local_gateway
    text = get(gateway, "/docs", base_url="http://lscloud-dev.lan:8080").text
    # Swagger UI's default sends every document's URL to validator.swagger.io when not on localhost
    assert re.search(r"\bvalidatorUrl:\s*null\b", text)
    assert '<meta name="viewport"' in text
    form = get(gateway, "/docs").text
    for field in ("role", "unit", "agency"):
        assert f'<label for="{field}">' in form and f'id="{field}"' in form, field


def test_the_index_page_fits_a_phone_and_marks_its_english(local_gateway):
    gateway, _ = local_gateway

    async def go():
        transport = httpx.ASGITransport(app=gateway, client=("127.0.0.1", 52000))
        try:
            async with httpx.AsyncClient(transport=transport, base_url="http://lscloud-dev.lan:8080") as http:
                return await http.get("/", headers={"Accept": "text/html"})
        finally:
            await gateway._shutdown()   # the health checks' client

    page = asyncio.run(go())
    assert page.status_code == 200 and "<html lang='vi'>" in page.text
    assert "name='viewport'" in page.text and "<link rel='icon' href=\"data:" in page.text   # no /favicon.ico
    for english in ("API docs", "function", "health", "not ready"):
        assert f"<span lang='en'>({english})</span>" in page.text, english
