"""Running `lscloud up` from a test: a subprocess on free ports with its own state dir."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[2]
START_TIMEOUT_S = 150


def wait_for(predicate, timeout: float, what: str, proc=None, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log and log.exists() else ""
    pytest.fail(f"timed out waiting for {what}\n--- lscloud up output ---\n{tail}")


class Cloud:
    """One `lscloud up` subprocess and what it wrote."""

    def __init__(self, state_dir: Path, functions_dirs: list[Path], port: int, log: Path, only: list[str] = ()):
        self.state_dir, self.port, self.log = state_dir, port, log
        argv = [sys.executable, "-m", "lscloud.cli", "--state-dir", str(state_dir), "up", "--port", str(port)]
        for d in functions_dirs:
            argv += ["--functions-dir", str(d)]
        for name in only:
            argv += ["--only", name]
        self.argv = argv
        with open(log, "ab") as out:
            self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                         env={**os.environ, "PYTHONUNBUFFERED": "1", "LSCLOUD_E2E_PROBE_LABEL": "e2e"},
                                         start_new_session=True)
        self.gateway = f"http://127.0.0.1:{port}"

    def state(self) -> dict:
        try:
            return json.loads((self.state_dir / "cloud.json").read_text())
        except (OSError, ValueError):
            return {}

    def wait_ready(self) -> dict:
        return wait_for(lambda: (s := self.state()).get("state") == "ready" and s.get("pid") == self.proc.pid and s,
                        START_TIMEOUT_S, "the cloud to be ready", self.proc, self.log)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "lscloud.cli", "--state-dir", str(self.state_dir), *args],
                              cwd=ROOT, capture_output=True, text=True, timeout=60)

    def terminate(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(60)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)


def process_tree(pid: int) -> list[psutil.Process]:
    p = psutil.Process(pid)
    return [p, *p.children(recursive=True)]
