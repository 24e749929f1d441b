"""The documents function's plain rules: Decree 30 presentation, register books, the dev PKI's
certificates (no identifier in a subject, keys only encrypted), PDFs refused before any signing."""

from __future__ import annotations

import pytest
from cryptography import x509

from lscloud import config, errors

from functions.documents.function import documents, pki, registers, settings as doc_settings, verify
from functions.documents.function.custody import wrap_key


def test_numbers_and_symbols_as_decree_30_presents_them():
    assert registers.number_text(7) == "07" and registers.number_text(123) == "123"
    assert registers.symbol("quyet-dinh", "UBND", None) == "QĐ-UBND"
    assert registers.symbol("cong-van", "UBND", "VP") == "UBND-VP"
    assert registers.display(7, "QĐ-UBND") == "Số: 07/QĐ-UBND"
    assert registers.display(3, None) == "Số đến: 03"


def test_books_per_agency_year_direction_and_confidentiality():
    assert registers.book_of("ubnd-tinh", 2026, "outgoing") == "ubnd-tinh.2026.di"
    assert registers.book_of("ubnd-tinh", 2026, "incoming", confidential=True) == "ubnd-tinh.2026.den.mat"
    for bad in ("", "UBND", "../x", "a/b"):
        with pytest.raises(errors.Invalid):
            registers.book_of(bad, 2026, "outgoing")


def test_every_decree_fact_cites_its_article_and_says_whether_it_was_verified():
    data = registers.decree()
    assert "30/2020/NĐ-CP" in data["source"]["title"]
    for rule in data["rules"]:
        assert rule["article"] and isinstance(rule["verified"], bool) and rule["text_vi"]
    for kind in ("types", "urgency", "confidentiality"):
        assert data[kind]["_source"] and data[kind]["_verified"] is False
    assert "quyet-dinh" in registers.codes("types") and "hoa-toc" in registers.codes("urgency")


def test_a_personal_certificate_names_the_person_never_an_identifier_and_its_key_is_stored_encrypted():
    root = pki.make_root()
    ca = pki.make_signing_ca(root, "http://x/root.crl")
    person = pki.issue_person(ca, "http://x/ca.crl", name="Nguyễn Văn An", title="Chuyên viên",
                              agency="ubnd-tinh", unit="vp")
    subject = person.cert.subject.rfc4514_string()
    assert "Nguyễn Văn An" in subject and "Chuyên viên" in subject
    assert person.cert.issuer == ca.cert.subject and ca.cert.issuer == root.cert.subject
    person.cert.verify_directly_issued_by(ca.cert)
    cdp = person.cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == "http://x/ca.crl"
    wrapped = person.key_pem(wrap_key("s3cret"))
    assert wrapped.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    again = pki.Issued.load(person.cert_pem(), wrapped, wrap_key("s3cret"))
    assert again.key.private_numbers() == person.key.private_numbers()
    with pytest.raises(ValueError):
        pki.Issued.load(person.cert_pem(), wrapped, wrap_key("another"))
    assert pki.subject_summary(person.cert)["name"] == "Nguyễn Văn An"


@pytest.mark.parametrize("body", [b"", b"hello", b"%PDF-1.7\n", b"%PDF-1.4\n1 0 obj << /Type /Catalog >>"])
def test_unusable_pdfs_are_refused_naming_the_body(body):
    with pytest.raises(errors.Invalid) as got:
        documents.check_pdf(body)
    assert got.value.errors[0]["field"] == ""
    with pytest.raises(errors.Invalid):
        verify.verify(body, trust=None)


def test_settings_refuse_a_level_or_custody_that_is_not_built():
    base = config.Settings(service="documents")
    assert doc_settings.settings_of(base).pades_level == "B-LTA"
    for env in ({"DOCUMENTS_PADES_LEVEL": "B-B"}, {"DOCUMENTS_CUSTODY": "pkcs11"}):
        with pytest.raises(config.ConfigError):
            doc_settings.settings_of(base.replace(function_env=env))


def test_a_held_certificate_is_read_by_many_signatures_at_once():
    """Two signatures at once in one replica (tests/integration/test_documents_api.py's racing
    signers) now and then ended in a 500: asn1crypto parses a certificate lazily and without a lock,
    and the timestamper's and the signers' certificates are held across requests. Threads switched
    every microsecond make the race happen every few rounds on the old code."""
    from races import at_once

    from functions.documents.function import signing

    root = pki.make_root()
    ca = pki.make_signing_ca(root, "http://crl.example/ca.crl")
    failures: list[BaseException] = []
    for _ in range(100):
        held = signing.asn1_cert(ca.cert)
        failures += at_once(lambda _, c=held: (c.key_identifier, c.authority_key_identifier,
                                                c.basic_constraints_value), 4)
    assert failures == []


def test_the_timestamper_is_made_ready_before_it_is_shared():
    """pyHanko's timestamper keeps a dummy token of its first use and the certificates it holds,
    taken from that token unparsed: the first signatures after a start, at once, parsed them
    together and now and then broke each other (a 500). It comes ready: its token made and every
    certificate it holds parsed whole, so a signature reads nothing lazily."""
    from functions.documents.function import signing

    root = pki.make_root()
    ca = pki.make_signing_ca(root, "http://crl.example/root.crl")
    trust = signing.Trust(root.cert, (ca.cert,), (pki.crl(root), pki.crl(ca)))
    stamper = signing.dev_timestamper(pki.make_tsa(ca, "http://crl.example/ca.crl"), trust)
    held = [*stamper._certs.values(), *stamper.cert_registry]
    assert stamper._dummy_response_cache and len(held) >= 2
    # asn1crypto's own marks of a parse done: the fields (native) and the extensions' attributes
    assert all(c._native is not None and c._processed_extensions for c in held)


def test_signature_boxes_drawn_at_once_come_out_whole():
    """reportlab subsets the font as a canvas is saved, through one unlocked file cursor per font:
    two signature boxes saved at once read each other's glyph offsets (IndexError, KeyError: a 500,
    or a box with the wrong glyphs). Saves now take lscloud.pdfcanvas's lock."""
    from datetime import datetime, timezone

    from races import at_once

    from functions.documents.function import signing

    at = datetime(2026, 3, 1, 2, 30, tzinfo=timezone.utc)
    names = ["Nguyễn Thị Hương Giang", "Hoàng Văn Thắng", "Lường Thị Ánh Tuyết", "Đặng Quốc Khánh"]
    signing.appearance_pdf(signing.Appearance(names[0], None, None, 0), at)   # the font registered

    def draw(i: int) -> None:
        box = signing.Appearance(names[i % 4], "Phó Chủ tịch Ủy ban nhân dân", "Sở Tư pháp tỉnh Lạng Sơn", 0)
        for _ in range(30):
            signing.appearance_pdf(box, at)

    failures = at_once(draw, 8)
    assert failures == []
