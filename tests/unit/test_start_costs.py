"""What a function's start costs is held by facts, not timings: clients share one parsed S3 model,
the local cloud's bytecode cache is where the interpreter looks, every schema a start no longer
checks against its metaschema is checked here."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from lscloud import config
from lscloud import manifest as manifests
from lscloud.local.bytecode import cache_path, compile_tree, pycache_dir
from lscloud.local.supervisor import function_env
from lscloud.store.objects import ObjectStore
from lscloud.validation import StrictValidator

ROOT = Path(__file__).resolve().parents[2]


def test_every_client_of_a_process_shares_one_parsed_s3_model():
    # the readiness probe's client next to the runtime's: the S3 model (MBs of JSON) parsed once
    a = ObjectStore("http://127.0.0.1:1", "a", "b")
    b = ObjectStore("http://127.0.0.1:2", "c", "d", max_pool=2, timeout_s=2.0)
    assert a.client.meta.service_model._service_description is b.client.meta.service_model._service_description
    # endpoint and credentials stay each client's own
    assert a.client.meta.endpoint_url != b.client.meta.endpoint_url
    assert a.client._request_signer._credentials.access_key == "a"
    assert b.client._request_signer._credentials.access_key == "c"


@pytest.mark.parametrize("path", sorted((ROOT / "schemas").rglob("*.json")), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_schema_is_valid_against_its_metaschema(path):
    # the start checks only that a route's schema exists; this is where a broken one is caught
    StrictValidator.check_schema(json.loads(path.read_text(encoding="utf-8")))


def test_bytecode_lands_where_the_interpreter_looks_and_is_compiled_once(tmp_path):
    prefix = pycache_dir(tmp_path)
    source = ROOT / "lscloud" / "knative.py"
    looked_up = subprocess.run(
        [sys.executable, "-c", f"import importlib.util; print(importlib.util.cache_from_source({str(source)!r}))"],
        env={"PYTHONPYCACHEPREFIX": str(prefix)}, capture_output=True, text=True, check=True).stdout.strip()
    assert Path(looked_up) == cache_path(prefix, source)
    package = ROOT / "functions" / "directory"
    assert compile_tree(prefix, [package]) > 0
    assert cache_path(prefix, package / "function" / "app.py").is_file()
    assert compile_tree(prefix, [package]) == 0   # fresh: nothing compiled again


def test_a_function_process_reads_the_clouds_bytecode(tmp_path):
    m = manifests.load(ROOT / "functions" / "directory")
    env = function_env(m, config.Settings().replace(state_dir=str(tmp_path)), 8080, base={"PATH": "/usr/bin:/bin"})
    assert env["PYTHONPYCACHEPREFIX"] == str(pycache_dir(tmp_path))
    compile_tree(pycache_dir(tmp_path), [ROOT / "lscloud" / "problems.py"])
    env["PYTHONDONTWRITEBYTECODE"] = "1"   # read, never written, by the function process
    verbose = subprocess.run([sys.executable, "-v", "-c", "import lscloud.problems"], env=env, cwd=str(tmp_path),
                             capture_output=True, text=True, check=True).stderr
    assert f"code object from '{cache_path(pycache_dir(tmp_path), ROOT / 'lscloud' / 'problems.py')}'" in verbose
