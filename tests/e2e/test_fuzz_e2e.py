"""`lscloud fuzz` against a real `lscloud up`: a small run keeps the command working.

A cloud with only the directory and identity, a few dozen schemathesis cases each through the
gateway, and the directory straight on its own port. Both ways the run must give exit 0: no 5xx and
every 4xx problem+json, from the functions and from the gateway's own answers to odd paths.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import pytest

from localcloud import ROOT, running

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def cloud(tmp_path_factory):
    with running(tmp_path_factory, "fuzz-cloud", only=["directory", "identity"]) as c:
        yield c


def fuzz(cloud, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lscloud.cli", "--state-dir", str(cloud.state_dir), "fuzz", *args],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def _row(output: str, name: str) -> list[str]:
    line = next(l for l in output.splitlines() if re.match(rf"{name}\s+\d", l))
    return line.split()


def test_a_small_fuzz_run_through_the_gateway_and_direct(cloud, tmp_path):
    out = fuzz(cloud, "--base-url", cloud.gateway, "--function", "directory", "--function", "identity",
                    "--cases", "30", "--phases", "fuzzing", "--seed", "7", "--report-dir", str(tmp_path / "gw"))
    assert out.returncode == 0 and "total:" in out.stdout, out.stdout + out.stderr
    for name in ("directory", "identity"):
        cases, responses = _row(out.stdout, name)[1:3]
        assert int(cases) >= 10 and int(responses) >= int(cases)
        har = json.loads((tmp_path / "gw" / f"{name}.har.json").read_text())
        assert har["log"]["entries"]
    direct = fuzz(cloud, "--direct", "--function", "directory", "--cases", "20", "--phases", "fuzzing",
                       "--report-dir", str(tmp_path / "direct"))
    assert direct.returncode == 0, direct.stdout + direct.stderr
    cases, _responses, _2xx, _3xx, _4xx, server_errors, not_problem = _row(direct.stdout, "directory")[1:8]
    assert int(cases) >= 10 and server_errors == "0" and not_problem == "0"
