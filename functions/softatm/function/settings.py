"""The soft ATM's own settings: ``SOFTATM_*`` variables, read and checked by :mod:`lscloud.config`.

``create_app`` reads them once, so a bad value stops the Service at start. Domain modules ask
:func:`current` (the section of the installed runtime's settings) instead of carrying them
through every call.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from lscloud import config, runtime

SERVICE = "softatm"


@dataclass(frozen=True)
class Settings:
    """``SOFTATM_EXPIRY_S``: seconds a bank has to reserve (withdrawal) or confirm (deposit);
    ``SOFTATM_RESERVED_EXPIRY_S``: seconds a teller has, once the bank reserved a withdrawal, to
    commit or abort it before the system aborts it (``expired``) and the bank releases the funds;
    ``SOFTATM_ADMIT_WINDOW_S``: the admission fence (a run never holds cash after it);
    ``SOFTATM_FLOAT_LOW_VND``: below this a point's cash raises ``float.low``;
    ``SOFTATM_KEK``: the Fernet key the banks' HMAC secrets are encrypted under (a cluster secret;
    locally a key under the state dir); ``SOFTATM_SWEEP_S``: the background sweep's period (0: off)."""

    expiry_s: int = field(default=300, metadata={"min": 1})
    reserved_expiry_s: int = field(default=900, metadata={"min": 1})
    admit_window_s: float = field(default=20.0, metadata={"min": 0.1})
    float_low_vnd: int = field(default=10_000_000, metadata={"min": 0})
    kek: str = field(default="", repr=False)
    sweep_s: float = field(default=0.0, metadata={"min": 0})

    @classmethod
    def of(cls, platform: config.Settings) -> "Settings":
        """The section for ``platform`` (a process that is not the soft ATM, e.g. the simulated
        bank seeding its registration, gets the defaults)."""
        return config.section(platform, cls, service=SERVICE)


def current() -> Settings:
    """The section of the installed runtime's settings (parsed once per runtime: :func:`lscloud.config.section`)."""
    return Settings.of(runtime.current().settings)
