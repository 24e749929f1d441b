"""The migration's second phase (``python -m lscloud.serve --migrate --after-rollout``), against a real
weed: in the cluster an older revision's replicas go on writing the older layout after the first
phase ran (while the new revision rolls out); the first phase's marker says "already migrated" to
every later run, so only the second phase, with a marker of its own, indexes what they wrote."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from lscloud import serve

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]


def indexing_function(tmp_path: Path) -> Path:
    """benchmarks/hello with a migration that gives every ``items/<id>`` an ``index/<id>`` entry
    (create-only, as the functions' migrations are): what an older revision writes has none."""
    root = tmp_path / "indexed"
    package = root / "function"
    package.mkdir(parents=True)
    for f in ("__init__.py", "func.py"):
        (package / f).write_text((ROOT / "benchmarks" / "hello" / "function" / f).read_text())
    (package / "migrate.py").write_text(
        "from lscloud.store.errors import ConditionalCheckFailed\n"
        "def migrate(runtime):\n"
        "    bucket, added = runtime.settings.bucket, 0\n"
        "    for o in runtime.objects.list(bucket, 'items/'):\n"
        "        try:\n"
        "            runtime.objects.put(bucket, 'index/' + o.key.split('/', 1)[1], b'{}', if_none_match=True)\n"
        "            added += 1\n"
        "        except ConditionalCheckFailed:\n"
        "            pass\n"
        "    return {'added': added}\n")
    return root


@pytest.fixture
def hook_env(settings, monkeypatch):
    for k, v in settings.env_vars().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("K_SERVICE", "indexed")
    return settings


def indexed(object_store, bucket) -> list[str]:
    return sorted(o.key for o in object_store.list(bucket, "index/"))


def test_what_an_older_replica_wrote_after_the_first_phase_is_indexed_by_the_second(hook_env, object_store, tmp_path):
    root, bucket = indexing_function(tmp_path), hook_env.bucket
    object_store.put(bucket, "items/a", b"{}")
    before = serve.migrate(root)                      # the Job before the new revision serves
    assert before["migrated"] is True and before["result"] == {"added": 1}

    object_store.put(bucket, "items/b", b"{}")        # an older revision's replica, during the rollout
    assert serve.migrate(root)["migrated"] is False   # the first phase is done for this version
    assert indexed(object_store, bucket) == ["index/a"]

    after = serve.migrate(root, after_rollout=True)   # no replica of an older revision left
    assert after["migrated"] is True and after["result"] == {"added": 1} and after["phase"] == "after"
    assert after["marker"] != before["marker"]
    assert indexed(object_store, bucket) == ["index/a", "index/b"]
    record = json.loads(object_store.get(bucket, after["marker"]).body)
    assert record["fingerprint"].endswith(":after") and record["phase"] == "after"

    # once per version too: the next deploy's Job (same migrate.py) does nothing new
    again = serve.migrate(root, after_rollout=True)
    assert again == {"function": "indexed", "migrated": False, "reason": "already done", "marker": after["marker"],
                     "phase": "after"}
    assert serve.migrate(root, after_rollout=True, force=True)["result"] == {"added": 0}


def test_the_second_phase_runs_even_where_the_first_never_did(hook_env, object_store, tmp_path):
    root, bucket = indexing_function(tmp_path), hook_env.bucket
    object_store.put(bucket, "items/a", b"{}")
    assert serve.migrate(root, after_rollout=True)["migrated"] is True
    # and it is not the first phase's marker: that one still runs its own once
    assert serve.migrate(root)["migrated"] is True
    assert indexed(object_store, bucket) == ["index/a"]


@pytest.fixture
def loop_policy_kept():
    """serve.main installs uvloop's policy for the process, as the Job's does; later tests get theirs back."""
    before = asyncio.get_event_loop_policy()
    yield
    asyncio.set_event_loop_policy(before)


def test_the_command_the_cluster_job_runs(hook_env, object_store, tmp_path, capsys, loop_policy_kept):
    root = indexing_function(tmp_path)
    assert serve.main(["--migrate", str(root)]) == 0
    assert json.loads(capsys.readouterr().out)["migrated"] is True
    assert serve.main(["--migrate", "--after-rollout", str(root)]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["migrated"] is True and line["phase"] == "after"
    assert serve.main(["--migrate", "--after-rollout", str(root)]) == 0
    assert json.loads(capsys.readouterr().out)["reason"] == "already done"
    with pytest.raises(SystemExit) as refused:
        serve.main(["--seed", "--after-rollout", str(root)])
    assert refused.value.code == 2 and "--after-rollout goes with --migrate" in capsys.readouterr().err
