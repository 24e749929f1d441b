"""A changed pseudonym key, against a real weed mini (the operator survey's repro: a key set in the
shell re-keyed identity's population, and once it was gone again every verification said
``match: false`` with no error). Which key the data is keyed under is recorded beside it
(``_lscloud/pseudonym-key/<function>.json``, key ids only); the migration re-keys whenever that record
names another key, so switching back re-keys back; a function served while the record names another
key is not ready and answers 503; `lscloud up` refuses an environment's key that is not the state
dir's, saying what to run."""
# ruff: noqa: F811 (the with_key fixture imported from serve_support is named as a parameter)

from __future__ import annotations

import asyncio
import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from bucket_scan import bucket_bytes
from serve_support import hooked_function, wait_ready, with_key  # noqa: F401
from waiting import wait_for

from functions.identity.function import population as identity
from lscloud import config, pseudonyms, runtime, serve
from lscloud.local import pseudonym_key
from lscloud.local.servers import free_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
IDENTITY = ROOT / "functions" / "identity"
CCCD = "020095001234"
KEY_A = "pseudonym-key-a-of-the-state-dir-0123456789"
KEY_B = "pseudonym-key-b-from-the-shell-0123456789ab"
ID_A, ID_B = pseudonyms.key_id_of(KEY_A), pseudonyms.key_id_of(KEY_B)



def verifies(settings, key: str) -> bool:
    """identity finds citizen CCCD under ``key``, as its verification asks."""
    runtime.install(runtime.Runtime(settings.replace(pseudonym_key=key)))
    try:
        return identity.StoreRegistry().lookup(CCCD) is not None
    finally:
        runtime.uninstall()


def recorded(object_store, bucket, function="identity") -> dict:
    return json.loads(object_store.get(bucket, pseudonyms.key_marker(function)).body)


def test_switching_the_key_and_back_re_keys_both_ways(settings, object_store, bucket, with_key):
    with_key(KEY_A)
    assert serve.migrate(IDENTITY)["migrated"] is True
    assert serve.seed(IDENTITY)["seeded"] is True
    assert verifies(settings, KEY_A)

    # (b) the shell's key: the population is re-keyed under it, and the record says so
    with_key(KEY_B)
    to_b = serve.migrate(IDENTITY)
    assert to_b["migrated"] is True and to_b["result"]["population"]["moved"] > 300
    assert verifies(settings, KEY_B) and not verifies(settings, KEY_A)

    # (c) back to the state dir's key: the migration's marker for key A exists since the first run,
    # but the data is keyed under B now, so it runs again and re-keys back
    with_key(KEY_A)
    back = serve.migrate(IDENTITY)
    assert back["migrated"] is True, back
    assert back["result"]["population"]["moved"] > 300
    assert verifies(settings, KEY_A) and not verifies(settings, KEY_B)
    assert (to_b["key_id"], to_b["rekeyed_from"], back["key_id"], back["rekeyed_from"]) == (ID_B, ID_A, ID_A, ID_B)
    record = recorded(object_store, bucket)
    assert record["key_id"] == ID_A and [h["key_id"] for h in record["history"]] == [ID_B, ID_A]

    # and once keyed under the process's key, nothing runs again
    assert serve.migrate(IDENTITY)["migrated"] is False
    # ids only: no key is written anywhere in the bucket
    assert not [k for k, body in bucket_bytes(object_store, bucket).items()
                if KEY_A.encode() in body or KEY_B.encode() in body or KEY_A in k or KEY_B in k]


def test_identity_seeds_again_under_a_new_key(settings, bucket, with_key):
    with_key(KEY_A)
    serve.migrate(IDENTITY)
    assert serve.seed(IDENTITY)["seeded"] is True
    with_key(KEY_B)
    serve.migrate(IDENTITY)
    # the seed's version names the key: rows seeded under another key are not this key's data
    assert serve.seed(IDENTITY)["seeded"] is True
    assert verifies(settings, KEY_B)
    with_key(KEY_A)
    serve.migrate(IDENTITY)
    assert serve.seed(IDENTITY)["seeded"] is False     # seeded under key A once, and keyed under A again


def test_data_from_before_the_record_is_migrated_once_to_record_its_key(settings, object_store, bucket, with_key):
    with_key(KEY_A)
    serve.migrate(IDENTITY)
    object_store.delete(bucket, pseudonyms.key_marker("identity"))   # as a bucket written before the record
    again = serve.migrate(IDENTITY)
    assert again["migrated"] is True and "rekeyed_from" not in again
    assert recorded(object_store, bucket)["key_id"] == ID_A
    assert serve.migrate(IDENTITY)["migrated"] is False


class Instance:
    """A function instance as func-python serves it."""

    def __init__(self):
        self.handled = 0

    def ready(self):
        return True, "ok"

    async def handle(self, scope, receive, send):
        self.handled += 1
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})


def answer(guard) -> tuple[int, dict, bytes]:
    sent = []

    async def send(message):
        sent.append(message)

    asyncio.run(guard.handle({"type": "http", "path": "/v1/verifications"}, None, send))
    return sent[0]["status"], dict(sent[0]["headers"]), sent[1]["body"]


