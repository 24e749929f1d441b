"""`lscloud bank-kit check --bank simbank` through `lscloud up`: every check passes against the
simulated bank; against a bank sim with a deliberate fault (it accepts any signature) exactly the
checks that guard the webhook signature fail, and the command exits 1.

Two small clouds (directory, softatm, the bank sim), one per module fixture.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from localcloud import ROOT, Cloud, wait_for
from lscloud.local.servers import free_port
from lscloud.telemetry import read_trace_file

pytestmark = pytest.mark.e2e

ONLY = ["directory", "softatm", "softatm-bank-sim"]
CHECKS = ["registered", "webhook-tampered", "webhook-wrong-key", "webhook-stale", "withdrawal-reserved",
          "withdrawal-rejected", "deposit-confirmed", "webhook-duplicates", "webhook-replayed", "settlement-reconciles"]
SIGNATURE_CHECKS = {"webhook-tampered", "webhook-wrong-key", "webhook-stale", "webhook-replayed"}


def outcomes(output: str) -> dict[str, str]:
    return {m.group(2): m.group(1) for m in re.finditer(r"^(PASS|FAIL)\s+(\S+)", output, re.M)}


def kit(cloud: Cloud, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lscloud.cli", "--state-dir", str(cloud.state_dir), "bank-kit", "check",
                           *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def start(base, dirs) -> Cloud:
    cloud = Cloud(base / "state", dirs, free_port(), base / "up.log", only=ONLY)
    cloud.wait_ready()
    return cloud


@pytest.fixture(scope="module")
def good_cloud(tmp_path_factory):
    base = tmp_path_factory.mktemp("bank-kit")
    cloud = None
    try:
        cloud = start(base, [ROOT / "functions", ROOT / "peers"])
        yield cloud
    finally:
        if cloud is not None:
            cloud.terminate()


def test_the_simulated_bank_passes_every_check(good_cloud):
    done = kit(good_cloud, "--bank", "simbank", "--wait", "90")
    assert done.returncode == 0, done.stdout + done.stderr
    assert outcomes(done.stdout) == {name: "PASS" for name in CHECKS}, done.stdout
    assert "10 passed, 0 failed: ready for go-live" in done.stdout


def test_an_unknown_bank_fails_the_first_check(good_cloud):
    done = kit(good_cloud, "--bank", "nobank")
    assert done.returncode == 1 and outcomes(done.stdout) == {"registered": "FAIL"}, done.stdout


@pytest.fixture(scope="module")
def faulty_peers(tmp_path_factory):
    """The simulated bank, the same code, with SOFTATM_BANK_SIM_FAULT=accept-any-signature in its func.yaml."""
    base = tmp_path_factory.mktemp("faulty-peers")
    peer = base / "softatm-bank-sim"
    peer.mkdir()
    source = ROOT / "peers" / "softatm-bank-sim"
    manifest = (source / "func.yaml").read_text()
    assert "    - name: OTEL_SERVICE_NAME\n" in manifest
    manifest = manifest.replace("    - name: OTEL_SERVICE_NAME\n", "    - name: SOFTATM_BANK_SIM_FAULT\n"
                                "      value: accept-any-signature\n    - name: OTEL_SERVICE_NAME\n", 1)
    (peer / "func.yaml").write_text(manifest)
    (peer / "function").symlink_to(source / "function", target_is_directory=True)
    return base


def test_a_bank_that_accepts_any_signature_fails_the_signature_checks(faulty_peers, tmp_path_factory):
    cloud = None
    try:
        cloud = start(tmp_path_factory.mktemp("bank-kit-faulty"), [ROOT / "functions", faulty_peers])
        done = kit(cloud, "--bank", "simbank", "--wait", "90")
    finally:
        if cloud is not None:
            cloud.terminate()
    assert done.returncode == 1, done.stdout + done.stderr
    got = outcomes(done.stdout)
    assert {n for n, o in got.items() if o == "FAIL"} == SIGNATURE_CHECKS, done.stdout
    assert {n for n, o in got.items() if o == "PASS"} == set(CHECKS) - SIGNATURE_CHECKS, done.stdout
    assert re.search(r"^FAIL\s+webhook-tampered\s+answered 200 to a webhook whose body changed after signing",
                     done.stdout, re.M), done.stdout


def test_a_withdrawal_and_the_banks_answer_are_one_trace(good_cloud):
    """The teller's create, the webhook to the bank (through NATS and the dispatcher), the bank's
    signed reserve and what it wrote: one trace an SRE can follow from the counter to the bank."""
    spans = good_cloud.state_dir / "traces.jsonl"
    if not spans.exists() or b"POST /v1/withdrawals" not in spans.read_bytes():   # this test run alone
        kit(good_cloud, "--bank", "simbank", "--wait", "90")

    def joined() -> bool:
        names = {}
        for span in read_trace_file(spans):
            names.setdefault(span["trace_id"], set()).add((span.get("service"), span["name"]))
        return any({("softatm", "POST /v1/withdrawals"), ("softatm", "POST /events"),
                    ("softatm-bank-sim", "POST /webhooks"),
                    ("softatm", "POST /v1/bank/withdrawals/<tid>/reserve")} <= seen for seen in names.values())

    wait_for(joined, timeout=30, what="a withdrawal's trace holding the bank's webhook and its reserve")
