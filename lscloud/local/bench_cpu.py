"""Where a benchmark's time goes: CPU seconds spent by each process of the local cloud (and by the
benchmark's own client) while a target ran, so that `lscloud bench` prints, next to a path's rate,
how many milliseconds of CPU one operation cost in the object store, NATS, each function, the
gateway and the supervisor (dispatcher, clock).

On the two-core machine every path is CPU-bound at the benchmark's concurrency: a path's rate is
about the cores over its CPU per operation, so this table is the profile that says which process
to make cheaper (issue 11). Processes are named by the roles `lscloud up` records in ``cloud.json``
(``processes``); a child process counts for its parent's role.
"""

from __future__ import annotations

import os
from typing import Any, Mapping

CLIENT = "bench client"
SUPERVISOR = "lscloud up (dispatcher, clock)"

# cloud.json's roles, as the table names them
_ROLE_NAMES = {"nats": "nats-server", "weed": "weed (S3)", "gateway": "gateway", "forkserver": "fork server"}


def role_name(role: str) -> str:
    """``function:softatm`` → ``softatm``; the servers by what they are."""
    return role.split(":", 1)[1] if role.startswith("function:") else _ROLE_NAMES.get(role, role)


class CpuMeter:
    """Samples the CPU times of a running local cloud's processes (its ``cloud.json``) and of this process."""

    def __init__(self, cloud: Mapping[str, Any]):
        import psutil

        self._psutil = psutil
        roles: dict[int, str] = {os.getpid(): CLIENT}
        if cloud.get("pid"):
            roles[int(cloud["pid"])] = SUPERVISOR
        for p in cloud.get("processes") or ():
            if p.get("pid"):
                roles[int(p["pid"])] = role_name(str(p.get("role", "?")))
        self.roles = roles

    def sample(self) -> dict[int, tuple[str, float]]:
        """pid → (role, CPU seconds so far) of every process of the cloud still alive, a server's
        or a function's children under its role."""
        out: dict[int, tuple[str, float]] = {}
        for pid, role in self.roles.items():
            try:
                proc = self._psutil.Process(pid)
                # the client's and the supervisor's children are the cloud itself: only their own CPU
                procs = [proc] + (proc.children(recursive=True) if role not in (CLIENT, SUPERVISOR) else [])
            except self._psutil.Error:
                continue
            for p in procs:
                if p.pid in out or (p.pid != pid and p.pid in self.roles):
                    continue
                try:
                    t = p.cpu_times()
                except self._psutil.Error:
                    continue
                out[p.pid] = (role, t.user + t.system)
        return out

    @staticmethod
    def spent(before: Mapping[int, tuple[str, float]], after: Mapping[int, tuple[str, float]]) -> dict[str, float]:
        """CPU seconds per role between two samples. A process started in between counts from zero;
        one that ended in between is lost (its last times cannot be read)."""
        out: dict[str, float] = {}
        for pid, (role, cpu) in after.items():
            start = before.get(pid)
            used = cpu - (start[1] if start and start[0] == role else 0.0)
            out[role] = out.get(role, 0.0) + max(0.0, used)
        return out


def per_op_ms(cpu_s: Mapping[str, float], ops: int) -> dict[str, float]:
    """Milliseconds of CPU per operation by role, most first, with their ``total`` last (the
    benchmark's own client apart: it is the load, not the path)."""
    if ops <= 0 or not cpu_s:
        return {}
    ms = {role: 1000.0 * s / ops for role, s in sorted(cpu_s.items(), key=lambda kv: -kv[1])}
    out = {role: round(v, 2) for role, v in ms.items()}
    out["total"] = round(sum(v for role, v in ms.items() if role != CLIENT), 2)
    return out


def biggest(ms: Mapping[str, float], n: int) -> str:
    """``weed (S3) 21.4, softatm 17.8``: the ``n`` processes of a :func:`per_op_ms` that spend most."""
    # per_op_ms lists the processes most first
    return ", ".join([f"{role} {v:.1f}" for role, v in ms.items() if role not in ("total", CLIENT)][:n])


def format_table(columns: list[tuple[str, Mapping[str, float]]]) -> list[str]:
    """Lines of a table: a row per process, a column per target (its :func:`per_op_ms`)."""
    columns = [(name, ms) for name, ms in columns if ms]
    if not columns:
        return []
    roles: list[str] = []
    for _, ms in columns:   # a process that spent nothing on any target (an idle fork server) is left out
        roles += [r for r in ms if r not in roles and r not in ("total", CLIENT)
                  and any(m.get(r, 0) >= 0.005 for _, m in columns)]
    roles += [r for r in ("total", CLIENT) if any(r in ms for _, ms in columns)]
    width = max(len(r) for r in roles + ["process"])
    heads = [name for name, _ in columns]
    lines = ["  ".join([" " * width] + [f"{h[:28]:>28}" for h in heads]),
             "  ".join(["process".ljust(width)] + [f"{'ms CPU per operation':>28}" for _ in heads])]
    for r in roles:
        cells = [f"{ms[r]:28.2f}" if r in ms else f"{'-':>28}" for _, ms in columns]
        lines.append("  ".join([r.ljust(width)] + cells))
    return lines
