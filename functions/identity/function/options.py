"""The identity function's own settings, from its environment (func.yaml ``run.envs``).

The platform's settings (bucket, keys to verify tokens, peers) are :class:`lscloud.config.Settings`;
these are what only this function reads. A bad value stops the start, naming the variable.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Mapping

from lscloud.config import ConfigError

SIGNING_KEY_ENV = "LSCLOUD_JWT_SIGNING_KEY_FILE"  # given by the local supervisor to this function only


@dataclass(frozen=True)
class Options:
    max_mismatches: int = 5
    window_s: int = 900
    registry_url: str = ""
    registry_token: str = field(default="", repr=False)
    registry_timeout_s: float = 3.0
    signing_key_file: str = ""
    token_ttl_s: int = 3600

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> "Options":
        env = os.environ if environ is None else environ

        def number(name: str, default, cast, minimum):
            raw = (env.get(name) or "").strip()
            if not raw:
                return default
            try:
                value = cast(raw)
            except ValueError:
                raise ConfigError(f"{name} must be a number, got {raw!r}") from None
            if value < minimum:
                raise ConfigError(f"{name} must be at least {minimum}, got {raw!r}")
            return value

        return cls(
            max_mismatches=number("IDENTITY_MAX_MISMATCHES", cls.max_mismatches, int, 1),
            window_s=number("IDENTITY_WINDOW_S", cls.window_s, int, 1),
            registry_url=(env.get("IDENTITY_REGISTRY_URL") or "").strip(),
            registry_token=(env.get("IDENTITY_REGISTRY_TOKEN") or "").strip(),
            registry_timeout_s=number("IDENTITY_REGISTRY_TIMEOUT_S", cls.registry_timeout_s, float, 0.1),
            signing_key_file=(env.get(SIGNING_KEY_ENV) or "").strip(),
            token_ttl_s=number("IDENTITY_TOKEN_TTL_S", cls.token_ttl_s, int, 60),
        )
