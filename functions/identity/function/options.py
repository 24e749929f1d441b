"""The identity function's own settings: its ``IDENTITY_*`` variables (func.yaml ``run.envs``).

The platform's settings (bucket, keys to verify tokens, peers, the dev signing key the local cloud
gives this function) are :class:`lscloud.config.Settings`; these are what only this function reads,
through :func:`lscloud.config.section`. A bad value stops the start, naming the variable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lscloud import config
from lscloud.config import ConfigError


@dataclass(frozen=True)
class Options:
    max_mismatches: int = field(default=5, metadata={"min": 1})              # per caller and window (x2 per number)
    window_s: int = field(default=900, metadata={"min": 1})
    registry_url: str = ""                                                   # the national database (cluster)
    registry_token: str = field(default="", repr=False)
    registry_timeout_s: float = field(default=3.0, metadata={"min": 0.1})
    token_ttl_s: int = field(default=3600, metadata={"min": 60})             # dev tokens (local cloud)


def load(settings: config.Settings) -> Options:
    """The function's options from ``settings`` (its ``IDENTITY_*`` variables), checked against the platform's."""
    options = config.section(settings, Options)
    if options.token_ttl_s > settings.jwt_max_lifetime_s:
        raise ConfigError(f"IDENTITY_TOKEN_TTL_S ({options.token_ttl_s}) exceeds LSCLOUD_JWT_MAX_LIFETIME_S "
                          f"({settings.jwt_max_lifetime_s}): every function would refuse the tokens it issues")
    return options
