"""The environment function's own settings (``ENVIRONMENT_*``, read and checked by lscloud.config)."""

from __future__ import annotations

from dataclasses import dataclass, field

from lscloud import config


@dataclass(frozen=True)
class Settings:
    # an alert is raised at this hourly VN_AQI (101: the first "poor" value of Table 1) …
    alert_aqi: int = field(default=101, metadata={"min": 51, "max": 500})
    # … and cleared only once the AQI is this far below it …
    alert_margin: int = field(default=10, metadata={"min": 0, "max": 100})
    # … for this many consecutive hours (no storm from a sensor flapping around the threshold)
    alert_clear_hours: int = field(default=2, metadata={"min": 1, "max": 24})
    # a noise alert clears once LAeq is this far under the QCVN 26:2010 limit
    noise_margin_db: float = field(default=3.0, metadata={"min": 0, "max": 20})
    # readings older than this are refused (late ones within it land in their own hour)
    max_late_days: int = field(default=30, metadata={"min": 1, "max": 366})
    # readings more than this ahead of the clock are refused (a device whose clock runs fast)
    max_ahead_s: int = field(default=300, metadata={"min": 0, "max": 3600})


def of(platform: config.Settings) -> Settings:
    return config.section(platform, Settings, service="environment")
