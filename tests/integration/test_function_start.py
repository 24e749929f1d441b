"""A function's start does only what readiness needs, and `lscloud up` runs a function's hooks in
the process that then serves: facts held without timing anything (which modules a started
process holds; what exists when readiness first answers 200)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from serve_support import hooked_function, wait_ready

from lscloud import serve
from lscloud.local.servers import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HEAVY = ("jwt", "cloudevents", "nats", "aiohttp")

_PROBE = r"""
import json, os, sys
from lscloud.loading import load_function
instance = load_function(sys.argv[1]).new()
instance.start(dict(os.environ))
ready = instance.ready()
heavy = sys.argv[2].split(",")
before = [m for m in heavy if m in sys.modules]
client = instance.app.test_client()
status = client.get(sys.argv[3], headers={"Authorization": "Bearer not-a-token"}).status_code
after = [m for m in heavy if m in sys.modules]
instance.stop()
print(json.dumps({"ready": ready[0], "before": before, "status": status, "after": after}))
"""


def _started(settings, name: str, path: str) -> dict:
    env = {**os.environ, **settings.env_vars(), "K_SERVICE": name, "PYTHONPATH": str(ROOT)}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    done = subprocess.run([sys.executable, "-c", _PROBE, str(ROOT / "functions" / name), ",".join(HEAVY), path],
                          env=env, cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_directory_is_ready_without_the_token_event_and_bus_libraries(settings, keys):
    # reference data read anonymously: nothing of PyJWT, the CloudEvents SDK or nats-py to reach readiness
    found = _started(settings.replace(jwt_public_key=keys[1]), "directory", "/v1/units")
    assert found["ready"] is True
    assert found["before"] == []


def test_a_function_with_housekeeping_starts_without_the_bus_client(settings, keys):
    # border sweeps its run-once records on the clock's tick: knowing the tick's type needs no NATS client
    settings = settings.replace(jwt_public_key=keys[1], events_public_key=keys[1])
    found = _started(settings, "border", "/v1/declarations/x-nonexistent-0")   # an id of the declarations' shape
    assert found["ready"] is True
    assert "nats" not in found["before"] and "aiohttp" not in found["before"]
    # the first request that carries a token loads PyJWT, and is answered as before
    assert found["status"] == 401 and "jwt" in found["after"]


@pytest.fixture
def hook_env(settings, monkeypatch):
    for k, v in settings.env_vars().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("K_SERVICE", "hooked")
    return settings


def test_run_hooks_migrates_then_seeds_once_per_version(hook_env, object_store, tmp_path):
    root = hooked_function(tmp_path)
    report = tmp_path / "report.json"
    first = serve.run_hooks(root, report)
    assert json.loads(report.read_text()) == json.loads(json.dumps(first, default=str))
    assert first["migrate"]["migrated"] is True and first["seed"]["seeded"] is True
    assert object_store.head(hook_env.bucket, "hooked/seeded.json")
    again = serve.run_hooks(root, report)
    assert again["migrate"]["migrated"] is False and again["seed"]["seeded"] is False


def test_a_failing_hook_is_reported_and_the_next_still_runs(hook_env, tmp_path):
    root = hooked_function(tmp_path, seed_body="    raise RuntimeError('no data file')\n")
    found = serve.run_hooks(root, tmp_path / "report.json")
    assert found["migrate"]["migrated"] is True
    assert "no data file" in found["seed"]["error"]


def test_a_function_started_with_its_hooks_is_ready_only_after_they_ran(settings, object_store, tmp_path):
    # what `lscloud up` starts: readiness 200 means the function's data is in place
    root = hooked_function(tmp_path)
    report, port = tmp_path / "report.json", free_port()
    env = {**os.environ, **settings.env_vars(), "K_SERVICE": "hooked", "PYTHONPATH": str(ROOT),
           "LISTEN_ADDRESS": f"127.0.0.1:{port}", "PORT": str(port)}
    proc = subprocess.Popen([sys.executable, "-m", "lscloud.serve", "--run-hooks", str(report), str(root)], env=env,
                            cwd=str(root), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    try:
        wait_ready(port, proc, lambda: proc.stderr.read().decode(errors="replace"))
        done = json.loads(report.read_text())
        assert done["migrate"]["migrated"] is True and done["seed"]["seeded"] is True
        assert object_store.head(settings.bucket, "hooked/seeded.json")
    finally:
        proc.terminate()
        proc.wait(15)
