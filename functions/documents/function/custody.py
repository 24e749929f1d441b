"""Who holds the signing keys: the key custody behind one small interface.

:class:`KeyCustody` gives a pyHanko signer for an officer (their personal certificate) or for an
agency (its seal), the trust anchors, the CRLs and the timestamp authority. :class:`DevCustody`
is what ``lscloud up`` runs: a development PKI made on first use (root → signing CA → personal and
agency certificates, and a timestamp authority), kept in the store with every private key
encrypted under a wrap key derived from the function's secret (``DOCUMENTS_KEY_SECRET``, or the
platform's pseudonym key) — never in a log, a span or an object key, and a signer's record is
filed under the keyed pseudonym of their ``sub``. In the cluster the same interface is meant to
be met by an HSM (pyHanko's ``PKCS11Signer``) or a remote signing service; that custody is not
built yet and a cluster start with ``DOCUMENTS_CUSTODY`` other than ``dev`` is refused.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.sign import signers
from pyhanko.sign.timestamps import TimeStamper

from lscloud import pseudonyms
from lscloud.statemachine import Actor, iso, now
from lscloud.store import ConditionalCheckFailed, DoesNotExist

from . import pki, signing
from .models import PkiState, SigningIdentity

PKI_NAME = "dev"


def wrap_key(secret: str) -> bytes:
    """The key every stored private key is encrypted under (PKCS#8), derived from a secret."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"lscloud-documents",
                info=b"dev key custody: private key wrap").derive(secret.encode())


@dataclass(frozen=True)
class Identity:
    """A signer as the appearance and the report name them (never their ``sub``)."""

    name: str
    title: str | None
    agency: str | None
    certificate: dict


class KeyCustody(Protocol):
    def trust(self) -> signing.Trust: ...
    def timestamper(self) -> TimeStamper: ...
    def person(self, actor: Actor, name: str, title: str | None) -> tuple[signers.Signer, Identity]: ...
    def seal(self, agency: str, agency_name: str) -> tuple[signers.Signer, Identity]: ...


class DevCustody:
    """The development PKI, kept in the store (see the module docstring)."""

    def __init__(self, secret: str, public_url: str):
        self._wrap = wrap_key(secret)
        self.public_url = public_url.rstrip("/")
        self._lock = threading.Lock()
        self._pki: tuple[pki.Issued, pki.Issued, pki.Issued] | None = None
        self._tsa: TimeStamper | None = None
        self._signers: dict[str, tuple[str, signers.Signer, Identity]] = {}

    # -- the PKI ------------------------------------------------------------------------------------

    def crl_url(self, name: str) -> str:
        return f"{self.public_url}/v1/trust/crl/{name}.crl"

    def _load_pki(self) -> tuple[pki.Issued, pki.Issued, pki.Issued]:
        with self._lock:
            if self._pki is None:
                try:
                    data = PkiState.get(PKI_NAME).data
                except DoesNotExist:
                    root = pki.make_root()
                    ca = pki.make_signing_ca(root, self.crl_url("root"))
                    tsa = pki.make_tsa(ca, self.crl_url("signing-ca"))
                    data = {k: {"cert": v.cert_pem(), "key": v.key_pem(self._wrap)}
                            for k, v in (("root", root), ("ca", ca), ("tsa", tsa))}
                    data["created_at"] = iso(now())
                    try:
                        PkiState(PKI_NAME, data=data).save()
                    except ConditionalCheckFailed:   # another replica made it first: everyone uses that one
                        data = PkiState.get(PKI_NAME).data
                self._pki = tuple(pki.Issued.load(data[k]["cert"], data[k]["key"], self._wrap)
                                  for k in ("root", "ca", "tsa"))
            return self._pki

    def root_pem(self) -> str:
        return self._load_pki()[0].cert_pem()

    def crl_der(self, name: str) -> bytes | None:
        root, ca, _ = self._load_pki()
        issuer = {"root": root, "signing-ca": ca}.get(name)
        return pki.crl(issuer).public_bytes(Encoding.DER) if issuer else None

    def trust(self) -> signing.Trust:
        root, ca, _ = self._load_pki()
        return signing.Trust(root.cert, (ca.cert,), (pki.crl(root), pki.crl(ca)))

    def timestamper(self) -> TimeStamper:
        if self._tsa is None:   # made once (two racing requests may both make one: harmless)
            self._tsa = signing.dev_timestamper(self._load_pki()[2], self.trust())
        return self._tsa

    # -- signers ------------------------------------------------------------------------------------

    def _identity(self, holder: str, profile: dict, issue) -> tuple[signers.Signer, Identity]:
        """The holder's signer, issuing (or re-issuing, when the profile changed) its certificate."""
        cached = self._signers.get(holder)
        if cached and cached[0] == repr(sorted(profile.items())):
            return cached[1], cached[2]
        _, ca, _ = self._load_pki()
        for _ in range(5):
            try:
                item = SigningIdentity.get(holder)
            except DoesNotExist:
                item = None
            if item is not None and item.data["profile"] == profile:
                issued = pki.Issued.load(item.data["cert"], item.data["key"], self._wrap)
                break
            issued = issue(ca)
            data = {"profile": profile, "cert": issued.cert_pem(), "key": issued.key_pem(self._wrap),
                    "issued_at": iso(now())}
            if item is None:
                item = SigningIdentity(holder, data=data)
            else:
                item.data = data
            try:
                item.save()
                break
            except ConditionalCheckFailed:
                continue
        identity = Identity(profile["name"], profile.get("title"), profile.get("agency"),
                            pki.subject_summary(issued.cert))
        signer = signing.simple_signer(issued, self.trust())
        self._signers[holder] = (repr(sorted(profile.items())), signer, identity)
        return signer, identity

    def person(self, actor: Actor, name: str, title: str | None) -> tuple[signers.Signer, Identity]:
        holder = "p-" + pseudonyms.pseudonym("documents-signer", actor.sub)
        profile = {"name": name, "title": title, "agency": actor.agency, "unit": actor.unit}
        return self._identity(holder, profile, lambda ca: pki.issue_person(
            ca, self.crl_url("signing-ca"), name=name, title=title, agency=actor.agency, unit=actor.unit))

    def seal(self, agency: str, agency_name: str) -> tuple[signers.Signer, Identity]:
        profile = {"name": agency_name, "title": None, "agency": agency, "seal": True}
        return self._identity("a-" + agency, profile, lambda ca: pki.issue_seal(
            ca, self.crl_url("signing-ca"), agency=agency, agency_name=agency_name))
