"""``lscloud up --host 0.0.0.0``: identity's dev sign-in (``/identity/v1/tokens/...``, a token of any
officer or supervisor for the asking) is this machine's alone, as ``/docs/token`` is. A caller on the
LAN, or a page whose name was rebound to this machine, gets 404 and the function never hears of it;
the rest of identity is forwarded to the LAN as before."""

from __future__ import annotations

import ipaddress
import socket

import httpx
import pytest

from loopback_http import ok
from lscloud.local.gateway import Gateway, GatewayServer, Route
from lscloud.local.servers import free_port

pytestmark = pytest.mark.integration

OFFICER = {"officer_id": "attacker", "agency": "ubnd-06040", "unit": "06040", "role": "supervisor"}


def lan_address() -> str:
    """This machine's address on its network (not loopback): a connection to it comes from it."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.connect(("192.0.2.1", 9))   # a UDP connect sends nothing: it picks the outgoing address
        address = s.getsockname()[0]
    except OSError:
        address = ""
    finally:
        s.close()
    if not address or ipaddress.ip_address(address).is_loopback or address == "0.0.0.0":
        pytest.skip("this machine has no non-loopback IPv4 address")
    return address


@pytest.fixture(params=["fast", "asgi"])
def cloud(request, serve):
    identity = serve(lambda *_: ok(b'{"access_token": "minted"}'))
    routes = {"identity": Route("identity", identity.port, "ready")}
    gw = GatewayServer(Gateway(lambda: routes, fast_path=request.param == "fast"), "0.0.0.0", free_port()).start()
    yield gw, identity
    gw.stop()


@pytest.mark.parametrize("path", ["/identity/v1/tokens/officer", "/identity/v1/tokens/citizen",
                                  "/identity/v1/Tokens/officer", "/identity/v1/tokens;x/officer",
                                  "/identity/v1/tokens/"])
def test_a_lan_caller_cannot_mint_a_dev_token(cloud, path):
    gw, identity = cloud
    base = f"http://{lan_address()}:{gw.port}"
    for r in (httpx.post(base + path, json=OFFICER, timeout=30), httpx.get(base + path, timeout=30)):
        assert r.status_code == 404 and r.headers["content-type"].startswith("application/problem+json"), path
        assert "minted" not in r.text
    assert identity.requests == []


def test_a_page_rebound_to_this_machine_cannot_mint_one_either(cloud):
    gw, identity = cloud
    r = httpx.post(f"http://127.0.0.1:{gw.port}/identity/v1/tokens/officer", json=OFFICER, timeout=30,
                   headers={"Host": "attacker.example"})
    assert r.status_code == 404 and identity.requests == []


def test_this_machine_still_signs_in_and_the_lan_still_reaches_the_rest(cloud):
    gw, identity = cloud
    r = httpx.post(f"http://127.0.0.1:{gw.port}/identity/v1/tokens/officer", json=OFFICER, timeout=30)
    assert r.status_code == 200 and r.json()["access_token"] == "minted"
    r = httpx.get(f"http://localhost:{gw.port}/identity/v1/tokens/citizen", timeout=30)
    assert r.status_code == 200
    r = httpx.get(f"http://{lan_address()}:{gw.port}/identity/v1/cccd/020095001234", timeout=30)
    assert r.status_code == 200
    assert [(m, p) for m, p, _, _ in identity.requests] == [
        ("POST", "/v1/tokens/officer"), ("GET", "/v1/tokens/citizen"), ("GET", "/v1/cccd/020095001234")]
