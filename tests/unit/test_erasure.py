"""The erasure mechanism's plain parts (:mod:`lscloud.erasure`) and the reports function's: one spelling
of an identifier, a subject that never shows it, pseudonyms kept so a request can be re-applied
without it, a hook's report that cannot carry it, the command that never takes it from argv alone,
and the masks and index keys of citizen reports."""

from __future__ import annotations

import io

import pytest

from lscloud import cli, erasure


@pytest.mark.parametrize("given", ["0912345678", "0912 345 678", "0912.345.678", "+84 912 345 678", "+84912345678",
                                   "84912345678", "(+84) 912-345-678"])
def test_a_phone_number_has_one_spelling_however_written(given):
    assert erasure.normalise("phone", given) == "0912345678"


def test_cccd_and_email_are_normalised_and_bad_values_refused_without_repeating_them():
    assert erasure.normalise("cccd", "020 088 001 111") == "020088001111"
    assert erasure.normalise("email", "  Tu.Hoang@Example.VN ") == "tu.hoang@example.vn"
    for kind, bad in (("cccd", "02008800111x"), ("cccd", "1234"), ("phone", "12ab34cd"), ("phone", "0912"),
                      ("email", "tu.hoang.example.vn"), ("passport", "E7654321")):
        with pytest.raises(erasure.InvalidSubject) as caught:
            erasure.normalise(kind, bad)
        assert bad not in str(caught.value)


def test_a_subject_never_shows_its_identifier():
    s = erasure.Subject("phone", "+84 912 345 678", operator="op")
    assert s.value == "0912345678"
    for shown in (repr(s), str(s), f"{s}"):
        assert "912" not in shown and s.reference[:8] in shown
    assert {"0912345678", "+84912345678", "0912 345 678", "0912.345.678", "0912-345-678"} <= set(s.spellings())
    assert s.mask("gọi +84 912 345 678 hoặc 0912.345.678") == "gọi [phone] hoặc [phone]"
    assert erasure.Subject("email", "A@B.VN").mask("viết cho a@b.vn, A@b.VN") == "viết cho [email], [email]"


def test_the_pseudonyms_a_hook_asked_for_re_apply_a_request_without_the_identifier():
    s = erasure.Subject("phone", "0912 345 678")
    first = s.pseudonym("reports-reporters")
    assert first == erasure.Subject("phone", "+84912345678").pseudonym("reports-reporters")
    assert first != erasure.Subject("cccd", "020088001111").pseudonym("reports-reporters")
    record = {"request": "r1", "subject": {"kind": "phone", "pseudonym": s.reference}, "keys": s.keys}
    again = erasure.Subject.from_record(record)
    assert again.value is None and again.spellings() == [] and again.reference == s.reference
    assert again.pseudonym("reports-reporters") == first
    with pytest.raises(erasure.NotReapplicable):
        again.pseudonym("another-index")


def test_a_hooks_report_cannot_carry_the_identifier_into_the_record():
    s = erasure.Subject("phone", "0912345678")
    report = erasure._checked({"found": 1, "erased": [{"what": "reports of 0912 345 678", "count": 2}],
                               "kept": [{"what": "one", "why": "call 0987654321 or a@b.vn", "law": "x"}]}, s)
    assert report == {"found": 1, "erased": [{"what": "reports of [phone]", "count": 2}],
                      "kept": [{"what": "one", "why": "call [phone] or [email]", "law": "x"}]}
    with pytest.raises(TypeError):
        erasure._checked(["not", "a", "report"], s)


def test_the_value_is_read_from_stdin_when_it_is_a_dash():
    assert erasure.read_value("-", io.StringIO("0912345678\nmore\n")) == "0912345678"
    assert erasure.read_value("a@b.vn", io.StringIO("ignored")) == "a@b.vn"


def test_the_erase_command_refuses_a_bad_identifier_without_echoing_it(monkeypatch, capsys):
    monkeypatch.setattr("sys.stdin", io.StringIO("09x2-bad\n"))
    assert cli.main(["erase", "--kind", "phone", "--value", "-"]) == cli.EXIT_FAIL
    err = capsys.readouterr().err
    assert "phone number" in err and "09x2-bad" not in err
    assert cli.main(["erase", "--value", "-"]) == cli.EXIT_FAIL            # whose data: the kind is needed
    assert cli.main(["erase", "--reapply", "r.json", "--kind", "phone"]) == cli.EXIT_FAIL
    with pytest.raises(SystemExit):
        cli.main(["erase", "--kind", "passport", "--value", "-"])


def test_reports_mask_the_reporter_and_key_one_person_whatever_the_spelling():
    from functions.reports.function import anonymise, owners
    from functions.reports.function.models import closed_entries

    doc = {"reporter": {"first_name": "Tú", "last_name": "Hoàng", "phone": "+84 912 345 678", "email": "A@B.vn"}}
    names = anonymise.names_of(doc)
    assert names[0] == "Hoàng Tú"
    assert anonymise.clean("Hoàng Tú (0912.345.678, a@b.vn, CCCD 020088001111) báo: Tụ tập", names) == \
        "[name] ([phone], [email], CCCD [cccd]) báo: Tụ tập"
    assert anonymise.clean({"kind": ["gọi Tú 0912345678"]}, names) == {"kind": ["gọi [name] [phone]"]}
    assert owners.keys_of(doc) == sorted({owners.key("phone", "0912345678"), owners.key("email", "a@b.vn")})
    assert owners.key("phone", "0912 345 678") == owners.key_for(erasure.Subject("phone", "+84912345678"))
    assert owners.keys_of({"reporter": {"phone": "call me"}, "owner": "abc"}) == ["abc"]
    closed = {"id": "20261207-00000001", "status": "closed", "updated_at": "2026-12-07T01:02:03.000Z"}
    assert [e.entry for e in closed_entries(closed)] == ["2026-12-07T01:02:03.000Z_20261207-00000001"]
    assert closed_entries({**closed, "status": "in_progress"}) == []
    assert closed_entries({**closed, "contact_erased": {"why": "request"}}) == []
