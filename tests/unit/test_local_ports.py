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


def test_a_port_is_not_handed_out_twice_before_its_server_binds_it(monkeypatch):
    # the servers of one command are built (ports picked) before any starts; picks are random, so
    # without memory two of them can get the same port (CI at ed44bcf: a backup's weed mini was given
    # its nats-server's port)
    from lscloud.local import servers

    picked = [servers.free_port() for _ in range(600)] + servers.free_ports(400)
    assert len(picked) == len(set(picked)) == 1000
    assert all(p in servers._given for p in picked)
    # the memory is bounded: the oldest are forgotten first
    monkeypatch.setattr(servers, "_given", dict.fromkeys(picked))
    servers._remember_given(list(range(1, servers._GIVEN_MAX + 2)))
    assert len(servers._given) == servers._GIVEN_MAX and 1 not in servers._given


def test_a_port_held_by_something_not_http_is_named_not_read_as_s3(tmp_path):
    # what the backup drill met in CI: weed's S3 port answered with NATS's INFO line
    import socket
    import threading

    import pytest

    from lscloud.local.servers import ServerError, WeedMini

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer():
        for _ in range(2):   # the port probe, then the request
            conn, _ = listener.accept()
            conn.sendall(b'INFO {"server_id":"x"}\r\n')
            conn.close()

    threading.Thread(target=answer, daemon=True).start()
    try:
        with pytest.raises(ServerError, match=f"port {port} answers, but not as HTTP"):
            WeedMini(data_dir=tmp_path, s3_port=port)._s3_answers()
    finally:
        listener.close()
