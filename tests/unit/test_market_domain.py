"""The market's plain domain: the stamp code (signed, unique, altered codes refused), the copy
rules of scans, the VietQR payload read back by an independent decoder, the printable sheet."""

from __future__ import annotations

import base64
import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import qr_pay as napas
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings, strategies as st

from functions.market.function import scans, sheet, stampcode, vietqr
from lscloud import errors
from lscloud.patterns import ecma_regex

KEY = Ed25519PrivateKey.generate()
PUBLIC = {3: KEY.public_key()}
BATCH = stampcode.batch_id(bytes.fromhex("a1b2c3d4e5f6"))
CODES = stampcode.encode_range(KEY, 3, BATCH, 0, 50)
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"


def test_a_code_is_120_base32_characters_that_say_their_batch_and_serial():
    assert all(len(c) == stampcode.CODE_CHARS == 120 and set(c) <= set(ALPHABET) for c in CODES)
    assert len(set(CODES)) == 50
    stamp = stampcode.verify(CODES[17], PUBLIC)
    assert (stamp.key_index, stamp.batch, stamp.serial) == (3, BATCH, 17)
    assert stampcode.encode(KEY, 3, BATCH, 17) == CODES[17]          # deterministic: a reprint is the same code
    assert stampcode.verify(CODES[17].lower(), PUBLIC).serial == 17


@settings(max_examples=150, deadline=None)
@given(st.integers(0, 49), st.integers(0, 119), st.sampled_from(ALPHABET))
def test_any_single_character_changed_is_refused(which, position, char):
    code = CODES[which]
    if code[position] == char:
        return
    altered = code[:position] + char + code[position + 1:]
    with pytest.raises(stampcode.NotAStamp) as err:
        stampcode.verify(altered, PUBLIC)
    assert err.value.reason in ("bad-signature", "unknown-key", "unknown-format", "malformed")


def test_a_code_signed_by_another_key_or_unknown_key_is_not_the_provinces():
    forger = Ed25519PrivateKey.generate()
    with pytest.raises(stampcode.NotAStamp) as err:
        stampcode.verify(stampcode.encode(forger, 3, BATCH, 1), PUBLIC)
    assert err.value.reason == "bad-signature"
    with pytest.raises(stampcode.NotAStamp) as err:
        stampcode.verify(stampcode.encode(KEY, 4, BATCH, 1), PUBLIC)
    assert err.value.reason == "unknown-key"
    # a signature moved from one stamp onto another stamp's payload
    raw_a, raw_b = base64.b32decode(CODES[1]), base64.b32decode(CODES[2])
    spliced = base64.b32encode(raw_a[:stampcode.PAYLOAD_BYTES] + raw_b[stampcode.PAYLOAD_BYTES:]).decode()
    with pytest.raises(stampcode.NotAStamp):
        stampcode.verify(spliced, PUBLIC)


@pytest.mark.parametrize("text", ["", "A" * 119, "A" * 121, "1" * 120, "é" * 120, None])
def test_what_is_not_a_code_is_malformed(text):
    with pytest.raises(stampcode.NotAStamp) as err:
        stampcode.decode(text)
    assert err.value.reason == "malformed"


def _path_schema(name: str):
    """The ECMA-262 pattern of ``schemas/market/<name>``, as the route (and a client) reads it."""
    schema = json.loads((Path(__file__).resolve().parents[2] / "schemas" / "market" / name).read_text())
    return ecma_regex(schema["pattern"])


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=stampcode.BATCH_BYTES, max_size=stampcode.BATCH_BYTES))
def test_the_batch_id_schema_is_the_ids_the_function_issues(raw):
    """``schemas/market/batch-id.json`` (the codes and sheet routes' ``batch_id``) admits every id
    :func:`stampcode.batch_id` makes, and each id it admits is one the function could make."""
    pattern = _path_schema("batch-id.json")
    assert pattern.search(stampcode.batch_id(raw))
    assert stampcode.batch_bytes(stampcode.batch_id(raw)) == raw


@settings(max_examples=200, deadline=None)
@given(st.from_regex(_path_schema("batch-id.json")))
def test_every_batch_id_the_schema_admits_reads_back_as_itself(batch):
    assert stampcode.batch_id(stampcode.batch_bytes(batch)) == batch


@pytest.mark.parametrize("text", [CODES[0], CODES[1].lower(), "Z" * 120, "A" * 119, "A" * 121, "1" * 120,
                                  "=" * 120, CODES[2][:-1] + "é", "not-a-code", ""])
def test_the_stamp_code_schema_is_what_the_scan_reads_as_a_code(text):
    """``schemas/market/stamp-code.json`` (the scan's ``code``) admits exactly what :func:`stampcode.decode`
    does not call malformed."""
    try:
        stampcode.decode(text)
        malformed = False
    except stampcode.NotAStamp as exc:
        malformed = exc.reason == "malformed"
    assert bool(_path_schema("stamp-code.json").search(text)) is not malformed


RULES = {"scan_limit": 3, "copy_distance_km": 100, "copy_speed_kmh": 200}
T0 = datetime(2026, 3, 1, 8, 0, tzinfo=timezone.utc)
LANG_SON, HANOI, HCMC = scans.Place.coarse(21.853, 106.761), scans.Place.coarse(21.028, 105.834), scans.Place.coarse(10.776, 106.700)


