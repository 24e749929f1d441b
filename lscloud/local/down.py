"""`lscloud down`: stop a running local cloud from another terminal or a script.

The supervisor of the state dir gets SIGTERM and stops everything in order, as on Ctrl-C. When it
is gone already (killed: the case `lscloud status` exits 3 for), what it started is stopped here in
its order: what serves first, nats-server and weed mini after. What is still running at the timeout
gets SIGKILL, the supervisor first (it would restart what is killed under it). A process is signalled
only while it is the very one recorded (its start time; a pidfd taken before the comparison), never a
process that reused its pid.
"""

from __future__ import annotations

import fcntl
import os
import signal
import sys
import time
from pathlib import Path

NOT_STOPPED = 2
"""The exit code when something could not be stopped (still running after SIGKILL)."""


class NothingRunning(Exception):
    """No process of the state dir's `lscloud up` runs (its stale state, if any, was marked stopped)."""


# how often it looks, and how long the kernel gets to free what SIGKILL hit (at once,
# unless a process is stuck in the disk)
POLL_S = 0.1
KILL_WAIT_S = 5.0
_SUPERVISOR = "lscloud up"


def _records(state_dir: Path) -> list[dict]:
    """Every process the state dir names: the supervisor (``up.pid``, written when it takes the dir,
    before ``cloud.json``; and ``cloud.json``'s pid), what it started (``cloud.json``'s processes)
    and its guard."""
    from .supervisor import read_json

    cloud = read_json(state_dir / "cloud.json") or {}
    owners = [read_json(state_dir / "up.pid") or {}, cloud]
    records = [{"role": _SUPERVISOR, "pid": o["pid"], "create_time": o.get("create_time")} for o in owners if o.get("pid")]
    records += [p for p in cloud.get("processes") or [] if p.get("pid")]
    if (cloud.get("guard") or {}).get("pid"):
        records.append({**cloud["guard"], "role": "guard"})
    return records


def _running(state_dir: Path) -> list[dict]:
    """The records of :func:`_records` that still run as the very process recorded. One without
    a start time (recorded before it was read) is left out: nothing tells it from a reused pid."""
    from .processes import process_alive

    found: dict[int, dict] = {}
    for r in _records(state_dir):
        if r["pid"] not in found and r.get("create_time") is not None and process_alive(r["pid"], r["create_time"]):
            found[r["pid"]] = r
    return list(found.values())


def _signal(record: dict, sig: int) -> bool:
    """``sig`` to the process ``record`` names, and to its group when it leads one (each child of the
    supervisor has its own: a function's own children go too), only if it is still that process: the
    pidfd is taken before the start time is compared, so a pid reused meanwhile is never signalled (nor
    a group, whose id no other process gets while its leader, just checked, lives)."""
    from .processes import process_alive

    pid = record["pid"]
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):  # not Linux, or gone already
        fd = None
    try:
        if not process_alive(pid, record.get("create_time")):
            return False
        if record["role"] != _SUPERVISOR and os.getpgid(pid) == pid:
            os.killpg(pid, sig)
        elif fd is not None:
            signal.pidfd_send_signal(fd, sig)
        else:
            os.kill(pid, sig)
        return True
    except (ProcessLookupError, PermissionError):
        return False
    finally:
        if fd is not None:
            os.close(fd)


def _mark_stopped(state_dir: Path) -> bool:
    """``cloud.json`` says "stopped" when its supervisor could not say so itself (killed, or dead before):
    under the state dir's lock, so never over a `lscloud up` that has just taken the dir. True if changed."""
    from .supervisor import read_json, write_json

    if not (state_dir / "cloud.json").exists():
        return False
    with open(state_dir / "up.pid", "a+") as lock:
        try:
            fcntl.flock(lock.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        cloud = read_json(state_dir / "cloud.json")
        if not cloud or cloud.get("state") == "stopped":
            return False
        write_json(state_dir / "cloud.json", {**cloud, "state": "stopped"})
        lock.truncate(0)  # as the supervisor leaves it
        return True


def _named(records: list[dict]) -> str:
    return ", ".join(f"{r['role']} (pid {r['pid']})" for r in records)


def down(state_dir: Path, timeout: float) -> int:
    """Stop the `lscloud up` of ``state_dir`` (see the module docstring); the exit code of `lscloud down`.
    :class:`NothingRunning` when nothing of it runs."""
    state_dir = Path(state_dir)
    running = _running(state_dir)
    if not running:
        cleaned = _mark_stopped(state_dir)
        note = " (its stale state was marked stopped / trạng thái cũ đã được đánh dấu là đã dừng)" if cleaned else ""
        raise NothingRunning(f"no `lscloud up` is running with state dir {state_dir}: nothing to stop{note}\n"
                       f"không có `lscloud up` nào đang chạy với thư mục trạng thái {state_dir}: không có gì để dừng")
    seen = {r["pid"]: r for r in running}
    supervisors = [r for r in running if r["role"] == _SUPERVISOR]
    for r in supervisors:
        # its own shutdown, as on Ctrl-C: clock, gateway, relay, dispatcher, functions, servers, guard
        _signal(r, signal.SIGTERM)
    if not supervisors:
        print(f"`lscloud up` is gone but {len(running)} process(es) it started still run: stopping them\n"
              f"`lscloud up` đã dừng nhưng {len(running)} tiến trình nó khởi động vẫn chạy: đang dừng chúng", flush=True)
    termed: set[int] = set()
    deadline = time.monotonic() + max(0.0, timeout)
    while running and time.monotonic() < deadline:
        if not any(r["role"] == _SUPERVISOR for r in running):
            # nobody stops them in order: those that serve first, nats-server and weed mini once they are
            # gone (as the supervisor does); the guard, if alive, is doing the same and leaves by itself
            serving = [r for r in running if r["role"] not in ("nats", "weed", "guard")]
            for r in serving or [r for r in running if r["role"] in ("nats", "weed")]:
                if r["pid"] not in termed:
                    termed.add(r["pid"])
                    _signal(r, signal.SIGTERM)
        time.sleep(POLL_S)
        running = _running(state_dir)
        seen.update((r["pid"], r) for r in running if r["pid"] not in seen)  # restarted meanwhile
    killed = []
    if running:
        # the supervisor first: it would restart what is killed under it
        for r in sorted(running, key=lambda r: r["role"] != _SUPERVISOR):
            if _signal(r, signal.SIGKILL):
                killed.append(r)
        end = time.monotonic() + KILL_WAIT_S
        while (running := _running(state_dir)) and time.monotonic() < end:
            time.sleep(POLL_S)
    if running:
        # cloud.json keeps naming them: `status` and the next `up` still see them
        print(f"lscloud: could not stop {_named(running)} (still running after SIGKILL)\n"
              f"lscloud: không dừng được {_named(running)} (vẫn chạy sau SIGKILL)", file=sys.stderr)
        return NOT_STOPPED
    _mark_stopped(state_dir)
    stopped = [r for r in seen.values() if r["pid"] not in {k["pid"] for k in killed}]
    if stopped:
        print(f"stopped / đã dừng: {_named(stopped)}")
    if killed:
        print(f"killed (SIGKILL: still running {timeout:g}s after the stop began) / đã buộc dừng (SIGKILL: "
              f"vẫn chạy {timeout:g}s sau khi bắt đầu dừng): {_named(killed)}")
    print(f"lscloud down: state dir {state_dir} — nothing of it runs any more / không còn tiến trình nào chạy")
    return 0
