"""The partner-bank signing examples (docs/partner-banks/) reproduce the soft ATM's own signatures:
the vectors are checked here against lscloud.auth, and the JavaScript and Java examples are run
against the same vectors when Node / a JDK is on the machine."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from lscloud.auth import canonical, sign_request

HERE = Path(__file__).resolve().parents[2] / "docs" / "partner-banks"
VECTORS = json.loads((HERE / "vectors.json").read_text(encoding="utf-8"))


@pytest.mark.parametrize("vector", VECTORS["requests"], ids=lambda v: v["name"])
def test_each_vector_is_the_platforms_signature(vector):
    headers = sign_request(vector["method"], vector["path"], vector["body"].encode("utf-8"), "simbank", "1",
                           VECTORS["key"], timestamp=int(vector["timestamp"]), nonce=vector["nonce"])
    assert headers["X-LSCloud-Signature"] == vector["signature"]


def test_the_vectors_cover_what_examples_get_wrong():
    requests = VECTORS["requests"]
    assert any("?" in v["path"] and "%" in v["path"].split("?", 1)[1] for v in requests)   # query kept encoded
    assert any("%" in v["path"].split("?", 1)[0] for v in requests)                       # path signed decoded
    assert any(v["method"] != v["method"].upper() for v in requests)                       # method upper-cased
    assert any(not v["body"] for v in requests) and any(not v["body"].isascii() for v in requests)
    decoded = canonical("POST", "/v1/bank/deposits/dp%2D0002/confirm", "1", "n" * 16, b"")
    assert decoded.splitlines()[1] == "/v1/bank/deposits/dp-0002/confirm"
    assert any("%25" in v["path"].split("?", 1)[0] for v in requests)                     # decoded once only
    assert canonical("GET", "/v1/bank/transfers/wd%2532-0005", "1", "n" * 16, b"").splitlines()[1] == \
        "/v1/bank/transfers/wd%32-0005"


def test_banks_are_told_to_keep_a_nonce_as_long_as_we_keep_theirs():
    """The docs said "at least 6 minutes" (the JavaScript example windowS + 60 s): a webhook whose
    timestamp was ahead of the bank's clock could be replayed after that, inside the ±300 s window."""
    from lscloud import nonces
    from lscloud.config import Settings

    minutes = nonces.lifetime_s(Settings().signature_window_s) / 60
    guide = (HERE.parent / "partner-banks.md").read_text(encoding="utf-8")
    assert minutes == 11 and f"at least **{minutes:g} minutes**" in guide and "6 minutes" not in guide.replace(
        "after 6 minutes, say", "")
    for example in ("signing.mjs", "Signing.java"):
        assert "2 * windowS + 60 s" in (HERE / example).read_text(encoding="utf-8"), example


@pytest.mark.skipif(shutil.which("node") is None, reason="node is not installed")
def test_the_javascript_example_reproduces_every_vector():
    done = subprocess.run(["node", "signing.mjs"], cwd=HERE, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "all vectors reproduced" in done.stdout, done.stdout + done.stderr
    assert sum(line.startswith("ok ") for line in done.stdout.splitlines()) == len(VECTORS["requests"])


@pytest.mark.skipif(shutil.which("java") is None, reason="no JDK (java) is installed")
def test_the_java_example_reproduces_every_vector():
    done = subprocess.run(["java", "Signing.java", "vectors.json"], cwd=HERE, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "all vectors reproduced" in done.stdout, done.stdout + done.stderr
    assert sum(line.startswith("ok ") for line in done.stdout.splitlines()) == len(VECTORS["requests"])
