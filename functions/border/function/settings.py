"""The border function's own settings, ``BORDER_*`` variables read and checked by
:func:`lscloud.config.section` (a bad value stops the start, naming the variable)."""

from __future__ import annotations

from dataclasses import dataclass, field

from lscloud import config

from .devices import DEFAULT_TOLERANCE
from .queue import DEFAULT_CALL_MINUTES


@dataclass(frozen=True)
class Settings:
    """``BORDER_CALL_MINUTES``: how long a called truck has to reach the gate (0: a call is missed at
    once); ``BORDER_WEIGHT_TOLERANCE``: how far a weighbridge reading may stray from the declared
    gross weight (0.05 = 5 %)."""

    call_minutes: int = field(default=DEFAULT_CALL_MINUTES, metadata={"min": 0, "max": 24 * 60})
    weight_tolerance: float = field(default=DEFAULT_TOLERANCE, metadata={"min": 0.0, "max": 1.0})


def of(platform: config.Settings) -> Settings:
    """The border section of the platform's settings."""
    return config.section(platform, Settings)
