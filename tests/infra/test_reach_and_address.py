"""What a function may reach outside the cluster (softatm's banks), what a stack cannot deploy without
(market's stamp key), and how the caller's address crosses Octavia into Kourier (PROXY protocol)."""

from __future__ import annotations

import ipaddress
import json

import pytest

from infra_support import JWT_PUBLIC_KEY, MARKET_STAMP_KEY, REQUIRED_SECRETS, k8s_objects, normalize, run_program
from infra_support import stack_config

pulumi = pytest.importorskip("pulumi")

from components.settings import FunctionOverride, KnativeSettings, SettingsError  # noqa: E402

pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")

BANKS = [{"cidr": "203.0.113.0/28", "ports": [443]}, {"cidr": "198.51.100.32/29", "ports": [8443]}]


def functions_with(stack: str, **overrides) -> dict:
    """The stack file's lscloud:functions with ``overrides`` merged in per function."""
    functions = json.loads(stack_config(stack)["lscloud:functions"])
    for name, extra in overrides.items():
        functions[name] = {**functions.get(name, {}), **extra}
    return functions


def policies(mocks) -> dict[str, dict]:
    return {o["metadata"]["name"]: o for o in k8s_objects(mocks) if o["kind"] == "NetworkPolicy"}


def reaches(policy: dict, address: str, port: int) -> bool:
    ip = ipaddress.ip_address(address)
    return any(ip in ipaddress.ip_network(peer["ipBlock"]["cidr"]) and any(p["port"] == port for p in rule["ports"])
               for rule in policy["spec"]["egress"] for peer in rule["to"] if "ipBlock" in peer)


# --- softatm reaches its banks, and no other function does --------------------------------------

def test_softatm_reaches_the_banks_the_stack_names_and_no_other_function_does():
    mocks = run_program("prod", functions=functions_with("prod", softatm={"egress": BANKS}))
    pol = policies(mocks)
    softatm = pol["fn-softatm"]
    assert reaches(softatm, "203.0.113.9", 443) and reaches(softatm, "198.51.100.33", 8443)
    assert not reaches(softatm, "203.0.113.9", 8443) and not reaches(softatm, "198.51.100.33", 443)
    assert not reaches(softatm, "203.0.113.200", 443)          # outside the bank's /28
    assert {"to": [{"ipBlock": {"cidr": "198.51.100.32/29"}}], "ports": [{"protocol": "TCP", "port": 8443}]} \
        in softatm["spec"]["egress"]
    others = [name for name in pol if name.startswith("fn-") and name != "fn-softatm"]
    assert others
    for name in others:
        assert not reaches(pol[name], "203.0.113.9", 443) and not reaches(pol[name], "198.51.100.33", 8443), name
    # the shared networks (the IdP, the population registry) stay where they were, for everyone
    assert all(reaches(pol[name], "10.10.5.20", 443) for name in [*others, "fn-softatm"])


def test_the_dev_stack_shows_the_setting_with_documentation_addresses():
    softatm = policies(run_program("dev"))["fn-softatm"]
    cidrs = [peer["ipBlock"]["cidr"] for rule in softatm["spec"]["egress"] for peer in rule["to"] if "ipBlock" in peer]
    documentation = [ipaddress.ip_network(n) for n in ("192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24")]
    own = [c for c in cidrs if any(ipaddress.ip_network(c).subnet_of(d) for d in documentation)]
    assert own, cidrs   # RFC 5737 ranges only: nobody's real bank


@pytest.mark.parametrize("rule, where", [
    ({"cidr": "203.0.113.300/28", "ports": [443]}, r"egress\[0\]\.cidr"),
    ({"cidr": "203.0.113.1/28", "ports": [443]}, r"egress\[0\]\.cidr"),       # host bits: a typo, not a network
    ({"cidr": "bank.example.vn", "ports": [443]}, r"egress\[0\]\.cidr"),
    ({"cidr": "203.0.113.0/28", "ports": [0]}, r"egress\[0\]\.ports"),
    ({"cidr": "203.0.113.0/28", "ports": [65536]}, r"egress\[0\]\.ports"),
    ({"cidr": "203.0.113.0/28", "ports": "443"}, r"egress\[0\]\.ports"),
    ({"cidr": "203.0.113.0/28", "ports": []}, r"egress\[0\]\.ports"),
    ({"cidr": "203.0.113.0/28", "port": 443}, r"egress\[0\]"),
    ({"cidr": "10.100.8.0/24", "ports": [443]}, r"egress\[0\]\.cidr 10\.100\.8\.0/24 overlaps the pod network"),
])
def test_a_bad_egress_rule_stops_the_preview_naming_the_field(rule, where):
    with pytest.raises(Exception, match=rf"functions\.softatm\.?:? ?{where}"):
        run_program("prod", functions=functions_with("prod", softatm={"egress": [rule]}))


