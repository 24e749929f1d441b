"""A running local cloud, as the tools that talk to it see it (`lscloud` commands, benchmarks).

`lscloud up` writes ``<state dir>/cloud.json`` (its pid, ports, endpoints); :func:`running_cloud`
reads it back and checks the process is alive, :func:`cloud_settings` turns it into the
:class:`~lscloud.config.Settings` that reach its servers.
"""

from __future__ import annotations

from pathlib import Path

from .. import config
from .pseudonym_key import for_cloud
from .servers import WeedMini
from .supervisor import process_alive, read_json


class NotRunning(RuntimeError):
    """No live `lscloud up` owns that state dir."""


def running_cloud(state_dir: Path) -> dict:
    """``cloud.json`` of the live `lscloud up` owning ``state_dir`` (NotRunning if none)."""
    cloud = read_json(Path(state_dir) / "cloud.json")
    if not cloud or not process_alive(cloud.get("pid"), cloud.get("create_time")) or cloud.get("state") == "stopped":
        raise NotRunning(f"no `lscloud up` is running with state dir {state_dir} (start one with `lscloud up`)")
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