def test_a_function_whose_data_is_keyed_under_another_key_is_not_ready(settings, object_store, bucket, with_key,
                                                                        caplog):
    with_key(KEY_A)
    serve.migrate(IDENTITY)
    runtime.install(runtime.Runtime(settings.replace(pseudonym_key=KEY_B)))   # what start(cfg) installs
    inner = Instance()
    guard = serve.KeyGuard(inner, "identity")
    with caplog.at_level(logging.ERROR, logger="lscloud.serve"):
        ok, message = guard.ready()
        assert guard.ready()[0] is False
    assert ok is False and ID_A in message and ID_B in message and "migrate" in message
    assert KEY_A not in message and KEY_B not in message
    lines = [r.getMessage() for r in caplog.records if r.name == "lscloud.serve"]
    assert len(lines) == 1 and ID_A in lines[0] and ID_B in lines[0]     # one clear line, not one a probe
    status, headers, body = answer(guard)
    assert status == 503 and headers[b"content-type"] == b"application/problem+json" and inner.handled == 0
    assert json.loads(body)["type"].endswith("pseudonym-key-mismatch")
    runtime.uninstall()

    # a migration to its key makes it ready at the next probe
    with_key(KEY_B)
    assert serve.migrate(IDENTITY)["rekeyed_from"] == ID_A
    runtime.install(runtime.Runtime(settings.replace(pseudonym_key=KEY_B)))
    assert guard.ready() == (True, "ok")
    assert answer(guard)[0] == 200 and inner.handled == 1


def test_a_served_function_waits_for_the_migration_to_its_key(settings, object_store, bucket, tmp_path):
    # the process the cluster runs (and `lscloud up`): a new revision with a new key, before its Job ran
    root = hooked_function(tmp_path)
    object_store.put(bucket, pseudonyms.key_marker("hooked"), json.dumps({"key_id": ID_A}).encode())
    port = free_port()
    env = {**os.environ, **settings.replace(pseudonym_key=KEY_B).env_vars(), "K_SERVICE": "hooked",
           "PYTHONPATH": str(ROOT), "LISTEN_ADDRESS": f"127.0.0.1:{port}", "PORT": str(port)}
    env.pop("OTEL_EXPORTER_OTLP_ENDPOINT", None)
    log = tmp_path / "serve.log"
    with open(log, "wb") as err:
        proc = subprocess.Popen([sys.executable, "-m", "lscloud.serve", str(root)], env=env, cwd=str(root),
                                stdout=subprocess.DEVNULL, stderr=err, start_new_session=True)
    try:
        answers = []

        def probe() -> bool:
            try:
                answers.append(httpx.get(f"http://127.0.0.1:{port}/health/readiness", timeout=10))
            except httpx.HTTPError:
                return False
            return True

        wait_for(probe, "readiness answers", 120)
        refused = answers[-1]
        assert refused.status_code == 500 and ID_A in refused.text and ID_B in refused.text
        assert KEY_B not in refused.text
        wait_for(lambda: ID_A in log.read_text(errors="replace"), "the log line", 60)
        assert KEY_A not in log.read_text(errors="replace") and KEY_B not in log.read_text(errors="replace")

        # the migration Job, with the function's environment
        done = subprocess.run([sys.executable, "-m", "lscloud.serve", "--migrate", str(root)], env=env,
                              cwd=str(root), capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        assert json.loads(done.stdout.strip().splitlines()[-1])["rekeyed_from"] == ID_A
        wait_ready(port, proc, lambda: log.read_text(errors="replace"))
    finally:
        proc.terminate()
        proc.wait(15)


def test_lscloud_up_refuses_a_key_that_is_not_the_state_dirs(tmp_path):
    state = tmp_path / "state"
    own = pseudonym_key.ensure(state)
    with pytest.raises(config.ConfigError) as refused:
        pseudonym_key.for_cloud(state, config.load({"LSCLOUD_PSEUDONYM_KEY": KEY_B}))
    message = str(refused.value)
    assert pseudonyms.key_id_of(own) in message and ID_B in message
    assert own not in message and KEY_B not in message
    assert "unset LSCLOUD_PSEUDONYM_KEY" in message and f"mv {pseudonym_key.key_file(state)}" in message
    assert pseudonym_key.key_file(state).read_text() == own                   # nothing changed
    # the state dir's own key, from the environment or not, is fine
    assert pseudonym_key.for_cloud(state, config.load({"LSCLOUD_PSEUDONYM_KEY": own})) == own
    assert pseudonym_key.for_cloud(state, config.load({})) == own
    # a state dir without a key takes the environment's, and keeps it for the next start
    fresh = tmp_path / "fresh"
    assert pseudonym_key.for_cloud(fresh, config.load({"LSCLOUD_PSEUDONYM_KEY": KEY_B})) == KEY_B
    assert pseudonym_key.for_cloud(fresh, config.load({})) == KEY_B


def test_the_re_key_the_refusal_names_then_starts(tmp_path):
    state = tmp_path / "state"
    own = pseudonym_key.ensure(state)
    with pytest.raises(config.ConfigError) as refused:
        pseudonym_key.for_cloud(state, config.load({"LSCLOUD_PSEUDONYM_KEY": KEY_B}))
    (command,) = [line.strip() for line in str(refused.value).splitlines() if line.strip().startswith("mv ")]
    shell = command.split(" && lscloud ")[0]
    subprocess.run(["bash", "-c", shell], env={**os.environ, "LSCLOUD_PSEUDONYM_KEY": KEY_B}, check=True)
    assert pseudonym_key.for_cloud(state, config.load({"LSCLOUD_PSEUDONYM_KEY": KEY_B})) == KEY_B
    assert pseudonym_key.for_cloud(state, config.load({})) == KEY_B
    kept = pseudonym_key.key_file(state).with_name(f"pseudonym.key.{pseudonyms.key_id_of(own)}")
    assert kept.read_text() == own and oct(kept.stat().st_mode & 0o777) == "0o600"
