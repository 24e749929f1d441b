"""`lscloud up` killed outright (kill -9, the OOM killer): what it started goes with it, and
`lscloud status` tells the truth about whatever is left.

Left to themselves, the gateway, the functions, nats-server and weed mini served on with no
dispatcher, clock, relay or restarts (a withdrawal waited for a bank webhook until the next `up`),
while `lscloud status` said no cloud was running. The cloud here runs only the bare ``hello``
function (copied from benchmarks/); the deadlines only keep a failing test from hanging.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from serve_support import running
from waiting import wait_for

from lscloud import cli
from lscloud.local.processes import process_alive, process_create_time
from lscloud.local.servers import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
GONE_WITHIN_S = 30.0  # generous: the guard gives each child 5 s to stop on SIGTERM before SIGKILL


class Up:
    """One `lscloud up` subprocess with its own state dir and free port."""

    def __init__(self, tmp_path: Path, env: dict[str, str] | None = None):
        functions = tmp_path / "functions"
        shutil.copytree(ROOT / "benchmarks" / "hello", functions / "hello", ignore=shutil.ignore_patterns("__pycache__"))
        self.state_dir, self.log = tmp_path / "state", tmp_path / "up.log"
        argv = [sys.executable, "-m", "lscloud.cli", "--state-dir", str(self.state_dir), "up", "--port",
                str(free_port()), "--functions-dir", str(functions)]
        with open(self.log, "ab") as out:
            self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, **(env or {}), "PYTHONUNBUFFERED": "1"},
                                         start_new_session=True)
        self.seen: list[dict] = []  # every process it recorded: stopped by the test whatever happens

    def state(self) -> dict:
        try:
            return json.loads((self.state_dir / "cloud.json").read_text())
        except (OSError, ValueError):
            return {}

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self) -> dict:
        state = wait_for(lambda: (s := self.state()).get("state") == "ready" and s.get("pid") == self.proc.pid and s,
                         "the cloud to be ready", 150, alive=running(self.proc, self.output))
        self.seen = [*state["processes"], *([state["guard"]] if state.get("guard") else [])]
        return state

    def kill_supervisor(self) -> None:
        os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(10)

    def clean_up(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        for record in self.seen:
            if process_alive(record["pid"], record.get("create_time")):
                try:
                    os.killpg(record["pid"], signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass


def still_running(records: list[dict]) -> list[str]:
    return [f"{r.get('role', 'guard')} (pid {r['pid']})" for r in records if process_alive(r["pid"], r.get("create_time"))]


def wait_gone(records: list[dict]) -> list[str]:
    """Who of ``records`` still runs once they are all gone or the deadline passed."""
    end = time.monotonic() + GONE_WITHIN_S
    while (left := still_running(records)) and time.monotonic() < end:
        time.sleep(0.1)
    return left


@pytest.fixture
def up(tmp_path):
    started: list[Up] = []

    def start(env: dict[str, str] | None = None) -> Up:
        started.append(Up(tmp_path, env))
        return started[-1]

    yield start
    for u in started:
        u.clean_up()


def test_nothing_it_started_serves_on_after_the_supervisor_is_killed(up):
    cloud = up()
    state = cloud.wait_ready()
    roles = {p["role"] for p in state["processes"]}
    assert {"nats", "weed", "gateway", "function:hello"} <= roles
    cloud.kill_supervisor()
    assert wait_gone(state["processes"]) == [], cloud.output()[-2000:]
    # the guard, having stopped those the kernel does not (the function and the fork server may be
    # gone already), leaves too, and says what it did
    assert wait_gone([state["guard"]]) == []
    said = (cloud.state_dir / "logs" / "guard.log").read_text()
    assert f"`lscloud up` (pid {cloud.proc.pid}) died; stopped" in said
    assert all(role in said.partition("it left: ")[2].strip().split(", ") for role in ("nats", "weed", "gateway")), said


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux's")
@pytest.mark.parametrize("fork", ["1", "0"], ids=["forked", "spawned"])
def test_functions_and_the_fork_server_die_with_the_supervisor_even_without_the_guard(up, fork):
    # the kernel's part alone: each function process (forked through the fork server and re-parented
    # to the supervisor, or spawned by it) and the fork server are signalled as the supervisor dies
    cloud = up({"LSCLOUD_UP_FORK": fork})
    state = cloud.wait_ready()
    tied = [p for p in state["processes"] if p["role"].startswith("function:") or p["role"] == "forkserver"]
    assert ("forkserver" in {p["role"] for p in tied}) == (fork == "1")
    if state.get("guard"):
        os.kill(state["guard"]["pid"], signal.SIGKILL)
        assert wait_gone([state["guard"]]) == []
    cloud.kill_supervisor()
    assert wait_gone(tied) == [], cloud.output()[-2000:]


def test_status_says_the_supervisor_is_dead_while_its_children_serve(tmp_path, capsys):
    state_dir = tmp_path / "state"
    state_dir.mkdir()
    supervisor = subprocess.Popen([sys.executable, "-c", "pass"])
    supervisor_created = process_create_time(supervisor.pid)
    supervisor.wait(30)
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    try:
        cloud = {"state": "ready", "pid": supervisor.pid, "create_time": supervisor_created,
                 "state_dir": str(state_dir), "gateway": {"url": "http://127.0.0.1:9", "host": "127.0.0.1", "port": 9},
                 "functions": {}, "processes": [
                     {"role": "gateway", "pid": child.pid, "create_time": process_create_time(child.pid)},
                     {"role": "nats", "pid": supervisor.pid, "create_time": supervisor_created}]}
        (state_dir / "cloud.json").write_text(json.dumps(cloud))
        code = cli.main(["--state-dir", str(state_dir), "status"])
        err = capsys.readouterr().err
        assert code == cli.EXIT_UNHEALTHY, err
        assert "supervisor dead: 1 processes still serving (gateway" in err
        assert "run `lscloud up` (it stops them)" in err and "or `lscloud down`" in err and str(child.pid) in err
        assert "tiến trình giám sát đã chết: 1 tiến trình vẫn đang phục vụ" in err
        # and every command that needs the cloud says the same rather than "nothing runs"
        assert cli.main(["--state-dir", str(state_dir), "dlq"]) == cli.EXIT_FAIL
        assert "supervisor dead: 1 processes still serving" in capsys.readouterr().err
    finally:
        child.kill()
        child.wait(10)
    # nothing left: no cloud, as before
    assert cli.main(["--state-dir", str(state_dir), "status"]) == cli.EXIT_FAIL
    assert "no `lscloud up` is running" in capsys.readouterr().err
