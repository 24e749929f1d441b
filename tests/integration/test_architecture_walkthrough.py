"""docs/architecture.md's "adding a function" builds a working function: every block marked
``file=`` is written into a fresh tree, and the function it makes is started the Knative way on
real weed mini and nats-server, called, and held to its own role matrix. If the page and the
kernel drift apart, this fails."""

from __future__ import annotations

import importlib
import re
from pathlib import Path

import pytest

import role_matrix
from lscloud.loading import load_function

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
BLOCK = re.compile(r"^```\w+ file=(?P<path>\S+)\n(?P<body>.*?)^```$", re.S | re.M)


def build(tree: Path) -> list[str]:
    written = []
    for m in BLOCK.finditer((ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")):
        target = tree / m["path"]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(m["body"], encoding="utf-8")
        written.append(m["path"])
    return written


def test_the_walkthrough_builds_a_function_that_works(tmp_path, start_function, tokens, keys, settings):
    written = build(tmp_path)
    assert "functions/suggestions/function/rules.py" in written and "functions/suggestions/access.yaml" in written
    fn = start_function("suggestions", functions_dir=tmp_path / "functions",
                        function_env={"SUGGESTIONS_MAX_TEXT": "40"})
    client = fn.app.test_client()
    citizen, officer = tokens("citizen", "020095001234"), tokens("officer", "o-1", agency="ubnd-05983")

    body = {"id": "sug-0001", "service": "một cửa", "text": "Mở thêm quầy buổi chiều"}
    r = client.post("/v1/suggestions", json=body, headers=citizen)
    assert r.status_code == 201 and r.get_json()["status"] == "open", r.get_data(as_text=True)
    again = client.post("/v1/suggestions", json=body, headers=citizen)
    assert again.status_code == 201 and again.headers["Idempotent-Replayed"] == "true"
    other = client.post("/v1/suggestions", json={**body, "text": "khác"}, headers=citizen)
    assert other.status_code == 409 and [e["field"] for e in other.get_json()["errors"]] == ["/text"]
    long = client.post("/v1/suggestions", json={**body, "id": "sug-0002", "text": "x" * 41}, headers=citizen)
    assert long.status_code == 422 and long.get_json()["errors"][0]["field"] == "/text"

    assert client.post("/v1/suggestions/sug-0001/acknowledge", headers=officer).get_json()["status"] == "acknowledged"
    closed = client.post("/v1/suggestions/sug-0001/close", headers=officer).get_json()
    assert closed["status"] == "closed" and closed["allowed_actions"] == []
    refused = client.post("/v1/suggestions/sug-0001/acknowledge", headers=officer)
    assert refused.status_code == 409 and refused.get_json()["current_state"] == "closed"
    assert client.get("/v1/suggestions/sug-0001", headers=tokens("citizen", "someone-else")).status_code == 404
    assert client.get("/v1/suggestions/nope-0000", headers=officer).status_code == 404

    assert role_matrix.check(fn.app, "suggestions", keys[0], functions_dir=tmp_path / "functions") > 0
    rules = importlib.import_module(load_function(tmp_path / "functions" / "suggestions").__name__ + ".rules")
    assert [e["to"] for e in rules.records().trail("sug-0001")] == ["open", "acknowledged", "closed"]
