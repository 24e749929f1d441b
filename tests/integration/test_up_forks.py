"""How `lscloud up` starts its functions: forked from one interpreter that imported the runtime
once (lscloud.local.forkserver), still the supervisor's children; importing while the store comes
up and running hooks only once it is there (``serve --wait-for``). Facts, not timings."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from serve_support import hooked_function, running, wait_ready
from waiting import wait_for

from lscloud.local.servers import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HELLO = ROOT / "benchmarks" / "hello"

# a small supervisor: makes itself the subreaper, starts the fork server, has it start hello, and
# reports what it sees of the process (its parent, its answer, its exit code once killed)
_SUPERVISOR = r"""
import json, os, signal, sys, time, urllib.request
from pathlib import Path
from lscloud.local.forkserver import ForkServer, become_subreaper
hello, log, port = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
assert become_subreaper()
forks = ForkServer(dict(os.environ), log.with_name("forkserver.log"), hello).start()
env = {**os.environ, "PORT": str(port), "LISTEN_ADDRESS": f"127.0.0.1:{port}", "K_SERVICE": "greeter",
       "HELLO_GREETING": "xin chào"}
proc = forks.spawn([str(hello)], env, hello, log)
answer = None
deadline = time.monotonic() + 120
while answer is None and time.monotonic() < deadline and proc.poll() is None:
    try:
        answer = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read())
    except OSError:
        time.sleep(0.05)
import psutil
found = {"pid": proc.pid, "parent": psutil.Process(proc.pid).ppid(), "me": os.getpid(), "answer": answer,
         "session": os.getsid(proc.pid), "preloaded": "lscloud.knative" in sys.modules,
         "name": psutil.Process(proc.pid).name()}
os.kill(proc.pid, signal.SIGKILL)
found["exit"] = proc.wait(30)
forks.stop()
found["server_stopped"] = forks.proc.poll() is not None
print(json.dumps(found))
"""


def test_a_forked_function_is_the_supervisors_child_with_its_own_environment(tmp_path):
    port = free_port()
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    done = subprocess.run([sys.executable, "-c", _SUPERVISOR, str(HELLO), str(tmp_path / "hello.log"), str(port)],
                          env=env, cwd=str(tmp_path), capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stderr[-3000:]
    found = json.loads(done.stdout.strip().splitlines()[-1])
    # served with the environment it was given, in a process of its own session...
    assert found["answer"] == {"message": "xin chào", "service": "greeter", "method": "GET", "path": "/",
                               "pid": found["pid"]}
    assert found["session"] == found["pid"]
    assert found["name"] == "fn:hello"  # what ps and top show of it
    # ...whose parent is the supervisor (not the fork server), so its exit code is the supervisor's to report
    assert found["parent"] == found["me"]
    assert found["exit"] == -signal.SIGKILL
    assert found["server_stopped"] is True
    assert found["preloaded"] is False  # the supervisor itself imported none of the runtime


def test_a_function_told_to_wait_imports_then_runs_its_hooks_only_once_the_store_is_there(settings, object_store,
                                                                                          tmp_path):
    root = hooked_function(tmp_path)
    report, marker, port = tmp_path / "report.json", tmp_path / "store.ready", free_port()
    env = {**os.environ, **settings.env_vars(), "K_SERVICE": "hooked", "PYTHONPATH": str(ROOT),
           "LISTEN_ADDRESS": f"127.0.0.1:{port}", "PORT": str(port)}
    log = tmp_path / "hooked.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "lscloud.serve", "--wait-for", str(marker),
                                 "--run-hooks", str(report), str(root)], env=env, cwd=str(root),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)

    def output() -> str:
        return log.read_text(errors="replace")

    try:
        wait_for(lambda: "waiting for" in output(), "it to say it waits", 120, alive=running(proc, output))
        # it has imported the function and waits: nothing ran yet, nothing serves
        assert not report.exists()
        with pytest.raises(httpx.HTTPError):
            httpx.get(f"http://127.0.0.1:{port}/health/readiness", timeout=2)
        marker.touch()
        wait_ready(port, proc, output)
        assert json.loads(report.read_text())["seed"]["seeded"] is True
        assert object_store.head(settings.bucket, "hooked/seeded.json")
    finally:
        proc.terminate()
        proc.wait(15)


def test_a_fork_server_that_did_not_answer_in_time_is_asked_nothing_more(tmp_path, monkeypatch):
    # its late answer would otherwise be read as the next request's: that function would be
    # supervised under the pid of a process started for another
    from lscloud.local import forkserver

    forks = forkserver.ForkServer(dict(os.environ, PYTHONPATH=str(ROOT)), tmp_path / "forkserver.log",
                                  tmp_path).start()
    try:
        # a function that exits at once (no such folder): whatever is forked leaves nothing running
        args, env = [str(tmp_path / "missing")], dict(os.environ)
        monkeypatch.setattr(forkserver, "SPAWN_TIMEOUT_S", 0.01)  # it is still importing the runtime
        with pytest.raises(OSError, match="did not answer"):
            forks.spawn(args, env, tmp_path, tmp_path / "first.log")
        monkeypatch.setattr(forkserver, "SPAWN_TIMEOUT_S", 120.0)
        with pytest.raises(OSError, match="not running"):
            forks.spawn(args, env, tmp_path, tmp_path / "second.log")
    finally:
        forks.stop()
