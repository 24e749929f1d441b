"""The dev key custody's signers across replicas: each signature uses the certificate on record.

A replica held each holder's signer for as long as it lived, re-reading the record only when the
asked profile changed. A certificate another replica issued (or an operator replaced) was never
seen, signatures named a certificate no longer on record, an expired one went on signing, and
after five lost races a certificate nobody had recorded was used."""

from __future__ import annotations

from dataclasses import replace

import pytest

from functions.documents.function import custody
from functions.documents.function.models import SigningIdentity
from lscloud import pseudonyms
from lscloud.statemachine import Actor
from lscloud.store import ConditionalCheckFailed, StoreUnavailable

pytestmark = pytest.mark.integration

OFFICER = Actor(kind="officer", sub="cb-tp-001", agency="ubnd-05983", unit="05983")
MOVED = replace(OFFICER, unit="05986")   # the same officer's token after a move to another unit


@pytest.fixture
def replicas(install):
    install()
    return [custody.DevCustody("a key custody test secret", "https://documents.example") for _ in range(2)]


def on_record() -> dict:
    holder = "p-" + pseudonyms.pseudonym("documents-signer", OFFICER.sub)
    return custody.pki.subject_summary(custody.pki.x509.load_pem_x509_certificate(
        SigningIdentity.get(holder).data["cert"].encode()))


def test_a_replica_signs_with_the_certificate_another_one_recorded(replicas):
    a, b = replicas
    first = a.person(OFFICER)[1].certificate
    assert first == on_record()
    b.person(MOVED)   # moved: b issues the new unit's certificate
    again = a.person(OFFICER)[1].certificate
    assert again == on_record() and again["unit"] == "05983" and again["serial"] != first["serial"]
    assert b.person(OFFICER)[1].certificate == again   # both on the one record


def test_a_certificate_near_its_end_is_issued_again(replicas, monkeypatch):
    a, _ = replicas
    first = a.person(OFFICER)[1].certificate
    assert a.person(OFFICER)[1].certificate == first   # held, not issued twice
    monkeypatch.setattr(custody, "RENEW_BEFORE", custody.timedelta(days=365 * custody.pki.PERSON_YEARS + 1))
    renewed = a.person(OFFICER)[1].certificate
    assert renewed["serial"] != first["serial"] and renewed == on_record()


def test_no_signer_from_a_certificate_that_could_not_be_recorded(replicas, monkeypatch):
    a, _ = replicas

    def lost(self, *args, **kwargs):
        raise ConditionalCheckFailed("another replica wrote first")

    monkeypatch.setattr(SigningIdentity, "save", lost)
    with pytest.raises(StoreUnavailable):
        a.person(OFFICER)
