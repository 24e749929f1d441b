"""What the supervisor and the processes it watches (functions, the gateway) share: where the
package lives, which variable carries the dev signing key, and how a child process is recognised,
described and stopped — also when the supervisor itself was killed outright (kill -9, the OOM
killer): its children must not go on serving without it (no dispatcher, clock, relay or restarts,
while `lscloud status` says nothing runs).

Two ways, both needed. On Linux a child the supervisor starts asks the kernel for a SIGTERM when its
parent dies (:func:`die_with_parent`, :func:`parent_death_preexec`). And the supervisor starts a
:class:`Guard`, a small process that outlives it and, when it vanishes without saying goodbye, stops
what ``cloud.json`` records: that covers the children started where no ``preexec_fn`` is passed
(nats-server and weed mini in servers.py, the gateway in gateway_process.py) and every child where
there is no ``prctl`` (macOS).

Run as ``python -m lscloud.local.processes guard STATE_DIR SUPERVISOR_PID`` it is that guard.
"""

from __future__ import annotations

import ctypes
import json
import os
import signal
import subprocess
import sys
import threading
import time
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


def stop_recorded(records: list[dict], grace_s: float) -> list[dict]:
    """Stop the processes ``records`` name (``cloud.json``'s ``processes``) that still run, each
    with its group: SIGTERM, SIGKILL after ``grace_s`` (0: SIGKILL at once), then wait until they are
    gone (they hold ports and data dirs). Returns the records that were running."""
    import psutil

    found = []
    for record in records:
        if process_alive(record.get("pid"), record.get("create_time")):
            try:
                found.append((record, psutil.Process(record["pid"])))
            except psutil.Error:
                continue
    for record, _ in found:
        kill_group(record["pid"], signal.SIGTERM if grace_s > 0 else signal.SIGKILL)
    procs = [p for _, p in found]
    if grace_s > 0:
        _, procs = psutil.wait_procs(procs, timeout=grace_s)
        for p in procs:
            kill_group(p.pid, signal.SIGKILL)
    psutil.wait_procs(procs, timeout=10)
    return [record for record, _ in found]


# -- dying with the supervisor -----------------------------------------------------------------------

_PR_SET_PDEATHSIG = 1


def _load_prctl():
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None


# looked up once, in the parent: a preexec_fn runs between fork and exec, no place to load a library
_prctl = _load_prctl()


def die_with_parent(parent_pid: int) -> bool:
    """Have the kernel send this process SIGTERM when its parent dies (Linux ``PR_SET_PDEATHSIG``);
    exits at once if ``parent_pid`` is no longer its parent (it died before the request was made,
    and the kernel will not tell). False where the kernel cannot: the :class:`Guard` stops it then."""
    if _prctl is None or _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
        return False
    if os.getppid() != parent_pid:
        os._exit(1)
    return True


def parent_death_preexec():
    """A ``preexec_fn`` that ties a :class:`subprocess.Popen` child to this process (Linux), or None.

    The kernel signals the child when the *thread* that forked it ends, not the process: only the
    main thread, which lives as long as the supervisor, may start such a child. From another thread
    (weed mini is started from one that ends once the store is up) this gives None, and the child is
    the guard's to stop."""
    if _prctl is None or threading.current_thread() is not threading.main_thread():
        return None
    parent = os.getpid()

    def preexec() -> None:
        # until exec resets it the supervisor's Python handler would only note the signal: lost
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        die_with_parent(parent)

    return preexec


GUARD_RELEASE = b"released\n"
GUARD_GRACE_S = 5.0


class Guard:
    """The supervisor's end of the guard: :meth:`start` it before any other child, :meth:`release`
    it once everything is stopped in order. The guard holds the read end of a pipe whose only write
    end is the supervisor's (not inherited: Popen closes it in every other child), so the end of the
    supervisor, however it ends, is an end of file there."""

    def __init__(self, state_dir: Path, env: dict[str, str], log_path: Path):
        self.state_dir, self.env, self.log_path = Path(state_dir), env, Path(log_path)
        self.proc: subprocess.Popen | None = None
        self.create_time: float | None = None
        self._w: int | None = None

    def start(self) -> "Guard":
        r, w = os.pipe()
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with open(self.log_path, "ab") as log:
                # its own session: a Ctrl-C is the supervisor's to handle, in order
                self.proc = subprocess.Popen([sys.executable, "-m", "lscloud.local.processes", "guard",
                                              str(self.state_dir), str(os.getpid())],
                                             env=self.env, stdin=r, stdout=log, stderr=subprocess.STDOUT,
                                             start_new_session=True, cwd=str(PACKAGE_ROOT))
        except BaseException:
            os.close(w)
            raise
        finally:
            os.close(r)
        self._w = w
        self.create_time = process_create_time(self.proc.pid)
        return self

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def release(self) -> None:
        """Everything is stopped: the guard leaves without touching anything."""
        if self._w is None:
            return
        try:
            os.write(self._w, GUARD_RELEASE)
        except OSError:
            pass
        os.close(self._w)
        self._w = None
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)


def guard(state_dir: Path, supervisor: int) -> int:
    """The guard's side: wait for the supervisor's end; unless it was released, stop every process
    ``cloud.json`` records for that supervisor."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    told = b""
    while chunk := os.read(0, 4096):
        told += chunk
    if GUARD_RELEASE in told:
        return 0
    try:
        cloud = json.loads((Path(state_dir) / "cloud.json").read_text())
    except (OSError, ValueError):
        return 0
    # another `lscloud up` may own the state dir by now: its children are not ours to stop
    if cloud.get("pid") != supervisor or cloud.get("state") == "stopped":
        return 0
    stopped = stop_recorded(cloud.get("processes") or [], GUARD_GRACE_S)
    print(f"{time.strftime('%Y-%m-%d %H:%M:%S')} lscloud guard: `lscloud up` (pid {supervisor}) died; stopped "
          f"{len(stopped)} process(es) it left: {', '.join(r.get('role', '?') for r in stopped)}", flush=True)
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["guard"] and len(sys.argv) == 4:
        sys.exit(guard(Path(sys.argv[2]), int(sys.argv[3])))
    sys.exit("usage: python -m lscloud.local.processes guard STATE_DIR SUPERVISOR_PID")
