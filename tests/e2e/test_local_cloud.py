"""`lscloud up` as a user runs it: a subprocess on free ports with its own state dir.

The cloud runs the bare ``hello`` function (copied from benchmarks/), the test-only ``probe``
(fixtures/: it subscribes to an event type and shows what it received) and every real
function in functions/. The tests run in order against one cloud: routing, refusals, status, a
function killed and restarted, SIGTERM leaving no process behind, then a second `up` on
the same state dir finding its data again.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
from pathlib import Path

import httpx
import psutil
import pytest

from localcloud import ROOT, Cloud, process_tree, wait_for  # tests/e2e helper module
from lscloud.local.servers import free_port

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    base = tmp_path_factory.mktemp("cloud")
    extra = base / "functions"
    shutil.copytree(ROOT / "benchmarks" / "hello", extra / "hello", ignore=shutil.ignore_patterns("__pycache__"))
    dirs = [extra, Path(__file__).parent / "fixtures"]
    if (ROOT / "functions").is_dir() and any((ROOT / "functions").glob("*/func.yaml")):
        dirs.append(ROOT / "functions")  # the real functions, in place (they find schemas/ from there)
    return {"state_dir": base / "state", "dirs": dirs, "port": free_port(), "log": base / "up.log",
            "leftovers": []}


@pytest.fixture(scope="module")
def cloud(workspace):
    c = Cloud(workspace["state_dir"], workspace["dirs"], workspace["port"], workspace["log"])
    try:
        c.wait_ready()
        yield c
    finally:
        c.terminate()


def test_gateway_lists_every_function_healthy(cloud):
    listing = httpx.get(cloud.gateway + "/", timeout=10).json()
    names = {f["name"] for f in listing["functions"]}
    assert names == set(cloud.state()["functions"]) and "hello" in names
    unhealthy = [f for f in listing["functions"] if not f["healthy"]]
    assert not unhealthy and listing["healthy"] is True
    page = httpx.get(cloud.gateway + "/", headers={"Accept": "text/html"}, timeout=10)
    assert page.headers["content-type"].startswith("text/html") and "/hello/" in page.text
    docs = httpx.get(cloud.gateway + "/docs", timeout=10)
    assert docs.status_code == 200 and "/hello/openapi.json" in docs.text
    # works offline: no asset is loaded from anywhere but the gateway itself
    import re

    refs = re.findall(r"""(?:src|href)=["']([^"']+)""", docs.text)
    assert refs and all(r.startswith("/") and not r.startswith("//") for r in refs)
    assert "https://" not in docs.text and "http://" not in docs.text


def test_hello_answers_through_the_gateway(cloud):
    r = httpx.post(cloud.gateway + "/hello/greet/me?lang=vi", content=b"x" * 100_000, timeout=10)
    assert r.status_code == 200
    body = r.json()
    # the gateway strips the function prefix and keeps the rest; func.yaml's env reached the process
    assert body == {"message": "xin chào", "service": "hello", "method": "POST", "path": "/greet/me",
                    "pid": cloud.state()["functions"]["hello"]["pid"]}
    assert httpx.get(cloud.gateway + "/hello", timeout=10).json()["path"] == "/"


def test_events_and_unknown_functions_are_refused(cloud):
    for method, path in [("POST", "/hello/events"), ("POST", "/hello/events/"), ("GET", "/hello/events"),
                         ("POST", "/hello/events/dead-letters"), ("GET", "/hello/health/readiness")]:
        r = httpx.request(method, cloud.gateway + path, json={"specversion": "1.0"}, timeout=10)
        assert r.status_code == 404, path
        assert r.headers["content-type"] == "application/problem+json"
        problem = r.json()
        assert problem["status"] == 404 and problem["title_vi"] and problem["detail"] and problem["errors"] == []
    r = httpx.get(cloud.gateway + "/no-such-function/x", timeout=10)
    assert r.status_code == 404 and r.json()["type"].endswith("function-not-found")


def test_a_subscribed_function_receives_published_events(cloud):
    from lscloud import events
    from lscloud.bus import SyncBus
    from lscloud.local.cloud import cloud_settings

    settings = cloud_settings(cloud.state())
    bus = SyncBus(settings)
    bus.start()
    try:
        event = events.new_event("vn.langson.e2e.probe.pinged.v1", "/tests/e2e", {"n": 7})
        bus.publish(event)
    finally:
        bus.close()
    seen = wait_for(lambda: [e for e in httpx.get(cloud.gateway + "/probe/seen", timeout=10).json()["seen"]
                             if e["id"] == event["id"]], 30, "the dispatcher to deliver the event", cloud.proc, cloud.log)
    assert seen[0]["type"] == "vn.langson.e2e.probe.pinged.v1" and seen[0]["data"] == {"n": 7}
    # func.yaml's '{{ env:... }}' template was filled from the supervisor's environment
    assert httpx.get(cloud.gateway + "/probe/seen", timeout=10).json()["label"] == "e2e"
    tail = cloud.cli("events", "tail", "-n", "5")
    assert tail.returncode == 0 and event["id"] in tail.stdout


def test_status_and_a_second_up_on_the_same_state_dir(cloud, workspace):
    status = cloud.cli("status")
    assert status.returncode == 0, status.stderr
    assert "hello" in status.stdout and "NOT READY" not in status.stdout
    argv = list(cloud.argv)
    argv[argv.index("--port") + 1] = str(free_port())
    second = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert second.returncode == 1
    assert f"(pid {cloud.proc.pid})" in second.stderr and "another `lscloud up`" in second.stderr


def test_every_function_is_forked_from_the_fork_server_and_is_the_supervisors_child(cloud):
    # the runtime is imported once, in the fork server; each function process is still the
    # supervisor's child (it waits on it and reports its exit code)
    state = cloud.state()
    server = [p for p in state["processes"] if p["role"] == "forkserver"]
    assert len(server) == 1
    forked = psutil.Process(server[0]["pid"]).cmdline()
    for name, f in state["functions"].items():
        p = psutil.Process(f["pid"])
        assert p.ppid() == cloud.proc.pid, name
        assert p.cmdline() == forked, name


def test_a_killed_function_is_restarted_and_reported(cloud):
    before = cloud.state()["functions"]["hello"]
    os.kill(before["pid"], signal.SIGKILL)
    after = wait_for(lambda: (f := cloud.state()["functions"]["hello"])["pid"] != before["pid"]
                     and f["state"] == "ready" and f, 60, "hello to be restarted", cloud.proc, cloud.log)
    assert after["restarts"] == before["restarts"] + 1 and after["last_exit_code"] == -signal.SIGKILL
    assert f"hello (pid {before['pid']}) exited with code -9 (killed by SIGKILL)" in cloud.output()
    r = httpx.get(cloud.gateway + "/hello/", timeout=10)
    assert r.status_code == 200 and r.json()["pid"] == after["pid"]


def test_the_clock_ticks_into_the_stream(cloud):
    from lscloud import clock, config
    from lscloud.delivery import tail

    assert f"✓ clock        {clock.TICKED}" in cloud.output()
    state = cloud.state()
    s = config.load({"LSCLOUD_NATS_URL": state["nats"]["url"], "LSCLOUD_STREAM": state["stream"]})
    assert any(m["event"].get("type") == clock.TICKED for m in tail(s, 500))  # the first tick goes out at start
    assert clock.TICKED in state["functions"]["border"]["subscriptions"]


def test_sigterm_stops_everything(cloud, workspace):
    from lscloud.store.objects import ObjectStore

    state = cloud.state()
    # leave a mark in the store for the next `up` to find
    store = ObjectStore(state["s3"]["endpoint"], state["s3"]["access_key"], "lscloud-local-secret")
    store.put(state["s3"]["bucket"], "e2e/mark.json", b'{"run": 1}')
    workspace["first_state"] = state
    recorded = [(p["pid"], p["create_time"]) for p in state["processes"]]
    assert {p["role"] for p in state["processes"]} >= {"nats", "weed", "function:hello"}
    tree = process_tree(cloud.proc.pid)
    assert {pid for pid, _ in recorded} <= {p.pid for p in tree}
    cloud.proc.send_signal(signal.SIGTERM)
    assert cloud.proc.wait(60) == 0
    wait_for(lambda: not any(p.is_running() and p.status() != psutil.STATUS_ZOMBIE for p in tree), 15,
             "every process of the run to exit")
    for pid, created in recorded:
        alive = psutil.pid_exists(pid) and psutil.Process(pid).create_time() == created
        assert not alive, f"pid {pid} outlived `lscloud up`"
    assert cloud.state()["state"] == "stopped"
    assert "Stopped." in cloud.output()
    out = cloud.output()
    assert out.index("✓ clock stopped") < out.index("✓ gateway stopped")  # the clock stops first
    assert cloud.cli("status").returncode == 1


def test_up_again_reuses_data_ports_and_seeds_once(workspace):
    first = workspace["first_state"]
    log = workspace["log"].with_name("up-2.log")
    c = Cloud(workspace["state_dir"], workspace["dirs"], workspace["port"], log)
    try:
        state = c.wait_ready()
        assert state["s3"]["endpoint"] == first["s3"]["endpoint"] and state["nats"]["url"] == first["nats"]["url"]
        assert {n: f["port"] for n, f in state["functions"].items()} == \
               {n: f["port"] for n, f in first["functions"].items()}
        from lscloud.store.objects import ObjectStore

        store = ObjectStore(state["s3"]["endpoint"], state["s3"]["access_key"], "lscloud-local-secret")
        assert store.get(state["s3"]["bucket"], "e2e/mark.json").body == b'{"run": 1}'
        if "directory" in state["functions"]:
            assert "✓ seed         directory: data already loaded" in c.output()
        assert httpx.get(c.gateway + "/hello/", timeout=10).status_code == 200
    finally:
        c.terminate()
    assert c.proc.returncode == 0
