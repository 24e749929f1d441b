"""`lscloud up` picks every server's port before it starts any: none may be the gateway's."""

from __future__ import annotations

import itertools

from lscloud.local import supervisor
from lscloud.local.supervisor import Supervisor, UpOptions


def _flat(ports: dict) -> list[int]:
    out = []
    for value in ports.values():
        out += _flat(value) if isinstance(value, dict) else [value]
    return out


def test_no_server_is_given_the_gateways_port(tmp_path, monkeypatch):
    # the gateway's port is chosen first and bound last: while the others are picked it is free,
    # and a free-port pick can return it (a function took it in CI at e086ada: the gateway's bind
    # then failed with "address already in use")
    gateway = 30719
    offered = itertools.chain([gateway, gateway], itertools.count(21000))
    monkeypatch.setattr(supervisor, "free_port", lambda *a, **k: next(offered))
    monkeypatch.setattr(supervisor, "port_free", lambda *a, **k: True)
    up = Supervisor(UpOptions(state_dir=tmp_path))
    ports = _flat(up._ports(["directory", "softatm"], reserved=(gateway,)))
    assert gateway not in ports and len(ports) == len(set(ports))
    # a port recorded by an earlier run that is the gateway's now is not reused either
    recorded = ports[0]
    ports = _flat(up._ports(["directory", "softatm"], reserved=(recorded,)))
    assert recorded not in ports and len(ports) == len(set(ports))
