"""Per-caller limits key an IPv6 client by its /64, and an IPv4-mapped IPv6 address as IPv4.

Keyed by the exact address, one phone (a /64 of its own on every Vietnamese mobile network, its
privacy addresses changed whenever it likes) rotated within its /64 and was never limited: ten
verifications in a row where the limit was one. And a dual-stack proxy's ``::ffff:a.b.c.d`` was
another caller than ``a.b.c.d``, and never in the trusted IPv4 proxy network it belongs to.
"""

import pytest

from lscloud import ratelimit
from lscloud.ratelimit import MemoryLimiter, RateLimited, caller_subject, client_address

ANONYMOUS = None
CLUSTER = ("10.0.0.0/8",)


@pytest.fixture
def trusted(monkeypatch):
    def trust(*cidrs):
        monkeypatch.setattr(ratelimit, "_running_trusted", lambda: tuple(cidrs))
    trust()
    return trust


def xff(value: str) -> dict:
    return {"X-Forwarded-For": value}


def test_one_phone_rotating_within_its_64_is_one_caller(trusted):
    trusted(*CLUSTER)
    keys = {client_address(xff(f"2001:ee0:4f1:9a2::{i:x}, 10.244.1.7"), "10.244.1.7") for i in range(1, 40)}
    keys.add(client_address(xff("2001:ee0:4f1:9a2:8c1e:77ff:fe01:2a3b, 10.244.1.7"), "10.244.1.7"))
    assert len(keys) == 1 and "2001:ee0:4f1:9a2::1" not in keys


def test_the_limit_holds_against_rotation():
    limiter = MemoryLimiter(limit=1, window_s=3600)
    limiter.hit(caller_subject(ANONYMOUS, xff("2001:ee0:4f1:9a2::1"), None))
    for i in range(2, 12):
        with pytest.raises(RateLimited):
            limiter.hit(caller_subject(ANONYMOUS, xff(f"2001:ee0:4f1:9a2::{i:x}"), None))


def test_another_64_is_another_caller():
    """Keyed by its /64, a phone is still not its neighbour (a guard: passes before the change too)."""
    a = client_address(xff("2001:ee0:4f1:9a2::1"), None)
    b = client_address(xff("2001:ee0:4f1:9a3::1"), None)
    assert a != b


def test_an_ipv4_mapped_address_is_the_ipv4_address(trusted):
    assert client_address(xff("::ffff:203.0.113.7"), None) == client_address(xff("203.0.113.7"), None)
    assert client_address({}, "::ffff:203.0.113.7") == "203.0.113.7"
    # written as mapped IPv6 by a dual-stack hop, a proxy in the trusted IPv4 network is still a proxy
    trusted(*CLUSTER)
    assert client_address(xff("203.0.113.9, ::ffff:10.244.1.7"), "10.244.1.8") == "203.0.113.9"


def test_ipv4_callers_and_what_is_not_an_address_are_as_before(trusted):
    assert client_address(xff("203.0.113.7"), None) == "203.0.113.7"
    assert client_address(xff("198.51.100.1, 203.0.113.7"), None) == "203.0.113.7"
    assert client_address({}, "203.0.113.7") == "203.0.113.7"
    assert client_address({}, None) == "unknown"
    trusted(*CLUSTER)
    assert client_address(xff("not-an-address, 10.1.2.3"), "10.1.2.4") == "not-an-address"


def test_an_ipv6_client_behind_the_proxies_is_its_64_its_zone_dropped(trusted):
    trusted(*CLUSTER)
    assert client_address(xff("fe80::1%eth0, 10.1.2.3"), "10.1.2.4") == "fe80::/64"