def test_egress_rules_default_to_https_and_keep_their_ports_once():
    o = FunctionOverride(egress=[{"cidr": "203.0.113.0/28"}, {"cidr": "2001:db8::/32", "ports": [8443, 443, 443]}])
    assert [(r.cidr, r.ports) for r in o.egress] == [("203.0.113.0/28", (443,)), ("2001:db8::/32", (443, 8443))]


def test_prod_without_bank_addresses_warns_and_with_them_does_not(monkeypatch):
    warned: list[str] = []
    monkeypatch.setattr(pulumi.log, "warn", lambda msg, *a, **k: warned.append(msg))
    run_program("prod")
    assert any("functions.softatm.egress is not set" in w and "webhooks to the banks" in w for w in warned), warned
    warned.clear()
    run_program("prod", functions=functions_with("prod", softatm={"egress": BANKS}))
    assert not any("softatm.egress" in w for w in warned), warned


# --- market cannot start without its stamp key: the stack refuses first ------------------------

@pytest.mark.parametrize("stack", ["prod", "dev"])
def test_a_stack_without_the_market_stamp_key_is_refused_saying_how_to_make_it(stack):
    for secrets in ({"lscloud:jwtPublicKey": JWT_PUBLIC_KEY},
                    {"lscloud:secrets": json.dumps({"identity-registry": {"token": "t" * 20}})},
                    {"lscloud:secrets": json.dumps({"market-stamp-key": {"private-key": ""}})}):
        with pytest.raises(Exception, match=r"secret market-stamp-key\.private-key is not set: the market function "
                                            r"refuses to start.*openssl genpkey -algorithm ed25519.*"
                                            r"secrets\.market-stamp-key\.private-key' < stamp\.pem"):
            run_program(stack, secrets=secrets)
    objs = k8s_objects(run_program(stack, secrets=dict(REQUIRED_SECRETS)))
    (secret,) = [o for o in objs if o["kind"] == "Secret" and o["metadata"]["name"] == "market-stamp-key"]
    assert secret["stringData"]["private-key"] == MARKET_STAMP_KEY


def test_the_runbook_key_is_one_the_market_loads():
    """What the error tells the operator to make (an Ed25519 PKCS#8 PEM) is what stampkeys.py parses."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = serialization.load_pem_private_key(MARKET_STAMP_KEY.encode("ascii"), password=None)
    assert isinstance(key, Ed25519PrivateKey) and MARKET_STAMP_KEY.startswith("-----BEGIN PRIVATE KEY-----")


# --- the caller's address through Octavia: PROXY protocol on both ends ---------------------------

def kourier_ends(mocks) -> tuple[dict, dict]:
    """(the annotations on Kourier's Service, config-kourier's data) as the program patches them."""
    (service,) = [r for r in mocks.resources if r.typ == "kubernetes:core/v1:ServicePatch"
                  and r.inputs["metadata"]["name"] == "kourier"]
    (config,) = [r for r in mocks.resources if r.typ == "kubernetes:core/v1:ConfigMapPatch"
                 and r.inputs["metadata"]["name"] == "config-kourier"]
    return normalize(service.inputs["metadata"]["annotations"]), normalize(config.inputs["data"])


def test_prod_asks_octavia_for_proxy_protocol_and_kourier_reads_it():
    annotations, data = kourier_ends(run_program("prod"))
    assert annotations["loadbalancer.openstack.org/proxy-protocol"] == "true"
    assert annotations["pulumi.com/patchForce"] == "true"
    assert data["enable-proxy-protocol"] == "true"
    # Envoy appends the address it read to X-Forwarded-For (net-kourier's default appends nothing)
    assert data["use-remote-address"] == "true"
    assert data["enable-service-access-logging"] == "true"      # the rest of config-kourier stays


def test_off_both_ends_are_off_together_and_kourier_still_appends_the_address():
    knative = json.loads(stack_config("prod")["lscloud:knative"])
    annotations, data = kourier_ends(run_program("prod", knative={**knative, "proxyProtocol": False}))
    assert annotations["loadbalancer.openstack.org/proxy-protocol"] == "false"
    assert data["enable-proxy-protocol"] == "false" and data["use-remote-address"] == "true"
    annotations, data = kourier_ends(run_program("dev"))
    assert (annotations["loadbalancer.openstack.org/proxy-protocol"], data["enable-proxy-protocol"]) == ("false", "false")
    with pytest.raises(SettingsError, match="knative.proxyProtocol"):
        KnativeSettings(proxyProtocol="yes")


# --- partnerKeys: read by no function --------------------------------------------------------------

def test_partner_keys_set_in_the_stack_are_refused_pointing_at_the_soft_atms_own_keys():
    secrets = {**REQUIRED_SECRETS, "lscloud:partnerKeys": json.dumps({"bidv": ["k" * 32]})}
    with pytest.raises(Exception, match=r"lscloud:partnerKeys is set, but no function reads it.*"
                                        r"pulumi config rm partnerKeys"):
        run_program("prod", secrets=secrets)
