"""The national population database, behind one small interface.

:class:`PopulationRegistry` is what the verification needs: the record of one citizen by
CCCD number, or ``None``. The record never leaves this function: the API answers only
match / mismatch for the fields the caller sent (see :mod:`.verification`).

Two implementations:

- :class:`StoreRegistry` (the local cloud, tests): citizens seeded into the object store by
  ``seed.py`` — a few hundred generated Lạng Sơn citizens plus the fixed test citizens in
  :data:`.citizens.KNOWN` (documented in the function's README);
- :class:`HttpRegistry` (the cluster): ``GET {IDENTITY_REGISTRY_URL}/citizens/{id_number}``
  with ``Authorization: Bearer {IDENTITY_REGISTRY_TOKEN}``, a timeout, and errors mapped to
  :class:`RegistryUnavailable` (retry later) or :class:`RegistryError` (misconfigured).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date
from typing import Protocol, runtime_checkable

from lscloud import http_client
from lscloud.config import ConfigError


@dataclass(frozen=True)
class Citizen:
    """What the registry holds of one citizen (as much as verification needs)."""

    id_number: str
    full_name: str
    date_of_birth: date
    sex: str  # "male" | "female"

    def to_dict(self) -> dict:
        return {"id_number": self.id_number, "full_name": self.full_name,
                "date_of_birth": self.date_of_birth.isoformat(), "sex": self.sex}

    @classmethod
    def from_dict(cls, data: dict) -> "Citizen":
        return cls(str(data["id_number"]), str(data["full_name"]), date.fromisoformat(str(data["date_of_birth"])),
                   str(data.get("sex", "")))


class RegistryError(RuntimeError):
    """The registry answered something we cannot use (refused credentials, malformed answer)."""


class RegistryUnavailable(RegistryError):
    """The registry did not answer in time or answered 5xx/429: retry later."""


@runtime_checkable
class PopulationRegistry(Protocol):
    def lookup(self, id_number: str) -> Citizen | None:
        """The citizen with this (well-formed) CCCD number, or None if the registry has none."""


_ID_RE = re.compile(r"\d{12}")


def _checked(id_number: str) -> str:
    if not _ID_RE.fullmatch(id_number or ""):
        raise ValueError("id_number must be 12 digits")  # callers parse first; keys never come raw
    return id_number


class StoreRegistry:
    """Citizens seeded in the object store (one document per CCCD, :class:`.models.RegisteredCitizen`)."""

    def lookup(self, id_number: str) -> Citizen | None:
        from .models import RegisteredCitizen

        try:
            item = RegisteredCitizen.get(_checked(id_number))
        except RegisteredCitizen.DoesNotExist:
            return None
        return Citizen.from_dict(item.data)


class HttpRegistry:
    """The national database's verification endpoint (or a provincial gateway in front of it)."""

    def __init__(self, base_url: str, token: str, *, timeout_s: float = 3.0):
        if not re.match(r"^https?://[^/\s]+", base_url or ""):
            raise ValueError(f"IDENTITY_REGISTRY_URL must be an http(s) URL, got {base_url!r}")
        self.base_url = base_url.rstrip("/")
        self._client = http_client.Client(timeout_s=timeout_s, deadline_s=2 * timeout_s, headers={
            "Accept": "application/json", "Authorization": f"Bearer {token}", "User-Agent": "lscloud-identity"})

    def lookup(self, id_number: str) -> Citizen | None:
        url = f"{self.base_url}/citizens/{_checked(id_number)}"
        try:
            # the span's URL is the template: the path holds the citizen's number
            resp = self._client.get(url, url_template="/citizens/{id_number}")
        except http_client.NoAnswer as exc:
            if exc.timed_out:
                raise RegistryUnavailable("the population registry did not answer in time") from None
            cause = exc.__cause__ or exc
            raise RegistryUnavailable(f"the population registry is unreachable ({cause.__class__.__name__})") from None
        if resp.status_code == 404:
            return None
        if resp.status_code in (401, 403):
            # our credentials are wrong or revoked: an operator must act, retrying will not help
            raise RegistryError(f"the population registry refused our credentials ({resp.status_code})")
        if resp.status_code == 429 or resp.status_code >= 500:
            raise RegistryUnavailable(f"the population registry answered {resp.status_code}")
        if resp.status_code != 200:
            raise RegistryError(f"the population registry answered {resp.status_code}")
        try:
            data = resp.json()
            citizen = Citizen.from_dict(data)
        except (ValueError, KeyError, TypeError):
            raise RegistryError("the population registry answered a malformed record") from None
        if citizen.id_number != id_number:
            raise RegistryError("the population registry answered a record for another number")
        return citizen


def registry_for(settings, options) -> PopulationRegistry:
    """The national database's endpoint when configured (``IDENTITY_REGISTRY_URL``); the seeded store
    registry locally. The cluster has no local registry: there the URL is required."""
    if options.registry_url:
        return HttpRegistry(options.registry_url, options.registry_token, timeout_s=options.registry_timeout_s)
    if settings.env == "cluster":
        raise ConfigError("IDENTITY_REGISTRY_URL is required when LSCLOUD_ENV=cluster "
                          "(the national population database's verification endpoint)")
    return StoreRegistry()