def test_a_stamp_scanned_by_too_many_callers_is_flagged_once():
    tally = scans.new_tally()
    assert not any(scans.observe(tally, None, T0, by="a", **RULES) for _ in range(5))   # one caller
    flags = [scans.observe(tally, None, T0 + timedelta(minutes=i), by=by, **RULES) for i, by in enumerate("bcde")]
    assert flags == [False, False, True, False]
    assert tally["count"] == 9 and tally["reasons"] == ["too-many-scans"] and tally["possible_copy"]


def test_implausible_places_flag_a_copy_and_a_truck_ride_does_not():
    lone = scans.new_tally()                 # one caller says Lạng Sơn, then Hồ Chí Minh City: no evidence
    assert not any(scans.observe(lone, p, T0, by="a", **RULES) for p in (LANG_SON, HCMC, LANG_SON))
    ride = scans.new_tally()
    assert not scans.observe(ride, LANG_SON, T0, by="a", **RULES)
    assert not scans.observe(ride, HANOI, T0 + timedelta(hours=3), by="b", **RULES)     # ~130 km in 3 h
    assert not ride["possible_copy"] and ride["places"][0] == {"lat": 21.9, "lon": 106.8, "at": "2026-03-01T08:00:00.000Z", "by": "a"}
    copy = scans.new_tally()
    scans.observe(copy, LANG_SON, T0, by="a", **RULES)
    assert not scans.observe(copy, HCMC, T0 + timedelta(hours=2), by="c", **RULES)      # one at each end: not yet
    scans.observe(copy, LANG_SON, T0 + timedelta(hours=2), by="b", **RULES)
    assert scans.observe(copy, HCMC, T0 + timedelta(hours=2), by="d", **RULES)          # two at each end, ~1,200 km
    assert copy["reasons"] == ["too-many-scans", "implausible-places"]   # the fourth caller, over scan_limit 3, too
    assert 1100 < scans.distance_km(LANG_SON, HCMC) < 1300


def test_the_vietqr_payload_is_read_back_by_an_independent_decoder():
    text = vietqr.payload("970405", "1500201234567", "Hồi khô Văn Quan — HTX")   # Agribank
    d = napas.decode(text)          # raises if the CRC or the TLV structure is wrong
    assert (d["bin_id"], d["consumer_id"], d["service_code"], d["glocal_uuid"]) == \
        ("970405", "1500201234567", "QRIBFTTA", "A000000727")
    assert d["purpose_of_transaction"] == "Hoi kho Van Quan HTX"
    assert d["point_of_initiation_method"] == "11" and d["transaction_currency"] == "704" and d["country_code"] == "VN"
    assert "970405" in vietqr.banks() and vietqr.banks()["970415"]["short_name"] == "VietinBank"


@pytest.mark.parametrize("bank_bin, account, field", [("970999", "123456789", "/payment/bank_bin"),
                                                      ("970415", "12-34", "/payment/account_number")])
def test_a_bank_or_account_vietqr_cannot_carry_is_refused(bank_bin, account, field):
    with pytest.raises(errors.Invalid) as err:
        vietqr.payload(bank_bin, account, "x")
    assert err.value.errors[0]["field"] == field


def test_the_printed_sheet_scans_back_to_the_codes(tmp_path):
    import pypdfium2
    import zxingcpp

    url = "https://example.invalid/market/v1/stamps/"
    pdf = sheet.render(codes=CODES[:30], first_serial=0, scan_url=url, product="Na Chi Lăng loại 1", lot_id="lot-1",
                       batch=BATCH, font_path="/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf")
    doc = pypdfium2.PdfDocument(pdf)
    assert len(doc) == 2 and round(doc[0].get_width() / 72 * 25.4) == 210      # A4: 24 stamps, then 6
    page = doc[0].render(scale=150 / 72).to_pil()                                 # a 150 dpi scan of page 1
    page.save(tmp_path / "sheet-page-1.png")
    # QR codes only, as a phone's scanner reads a stamp: with every format on, zxing once read a
    # stretch of a sheet (random codes: a new key each run) as a 1D barcode "A$-A" (CI at 5892db1;
    # not seen again in 40 sheets here)
    read = sorted(r.text for r in zxingcpp.read_barcodes(page, formats=zxingcpp.BarcodeFormat.QRCode))
    assert read == sorted(url + c for c in CODES[:24])


def test_a_stamp_names_the_functions_public_address_never_its_cluster_service():
    # printed on produce and scanned by phones for years: the Service address no phone can reach is wrong
    from functions.market.function import settings as market_settings
    from lscloud.config import Settings

    cluster = Settings(service="market", env="cluster", peer_url_template="http://{name}.lscloud.svc.cluster.local",
                       public_url_template="https://{name}.lscloud.cloud.langson.gov.vn")
    assert market_settings.of(cluster).scan_url == "https://market.lscloud.cloud.langson.gov.vn/v1/stamps/"
    chosen = cluster.replace(function_env={"MARKET_SCAN_URL": "https://tem.langson.gov.vn/s/"})
    assert market_settings.of(chosen).scan_url == "https://tem.langson.gov.vn/s/"


def test_a_lot_stamped_in_the_small_hours_shows_the_day_it_was_here():
    """Stamps issued from 00:00 to 07:00 here showed the day before (the UTC date prefix): the
    stamping step came before the harvest on the public scan."""
    from functions.market.function import lots

    doc = {"harvested_on": "2026-03-11", "origin": {"commune_name": "Xã Chi Lăng"},
           "batches": [{"issued_at": "2026-03-10T18:30:00.000Z"}]}
    steps = {s["step"]: s["on"] for s in lots.journey(doc)}
    assert steps == {"harvested": "2026-03-11", "stamped": "2026-03-11"}
