"""`lscloud down`: the local cloud stopped from another terminal or a script, as Ctrl-C stops it.

There was no such command: an `lscloud up` started in the background was stopped by finding and
killing its supervisor by hand, and what a killed supervisor left serving by `kill` on each group.
The cloud here runs only the bare ``hello`` function (copied from benchmarks/, by the helper of
test_supervisor_death); the deadlines only keep a failing test from hanging.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from test_supervisor_death import still_running, up, wait_gone  # noqa: F401 - its fixture, reused

from lscloud import cli
from lscloud.local.processes import process_alive, process_create_time

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def down(state_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lscloud.cli", "down", "--state-dir", str(state_dir), *extra],
                          check=False, cwd=ROOT, capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)


def everyone(state: dict) -> list[dict]:
    """Every process ``cloud.json`` names: the supervisor, what it started, its guard."""
    return [{"role": "lscloud up", "pid": state["pid"], "create_time": state["create_time"]}, *state["processes"],
            {"role": "guard", **state["guard"]}]


def ports(state: dict) -> dict[str, int]:
    found = {"gateway": state["gateway"]["port"], "nats": urlsplit(state["nats"]["url"]).port,
             "s3": urlsplit(state["s3"]["endpoint"]).port}
    if (state.get("mqtt") or {}).get("url"):
        found["mqtt"] = urlsplit(state["mqtt"]["url"]).port
    found.update({f"function:{name}": f["port"] for name, f in state["functions"].items()})
    return found


def answering(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5):
            return True
    except OSError:
        return False


def test_down_stops_a_running_cloud_in_order_and_then_finds_nothing(up):  # noqa: F811 - the imported fixture
    cloud = up()
    state = cloud.wait_ready()
    assert all(answering(p) for p in ports(state).values()), ports(state)

    done = down(cloud.state_dir)
    assert done.returncode == cli.EXIT_OK, done.stderr + cloud.output()[-2000:]
    # when it returns, nothing the state named runs, and nothing listens where the cloud served
    assert still_running(everyone(state)) == []
    assert [name for name, p in ports(state).items() if answering(p)] == []
    assert all(f"{r['role']} (pid {r['pid']})" in done.stdout for r in everyone(state)), done.stdout
    # the supervisor's own shutdown did it, as on Ctrl-C: not a SIGKILL
    assert cloud.proc.wait(10) == 0
    said = cloud.output()
    assert "SIGTERM received: stopping" in said and said.rstrip().endswith("Stopped."), said[-2000:]
    assert "killed" not in done.stdout
    assert cloud.state()["state"] == "stopped"

    again = down(cloud.state_dir)
    assert again.returncode == cli.EXIT_FAIL, again.stdout + again.stderr
    assert "no `lscloud up` is running" in again.stderr and "không có `lscloud up` nào đang chạy" in again.stderr


def test_down_stops_what_a_killed_supervisor_left_serving(up, capsys):  # noqa: F811 - the imported fixture
    cloud = up()
    state = cloud.wait_ready()
    # the guard first, or it would stop them itself: what is left is what `status` reports dead
    os.kill(state["guard"]["pid"], signal.SIGKILL)
    assert wait_gone([state["guard"]]) == []
    cloud.kill_supervisor()
    assert cli.main(["--state-dir", str(cloud.state_dir), "status"]) == cli.EXIT_UNHEALTHY
    assert "supervisor dead" in capsys.readouterr().err
    serving = [r for r in state["processes"] if r["role"] in ("nats", "weed", "gateway")]
    assert still_running(serving) == [f"{r['role']} (pid {r['pid']})" for r in serving]

    done = down(cloud.state_dir)
    assert done.returncode == cli.EXIT_OK, done.stdout + done.stderr
    assert still_running(everyone(state)) == []
    assert [name for name, p in ports(state).items() if answering(p)] == []
    assert "`lscloud up` is gone" in done.stdout
    assert all(f"{r['role']} (pid {r['pid']})" in done.stdout for r in serving), done.stdout
    assert cloud.state()["state"] == "stopped"
    assert down(cloud.state_dir).returncode == cli.EXIT_FAIL


def _sleeper(*, ignore_term: bool = False) -> subprocess.Popen:
    """A process that waits to be stopped, its own group leader; says "ready" once its SIGTERM handling
    is in place."""
    code = ("import signal, sys, time\n"
            + ("signal.signal(signal.SIGTERM, signal.SIG_IGN)\n" if ignore_term else "")
            + "print('ready', flush=True)\ntime.sleep(600)\n")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)
    assert proc.stdout.readline().strip() == "ready"
    return proc


def test_down_kills_what_ignores_sigterm_but_never_a_process_that_reused_a_recorded_pid(tmp_path, capsys):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    supervisor, gateway, stranger = _sleeper(ignore_term=True), _sleeper(), _sleeper()
    try:
        created = {p.pid: process_create_time(p.pid) for p in (supervisor, gateway, stranger)}
        cloud = {"state": "ready", "pid": supervisor.pid, "create_time": created[supervisor.pid],
                 "state_dir": str(state_dir), "functions": {}, "guard": None, "processes": [
                     {"role": "gateway", "pid": gateway.pid, "create_time": created[gateway.pid]},
                     # its pid, another process: the recorded one ended and the pid went to this one
                     {"role": "nats", "pid": stranger.pid, "create_time": created[stranger.pid] - 100}]}
        (state_dir / "cloud.json").write_text(json.dumps(cloud))

        code = cli.main(["--state-dir", str(state_dir), "down", "--timeout", "0.5"])
        out = capsys.readouterr().out
        assert code == cli.EXIT_OK, out
        assert supervisor.wait(30) == -signal.SIGKILL and gateway.wait(30) == -signal.SIGKILL
        assert f"lscloud up (pid {supervisor.pid}), gateway (pid {gateway.pid})" in out.partition("SIGKILL")[2], out
        assert stranger.poll() is None and f"pid {stranger.pid}" not in out
        assert json.loads((state_dir / "cloud.json").read_text())["state"] == "stopped"
    finally:
        for p in (supervisor, gateway, stranger):
            if p.poll() is None:
                p.kill()
                p.wait(10)


def test_down_with_nothing_running_says_so_and_marks_stale_state_stopped(tmp_path, capsys):
    state_dir = tmp_path / "state"
    assert cli.main(["--state-dir", str(state_dir), "down"]) == cli.EXIT_FAIL
    assert "no `lscloud up` is running" in capsys.readouterr().err
    assert not state_dir.exists()  # looking made nothing

    state_dir.mkdir()
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    created = process_create_time(gone.pid)
    gone.wait(30)
    assert not process_alive(gone.pid, created)
    (state_dir / "up.pid").write_text(json.dumps({"pid": gone.pid, "create_time": created}))
    (state_dir / "cloud.json").write_text(json.dumps({"state": "ready", "pid": gone.pid, "create_time": created,
                                                      "processes": [], "guard": None}))
    assert cli.main(["--state-dir", str(state_dir), "down"]) == cli.EXIT_FAIL
    err = capsys.readouterr().err
    assert "nothing to stop" in err and "stale state was marked stopped" in err and "không có gì để dừng" in err
    assert json.loads((state_dir / "cloud.json").read_text())["state"] == "stopped"
    assert (state_dir / "up.pid").read_text() == ""
