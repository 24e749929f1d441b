"""The development PKI: a root CA, a signing CA under it, a timestamp authority, and a personal
signing certificate per officer (and an agency seal certificate per agency), issued on demand.

Plain ``cryptography``: no Flask, no store. What is kept is kept by :mod:`.keystore`, private
keys always encrypted (PKCS#8, ``BestAvailableEncryption``) under the function's wrap key. Keys
are ECDSA P-256: quick to make, and understood by every PDF validator (NSS, pyHanko, Acrobat).

A certificate's subject names only what the custody passes: for a person their agency and a
keyed pseudonym of their ``sub`` (:func:`.custody.signer_name`), their agency and unit — never a
CCCD or any other personal identifier, and never a name a caller typed; for an agency its name in
the directory. Every issued certificate names its issuer's CRL (``cRLDistributionPoints``), which
the function publishes and embeds in every signature it makes (PAdES B-LT), so a validator needs
nothing online.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DEV_ORG = "Lạng Sơn Cloud (DEVELOPMENT, not for production)"
ROOT_YEARS = 20
PERSON_YEARS = 3
CRL_DAYS = 7


@dataclass(frozen=True)
class Issued:
    """A certificate with its private key (in memory only while it is used)."""

    cert: x509.Certificate
    key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey

    def cert_pem(self) -> str:
        return self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def key_pem(self, wrap_key: bytes) -> str:
        """The private key as encrypted PKCS#8 PEM (never stored or sent otherwise)."""
        return self.key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.BestAvailableEncryption(wrap_key)).decode()

    @classmethod
    def load(cls, cert_pem: str, key_pem: str, wrap_key: bytes) -> "Issued":
        return cls(x509.load_pem_x509_certificate(cert_pem.encode()),
                   serialization.load_pem_private_key(key_pem.encode(), password=wrap_key))


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0)


def _name(**parts: str | None) -> x509.Name:
    oids = {"cn": NameOID.COMMON_NAME, "title": NameOID.TITLE, "ou": NameOID.ORGANIZATIONAL_UNIT_NAME,
            "o": NameOID.ORGANIZATION_NAME, "l": NameOID.LOCALITY_NAME, "c": NameOID.COUNTRY_NAME}
    order = ("c", "l", "o", "ou", "title", "cn")
    return x509.Name([x509.NameAttribute(oids[k], parts[k]) for k in order if parts.get(k)])


def _builder(subject: x509.Name, issuer: Issued | None, key, *, years: int, crl_url: str | None):
    now = _now()
    issuer_name = issuer.cert.subject if issuer else subject
    b = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer_name).public_key(key.public_key())
         .serial_number(x509.random_serial_number()).not_valid_before(now - dt.timedelta(minutes=5))
         .not_valid_after(now + dt.timedelta(days=365 * years))
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False))
    if issuer is not None:
        b = b.add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
    if crl_url:
        b = b.add_extension(x509.CRLDistributionPoints([x509.DistributionPoint(
            [x509.UniformResourceIdentifier(crl_url)], None, None, None)]), critical=False)
    return b


def _ca_usage(b):
    return b.add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)


def _signer_usage(b):
    return b.add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True).add_extension(
        x509.KeyUsage(digital_signature=True, content_commitment=True, key_encipherment=False,
                      data_encipherment=False, key_agreement=False, key_cert_sign=False, crl_sign=False,
                      encipher_only=False, decipher_only=False), critical=True)


def new_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def make_root() -> Issued:
    key = new_key()
    subject = _name(c="VN", l="Lạng Sơn", o=DEV_ORG, cn="Lạng Sơn Cloud DEV Root CA")
    b = _builder(subject, None, key, years=ROOT_YEARS, crl_url=None)
    b = _ca_usage(b.add_extension(x509.BasicConstraints(ca=True, path_length=1), critical=True))
    return Issued(b.sign(key, hashes.SHA256()), key)


def make_signing_ca(root: Issued, crl_url: str) -> Issued:
    key = new_key()
    subject = _name(c="VN", l="Lạng Sơn", o=DEV_ORG, cn="Lạng Sơn Cloud DEV Signing CA")
    b = _builder(subject, root, key, years=ROOT_YEARS - 1, crl_url=crl_url)
    b = _ca_usage(b.add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True))
    return Issued(b.sign(root.key, hashes.SHA256()), key)


def make_tsa(ca: Issued, crl_url: str) -> Issued:
    # RSA: pyHanko's in-process timestamp authority signs with RSA only (made once per PKI)
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = _name(c="VN", l="Lạng Sơn", o=DEV_ORG, cn="Lạng Sơn Cloud DEV Timestamp Authority")
    b = _signer_usage(_builder(subject, ca, key, years=ROOT_YEARS - 2, crl_url=crl_url))
    b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.TIME_STAMPING]), critical=True)
    return Issued(b.sign(ca.key, hashes.SHA256()), key)


def issue_person(ca: Issued, crl_url: str, *, name: str, title: str | None, agency: str | None,
                 unit: str | None) -> Issued:
    """An officer's personal signing certificate: name, title, agency, unit — no identifier."""
    key = new_key()
    subject = _name(c="VN", o=agency or "-", ou=unit, title=title, cn=name)
    return Issued(_signer_usage(_builder(subject, ca, key, years=PERSON_YEARS, crl_url=crl_url))
                  .sign(ca.key, hashes.SHA256()), key)


def issue_seal(ca: Issued, crl_url: str, *, agency: str, agency_name: str) -> Issued:
    """An agency's seal certificate (chữ ký số của cơ quan), used by its records office on issue."""
    key = new_key()
    subject = _name(c="VN", l="Lạng Sơn", o=agency_name, ou=agency, cn=agency_name)
    return Issued(_signer_usage(_builder(subject, ca, key, years=PERSON_YEARS, crl_url=crl_url))
                  .sign(ca.key, hashes.SHA256()), key)


def crl(issuer: Issued, revoked: list[tuple[int, dt.datetime]] = ()) -> x509.CertificateRevocationList:
    """A fresh CRL of ``issuer`` (valid CRL_DAYS days) listing ``revoked`` (serial, when)."""
    now = _now()
    b = (x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject)
         .last_update(now - dt.timedelta(minutes=5)).next_update(now + dt.timedelta(days=CRL_DAYS))
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key()), critical=False)
         .add_extension(x509.CRLNumber(int(now.timestamp())), critical=False))
    for serial, when in revoked:
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial)
                                      .revocation_date(when).build())
    return b.sign(issuer.key, hashes.SHA256())


def subject_summary(cert: x509.Certificate) -> dict:
    """What a certificate says about its holder (for reports and answers)."""
    def one(oid):
        got = cert.subject.get_attributes_for_oid(oid)
        return got[0].value if got else None

    return {"name": one(NameOID.COMMON_NAME), "title": one(NameOID.TITLE),
            "organization": one(NameOID.ORGANIZATION_NAME), "unit": one(NameOID.ORGANIZATIONAL_UNIT_NAME),
            "serial": format(cert.serial_number, "x"), "not_after": cert.not_valid_after_utc.isoformat()}
