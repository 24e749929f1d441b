"""A running local cloud, as the tools that talk to it see it (`lscloud` commands, benchmarks).

`lscloud up` writes ``<state dir>/cloud.json`` (its pid, ports, endpoints); :func:`running_cloud`
reads it back and checks the process is alive (and says so when it is dead but what it started
still serves: :class:`SupervisorDead`), :func:`cloud_settings` turns it into the
:class:`~lscloud.config.Settings` that reach its servers.
"""

from __future__ import annotations

from pathlib import Path

from .. import config
from .pseudonym_key import for_cloud
from .servers import WeedMini
from .processes import process_alive
from .supervisor import read_json


class NotRunning(RuntimeError):
    """No live `lscloud up` owns that state dir."""


class SupervisorDead(NotRunning):
    """The `lscloud up` that owned the state dir died, but processes it started still serve: the
    gateway answers while nothing delivers events, ticks the clock or restarts what crashes."""

    def __init__(self, cloud: dict, serving: list[dict]):
        self.cloud, self.serving = cloud, serving
        pids = [str(p["pid"]) for p in serving]
        super().__init__(
            f"supervisor dead: {len(serving)} processes still serving ({', '.join(p.get('role', '?') for p in serving)}; "
            f"pids {', '.join(pids)}) after `lscloud up` (pid {cloud.get('pid')}) died, with no event delivery, clock "
            f"or restarts; run `lscloud up` (it stops them) or `lscloud down`\n"
            f"tiến trình giám sát đã chết: {len(serving)} tiến trình vẫn đang phục vụ sau khi `lscloud up` "
            f"(pid {cloud.get('pid')}) dừng, không còn chuyển sự kiện, đồng hồ hay khởi động lại; chạy `lscloud up` "
            f"(nó sẽ dừng chúng) hoặc `lscloud down`")


def running_cloud(state_dir: Path) -> dict:
    """``cloud.json`` of the live `lscloud up` owning ``state_dir``: NotRunning if none,
    SupervisorDead if none but what the last one started still runs."""
    cloud = read_json(Path(state_dir) / "cloud.json")
    none = NotRunning(f"no `lscloud up` is running with state dir {state_dir} (start one with `lscloud up`)")
    if not cloud or cloud.get("state") == "stopped":
        raise none
    if not process_alive(cloud.get("pid"), cloud.get("create_time")):
        serving = [p for p in cloud.get("processes") or [] if process_alive(p.get("pid"), p.get("create_time"))]
        raise SupervisorDead(cloud, serving) if serving else none
    return cloud


def cloud_settings(cloud: dict) -> config.Settings:
    """Settings reaching a running cloud's servers (secrets: the local defaults, or the environment's
    for an external S3 endpoint)."""
    base = config.load()
    secret = base.s3_secret_key if cloud["s3"].get("external") else WeedMini.__dataclass_fields__["secret_key"].default
    return base.replace(s3_endpoint=cloud["s3"]["endpoint"], s3_access_key=cloud["s3"]["access_key"],
                        s3_secret_key=secret, bucket=cloud["s3"]["bucket"],
                        nats_url=cloud["nats"]["url"], stream=cloud["stream"], state_dir=cloud["state_dir"],
                        trace_file=cloud.get("trace_file") or "", pseudonym_key=for_cloud(cloud["state_dir"], base))
