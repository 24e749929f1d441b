"""func.yaml parsing: the Knative shape, our use of deploy.subscriptions, and errors that say where."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from lscloud import manifest as m

ROOT = Path(__file__).resolve().parents[2]

FULL = """
specVersion: 0.36.0
name: border
runtime: python
run:
  envs:
    - name: BORDER_GATES
      value: huu-nghi,tan-thanh
    - name: QUEUE_SLOTS
      value: 40
    - name: FROM_HOST
      value: '{{ env:LSCLOUD_TEST_FROM_HOST }}'
    - name: LSCLOUD_S3_SECRET_KEY
      value: '{{ secret:lscloud-s3:secret-key }}'
deploy:
  options:
    scale: {min: 1, max: 5, target: 50, metric: concurrency, utilization: 70}
    resources:
      requests: {cpu: 100m, memory: 128Mi}
      limits: {cpu: 500m, memory: 256Mi, concurrency: 100}
  subscriptions:
    - source: default
      filters:
        type: vn.langson.border.declaration.submitted.v1
    - filters:
        type: vn.langson.border.truck.called.v1
"""


def write(tmp_path: Path, folder: str, text: str, package: bool = True) -> Path:
    d = tmp_path / folder
    (d / "function").mkdir(parents=True)
    if package:
        (d / "function" / "__init__.py").write_text("def new():\n    pass\n")
    (d / "func.yaml").write_text(textwrap.dedent(text))
    return d


def test_full_manifest(tmp_path):
    man = m.load(write(tmp_path, "border", FULL))
    assert man.name == "border" and man.runtime == "python" and man.spec_version == "0.36.0"
    assert man.root == (tmp_path / "border").absolute()
    assert man.scale == m.Scale(min=1, max=5, target=50, metric="concurrency", utilization=70)
    assert man.resources.limits == {"cpu": "500m", "memory": "256Mi", "concurrency": 100}
    assert [(s.type, s.source) for s in man.subscriptions] == [
        ("vn.langson.border.declaration.submitted.v1", "default"), ("vn.langson.border.truck.called.v1", "default")]
    assert [s.name for s in man.subscriptions] == ["vn-langson-border-declaration-submitted-v1",
                                                   "vn-langson-border-truck-called-v1"]
    env = man.resolved_env({"LSCLOUD_TEST_FROM_HOST": "h1"})
    # numbers become strings; env templates resolved; cluster secrets left to the platform
    assert env == {"BORDER_GATES": "huu-nghi,tan-thanh", "QUEUE_SLOTS": "40", "FROM_HOST": "h1"}
    assert "FROM_HOST" not in man.resolved_env({})
    assert man.seed_module is None


def test_minimal_manifest_and_seed_hook(tmp_path):
    d = write(tmp_path, "tiny", "name: tiny\nruntime: python\n")
    (d / "function" / "seed.py").write_text("def seed(runtime):\n    return 0\n")
    man = m.load(d)
    assert man.envs == () and man.subscriptions == () and man.scale == m.Scale()
    assert man.seed_module == d.absolute() / "function" / "seed.py"


@pytest.mark.parametrize("text, field, words", [
    ("runtime: python\n", "/name", "required"),
    ("name: Bad_Name\nruntime: python\n", "/name", "lowercase"),
    ("name: docs\nruntime: python\n", "/name", "reserved"),
    ("name: other\nruntime: python\n", "/name", "folder"),
    ("name: fn\nruntime: node\n", "/runtime", "python"),
    ("- a\n- b\n", "", "mapping"),
    ("name: fn\nruntime: python\nrun:\n  envs:\n    - name: 1BAD\n      value: x\n", "/run/envs/0/name", "variable"),
    ("name: fn\nruntime: python\nrun:\n  envs:\n    - {name: A, value: x}\n    - {name: A, value: y}\n",
     "/run/envs/1/name", "twice"),
    ("name: fn\nruntime: python\nrun:\n  envs:\n    - {name: A}\n", "/run/envs/0/value", "string"),
    ("name: fn\nruntime: python\nrun:\n  envs:\n    - {name: A, value: '{{ vault:x }}'}\n", "/run/envs/0/value", "template"),
    ("name: fn\nruntime: python\nrun:\n  envs: {A: b}\n", "/run/envs", "list"),
    ("name: fn\nruntime: python\ndeploy:\n  options:\n    scale: {min: -1}\n", "/deploy/options/scale/min", "negative"),
    ("name: fn\nruntime: python\ndeploy:\n  options:\n    scale: {min: 3, max: 2}\n", "/deploy/options/scale/min", "greater"),
    ("name: fn\nruntime: python\ndeploy:\n  options:\n    scale: {max: many}\n", "/deploy/options/scale/max", "number"),
    ("name: fn\nruntime: python\ndeploy:\n  subscriptions:\n    - source: default\n", "/deploy/subscriptions/0/filters/type",
     "required"),
    ("name: fn\nruntime: python\ndeploy:\n  subscriptions:\n    - filters: {type: 'a b'}\n",
     "/deploy/subscriptions/0/filters/type", "CloudEvent type"),
    ("name: fn\nruntime: python\ndeploy:\n  subscriptions:\n    - filters: {type: x.v1}\n    - filters: {type: x.v1}\n",
     "/deploy/subscriptions/1/filters/type", "twice"),
    ("name: fn\nruntime: python\ndeploy:\n  subscriptions:\n    - filters: {type: x.v1, extension: y}\n",
     "/deploy/subscriptions/0/filters/extension", "only the 'type'"),
])
def test_errors_name_file_and_field(tmp_path, text, field, words):
    d = write(tmp_path, "fn", text)
    with pytest.raises(m.ManifestError) as info:
        m.load(d)
    assert info.value.field == field
    assert info.value.path == str((d / "func.yaml").absolute())
    assert words in str(info.value) and str(d / "func.yaml") in str(info.value)


def test_invalid_yaml_names_the_line(tmp_path):
    d = write(tmp_path, "fn", "name: fn\nruntime: python\nrun: [unclosed\n")
    with pytest.raises(m.ManifestError, match=r"func.yaml: /: not valid YAML \(line \d+\)"):
        m.load(d)


def test_missing_file_and_package(tmp_path):
    with pytest.raises(m.ManifestError, match="file not found"):
        m.load(tmp_path / "nothing")
    d = write(tmp_path, "fn", "name: fn\nruntime: python\n", package=False)
    with pytest.raises(m.ManifestError, match="function package is missing"):
        m.load(d)


def test_discover_several_folders_sorted_and_unique(tmp_path):
    write(tmp_path / "a", "zeta", "name: zeta\nruntime: python\n")
    write(tmp_path / "b", "alpha", "name: alpha\nruntime: python\n")
    (tmp_path / "a" / "not-a-function").mkdir()
    assert [x.name for x in m.discover([tmp_path / "a", tmp_path / "b"])] == ["alpha", "zeta"]
    assert [x.name for x in m.discover(tmp_path / "a")] == ["zeta"]
    with pytest.raises(m.ManifestError, match="functions folder not found"):
        m.discover(tmp_path / "missing")


def test_discover_refuses_duplicate_names(tmp_path):
    write(tmp_path / "a", "same", "name: same\nruntime: python\n")
    write(tmp_path / "b", "same", "name: same\nruntime: python\n")
    with pytest.raises(m.ManifestError, match="also the name of"):
        m.discover([tmp_path / "a", tmp_path / "b"])


def test_the_repository_manifests_parse():
    found = m.discover([ROOT / "benchmarks"] + ([ROOT / "functions"] if (ROOT / "functions").is_dir() else []))
    hello = next(x for x in found if x.name == "hello")
    assert hello.resolved_env({}) == {"HELLO_GREETING": "xin chào"}
    assert hello.subscriptions == ()
