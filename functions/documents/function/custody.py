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

import hashlib
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.serialization import Encoding
from pyhanko.sign import signers
from pyhanko.sign.timestamps import TimeStamper

from lscloud import pseudonyms
from lscloud.lru import LRU
from lscloud.statemachine import Actor, iso, now
from lscloud.store import ConditionalCheckFailed, DoesNotExist, StoreUnavailable

from . import pki, signing
from .models import PkiState, SigningIdentity

PKI_NAME = "dev"
SAVE_TRIES = 5
SIGNERS_HELD = 256
"""Signers (a decrypted private key each) a replica keeps, the most recently used."""
RENEW_BEFORE = timedelta(days=30)
"""A personal certificate or seal this close to its end is issued again before it signs."""


def wrap_key(secret: str) -> bytes:
    """The key every stored private key is encrypted under (PKCS#8), derived from a secret."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"lscloud-documents",
                info=b"dev key custody: private key wrap").derive(secret.encode())


@dataclass(frozen=True)
class Identity:
    """A signer as their certificate names them (never their ``sub``)."""

    name: str
    title: str | None
    agency: str | None
    certificate: dict


class KeyCustody(Protocol):
    def trust(self) -> signing.Trust: ...
    def timestamper(self) -> TimeStamper: ...
    def person(self, actor: Actor) -> tuple[signers.Signer, Identity]: ...
    def seal(self, agency: str, agency_name: str) -> tuple[signers.Signer, Identity]: ...


def signer_name(actor: Actor) -> str:
    """The name a personal certificate gives its holder: their agency and a pseudonym of their
    ``sub``. No claim of a token names the person, and a name from a request body is whatever its
    caller typed (a clerk's certificate said "Chủ tịch UBND tỉnh"): what is certified is only who
    authenticated, which the agency can trace back to its officer and nobody else can."""
    return f"{actor.agency} {pseudonyms.pseudonym('documents-signer-name', actor.sub)[:10]}"


class DevCustody:
    """The development PKI, kept in the store (see the module docstring)."""

    def __init__(self, secret: str, public_url: str):
        self._wrap = wrap_key(secret)
        self.public_url = public_url.rstrip("/")
        self._lock = threading.Lock()
        self._pki: tuple[pki.Issued, pki.Issued, pki.Issued] | None = None
        self._tsa: TimeStamper | None = None
        self._signers: LRU[str, tuple[signers.Signer, Identity, datetime]] = LRU(SIGNERS_HELD)

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
        """The holder's signer from the certificate on record, issued (again) when there is none,
        its profile changed, or it nears its end. The record is read at every signature through
        the reference cache (``Meta.reference``): a certificate another replica issued, or an
        operator replaced, is used within ``LSCLOUD_PEER_FRESH_S``, never one no longer on record."""
        _, ca, _ = self._load_pki()
        for _ in range(SAVE_TRIES):
            try:
                item = SigningIdentity.get(holder)
            except DoesNotExist:
                item = None
            if item is not None and item.data["profile"] == profile:
                signer, identity, not_after = self._signer_of(item.data)
                if not_after > now() + RENEW_BEFORE:
                    return signer, identity
            issued = issue(ca)
            data = {"profile": profile, "cert": issued.cert_pem(), "key": issued.key_pem(self._wrap),
                    "issued_at": iso(now())}
            if item is None:
                item = SigningIdentity(holder, data=data)
            else:
                item.data = data
            try:
                item.save()
            except ConditionalCheckFailed:   # another replica recorded one meanwhile: that one, read again
                continue
            signer, identity, _ = self._signer_of(data, issued)
            return signer, identity
        # never sign with a certificate that is not on record: its signatures would name one nobody keeps
        raise StoreUnavailable(f"no certificate of {holder} could be recorded after {SAVE_TRIES} tries")

    def _signer_of(self, data: dict, issued: pki.Issued | None = None) -> tuple[signers.Signer, Identity, datetime]:
        """The signer of a recorded certificate (``data``), held by the certificate's digest: its
        private key is decrypted once per certificate, however often it signs."""
        digest = hashlib.sha256(data["cert"].encode()).hexdigest()
        held = self._signers.get(digest)
        if held is None:
            issued = issued or pki.Issued.load(data["cert"], data["key"], self._wrap)
            profile = data["profile"]
            identity = Identity(profile["name"], profile.get("title"), profile.get("agency"),
                                pki.subject_summary(issued.cert))
            held = (signing.simple_signer(issued, self.trust()), identity, issued.cert.not_valid_after_utc)
            self._signers.put(digest, held)
        return held

    def person(self, actor: Actor) -> tuple[signers.Signer, Identity]:
        """The caller's certificate: its profile is made of their token's claims only, so it is
        issued again when those change (another agency or unit), never by what a request says.
        A certificate issued before for a typed name is replaced at the next signature and stays
        valid in what it signed."""
        holder = "p-" + pseudonyms.pseudonym("documents-signer", actor.sub)
        name = signer_name(actor)
        # the same profile a signature without a typed name had: those certificates stay in use
        profile = {"name": name, "title": None, "agency": actor.agency, "unit": actor.unit}
        return self._identity(holder, profile, lambda ca: pki.issue_person(
            ca, self.crl_url("signing-ca"), name=name, title=None, agency=actor.agency, unit=actor.unit))

    def seal(self, agency: str, agency_name: str) -> tuple[signers.Signer, Identity]:
        """The agency's seal; ``agency_name`` is the directory's name of ``agency`` (:mod:`.issuers`)."""
        profile = {"name": agency_name, "title": None, "agency": agency, "seal": True}
        return self._identity("a-" + agency, profile, lambda ca: pki.issue_seal(
            ca, self.crl_url("signing-ca"), agency=agency, agency_name=agency_name))
