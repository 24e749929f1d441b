"""What the supervisor and the processes it watches (functions, the gateway) share: where the
package lives, which variable carries the dev signing key, and how a child process is recognised,
described and stopped."""

from __future__ import annotations

import os
import signal
from pathlib import Path

HEALTHY_RESETS_BACKOFF_S = 30.0   # ready this long after a crash: its crash count (and back-off) starts again
PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding the lscloud package
SIGNING_KEY_ENV = "LSCLOUD_JWT_SIGNING_KEY_FILE"


def package_pythonpath(env: dict[str, str]) -> str:
    """``PYTHONPATH`` for a child of the supervisor: the folder holding lscloud first, then ``env``'s own."""
    return os.pathsep.join([str(PACKAGE_ROOT), *filter(None, [env.get("PYTHONPATH")])])


def process_alive(pid: int | None, create_time: float | None) -> bool:
    """True if ``pid`` runs and is the same process that was recorded (not a reused pid)."""
    if not pid:
        return False
    import psutil

    try:
        p = psutil.Process(pid)
        if create_time is not None and abs(p.create_time() - create_time) > 0.05:
            return False
        return p.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def process_create_time(pid: int) -> float | None:
    """When ``pid`` was started (psutil's clock), or None if it is gone: with the pid, what tells a
    process from a later one that reused its pid."""
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def exit_description(code: int) -> str:
    if code < 0:
        try:
            return f"code {code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return f"code {code}"
    return f"code {code}"


def kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass
