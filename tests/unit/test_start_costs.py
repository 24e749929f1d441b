"""What a function's start costs is held by facts, not timings: boto3 clients share one parsed S3 model,
the local cloud's bytecode cache is where the interpreter looks, every schema a start no longer
checks against its metaschema is checked here."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

from lscloud import config
from lscloud import manifest as manifests
from lscloud.local.bytecode import compile_tree
from lscloud.local.forkserver import PRELOAD
from lscloud.local.supervisor import function_env
from lscloud.store.objects import ObjectStore
from lscloud.validation import StrictValidator

ROOT = Path(__file__).resolve().parents[2]


def test_every_client_of_a_process_shares_one_parsed_s3_model():
    # the boto3 clients the benchmarks' baselines build (ObjectStore.client; a function builds none):
    # the S3 model (MBs of JSON) parsed once per process
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


def _package(tmp_path: Path) -> Path:
    root = tmp_path / "src"
    (root / "pkg").mkdir(parents=True)
    (root / "pkg" / "__init__.py").write_text("")
    (root / "pkg" / "mod.py").write_text("VALUE = 42\n")
    return root


def test_bytecode_lands_where_the_interpreter_looks_and_is_compiled_once(tmp_path):
    root = _package(tmp_path)
    assert compile_tree([root / "pkg"]) == 2
    assert (root / "pkg" / "__pycache__" / f"mod.{sys.implementation.cache_tag}.pyc").is_file()
    assert compile_tree([root / "pkg"]) == 0   # fresh: nothing compiled again
    (root / "pkg" / "mod.py").write_text("VALUE = 43  # changed\n")
    assert compile_tree([root / "pkg"]) == 1


def test_a_process_that_writes_no_bytecode_reads_the_compiled_one(tmp_path):
    # the function processes keep PYTHONDONTWRITEBYTECODE (they never write) and still skip compiling
    root = _package(tmp_path)
    compile_tree([root])
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(root), "PYTHONDONTWRITEBYTECODE": "1"}
    verbose = subprocess.run([sys.executable, "-v", "-c", "import pkg.mod"], env=env, cwd=str(tmp_path),
                             capture_output=True, text=True, check=True).stderr
    pyc = root / "pkg" / "__pycache__" / f"mod.{sys.implementation.cache_tag}.pyc"
    assert f"code object from '{pyc}'" in verbose


def test_function_processes_keep_the_standard_librarys_bytecode(tmp_path):
    # no cache prefix of our own: it would hide every installed module's __pycache__ from them
    m = manifests.load(ROOT / "functions" / "directory")
    env = function_env(m, config.Settings().replace(state_dir=str(tmp_path)), 8080, base={"PATH": "/usr/bin:/bin"})
    assert "PYTHONPYCACHEPREFIX" not in env


def test_serving_the_bare_baseline_imports_no_runtime():
    # `lscloud bench` compares every function with bare hello: serving hello must not load Flask,
    # the object store client or telemetry, or the baseline would hide what the runtime costs
    probe = ("import sys; from pathlib import Path; from lscloud.serve import load_package; "
             f"load_package(Path({str(ROOT / 'benchmarks' / 'hello')!r})); "
             "print(sorted(m for m in ('flask', 'boto3', 'opentelemetry.sdk', 'lscloud.knative', 'jsonschema') "
             "if m in sys.modules))")
    loaded = subprocess.run([sys.executable, "-c", probe], env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT)},
                            capture_output=True, text=True, check=True).stdout.strip()
    assert loaded == "[]"


def _findable(name: str) -> bool:
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:  # its parent package is gone
        return False


def test_every_module_the_fork_server_preloads_exists():
    # the fork server only logs a preload that fails (forkserver.log): a module renamed or dropped
    # from the runtime would leave every function importing its replacement again, unnoticed
    assert [name for name in PRELOAD if not _findable(name)] == []


def _modules_after_start(function: str, modules: tuple[str, ...], env: dict | None = None) -> list[str]:
    """Which of ``modules`` a function's process holds once imported and started (``start(cfg)``, as
    func-python calls it before the first readiness probe)."""
    probe = ("import sys, os; from pathlib import Path; import lscloud.function_server; "
             "from lscloud.serve import load_package; "
             f"fn = load_package(Path({str(ROOT / 'functions' / function)!r})).new(); fn.start(dict(os.environ)); "
             f"print(sorted(m for m in {modules!r} if m in sys.modules))")
    base = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(ROOT), "K_SERVICE": function, **(env or {})}
    out = subprocess.run([sys.executable, "-c", probe], env=base, capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1].replace("'", '"'))


def test_the_directory_starts_without_jsonschema_yaml_or_cryptography(tmp_path):
    # query parameters are checked against the metaschema on first use (every function's are checked by
    # tests/unit/test_openapi_documents.py); the YAML files are read by the seed only; the events key
    # is loaded by the functions that take events (test_config), and the token key at the first token
    assert _modules_after_start("directory", ("jsonschema", "referencing", "yaml", "cryptography"),
                                _keys(tmp_path)) == []


def test_the_market_starts_without_reportlab(tmp_path):
    # only a producer printing a stamp sheet needs it (routes_lots imports the sheet module then)
    assert _modules_after_start("market", ("reportlab",), _keys(tmp_path)) == []


def test_the_assistant_starts_without_scipy(tmp_path):
    # bm25s imports it when installed, for a backend the indexes do not use (lscloud.lean_imports)
    assert _modules_after_start("assistant", ("scipy",), _keys(tmp_path)) == []


def _keys(tmp_path) -> dict:
    from lscloud.auth import eventing_keys

    pem = eventing_keys(tmp_path)[1]
    return {"LSCLOUD_EVENTS_PUBLIC_KEY": pem, "LSCLOUD_JWT_PUBLIC_KEY": pem}


def test_a_start_imports_with_the_collector_off_and_serves_with_it_on():
    # collections during an import find next to nothing (~10% of a start); after it the collector
    # is on again, and what the import made is frozen out of later collections
    import gc

    from lscloud import serve

    assert gc.isenabled()
    frozen = gc.get_freeze_count()
    try:
        with serve.importing():
            assert not gc.isenabled()
            made = [[] for _ in range(1000)]
        assert gc.isenabled()
        assert gc.get_freeze_count() >= frozen + len(made)
    finally:
        gc.unfreeze()
