"""The documents function's own settings (``DOCUMENTS_*``, read through :func:`lscloud.config.section`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from lscloud import config


@dataclass(frozen=True)
class Settings:
    """``DOCUMENTS_PADES_LEVEL``: ``B-LTA`` (a document timestamp over each signature, the default) or
    ``B-LT``; ``DOCUMENTS_PUBLIC_URL``: this function's public address, named in certificates as
    where their CRLs are (empty: the platform's, ``LSCLOUD_PUBLIC_URL_TEMPLATE``);
    ``DOCUMENTS_KEY_SECRET``: what the dev custody's key wrap is derived from
    (empty: the platform's pseudonym key); ``DOCUMENTS_CUSTODY``: ``dev`` (the only one built);
    ``DOCUMENTS_BATCH_MAX``: documents in one batch approval; ``DOCUMENTS_VERIFY_LIMIT``
    public verifications (``POST /v1/verifications``) per caller per ``DOCUMENTS_VERIFY_WINDOW_S``:
    anyone may send a PDF, and each costs a worker up to its bounds (:mod:`.pdf_worker`); a person
    checking the documents they were sent needs a few."""

    pades_level: str = "B-LTA"
    public_url: str = ""
    key_secret: str = field(default="", repr=False)
    custody: str = "dev"
    batch_max: int = field(default=20, metadata={"min": 1, "max": 500})   # one request: stay inside a 60 s gateway timeout
    verify_limit: int = field(default=30, metadata={"min": 1})
    verify_window_s: int = field(default=3_600, metadata={"min": 1, "max": 86_400})


def settings_of(platform: config.Settings) -> Settings:
    s = config.section(platform, Settings)
    if s.pades_level not in ("B-LT", "B-LTA"):
        raise config.ConfigError(f"DOCUMENTS_PADES_LEVEL must be B-LT or B-LTA, got {s.pades_level!r}")
    if s.custody != "dev":
        raise config.ConfigError("DOCUMENTS_CUSTODY: only the development custody (dev) is built; an HSM "
                                 "(PKCS#11) or remote signing custody is not yet")
    return s
