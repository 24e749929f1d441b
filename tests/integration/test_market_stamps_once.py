"""A batch's stamp codes are signed once, when it is issued, and kept: every download (the codes
file, a sheet) serves the kept codes, byte for byte, without signing again; a batch issued before
codes were kept has them signed by its first download and kept then, once; a key rotation changes
no issued code. Real weed mini + nats-server; signatures are counted through a wrapper of the
province's key, never timed."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from cuts import cut_once
from digital_support import ok
from market_support import PRODUCER
from store_calls import counting

from functions.market.function import models, sheet, stampcode, stamps
from functions.market.function.stampkeys import StampKeys

pytestmark = pytest.mark.integration

PART = 100          # codes a kept part holds here: a batch of 250 is three parts
COUNT = 250


class CountingKey:
    """The province's key with each signature counted (Ed25519PrivateKey's methods cannot be patched)."""

    def __init__(self, key: Ed25519PrivateKey):
        self.key, self.signed, self._lock = key, 0, threading.Lock()

    def sign(self, data: bytes) -> bytes:
        with self._lock:
            self.signed += 1
        return self.key.sign(data)

    def public_key(self):
        return self.key.public_key()


@pytest.fixture
def market(start_function, peers, monkeypatch):
    fn = start_function("market", peer_url_template=peers.template)
    monkeypatch.setattr(stamps, "PART_CODES", PART, raising=False)
    # a batch of COUNT is fetched, not answered inline
    fn.app.config["MARKET"] = replace(fn.app.config["MARKET"], inline_codes=10)
    return fn


@pytest.fixture
def client(market):
    return market.app.test_client()


def counted_keys(market, key: Ed25519PrivateKey | None = None, index: int | None = None) -> CountingKey:
    """The app's stamp key (or ``key`` under ``index``: a rotation), its signatures counted from now."""
    held = market.app.config["MARKET_KEYS"]
    counter = CountingKey(key or getattr(held.private, "key", held.private))
    market.app.config["MARKET_KEYS"] = StampKeys(counter, held.index if index is None else index)
    return counter


def key_index(market) -> int:
    return market.app.config["MARKET_KEYS"].index


def new_lot(client, prod) -> str:
    body = {"product": "Hồi Văn Quan", "unit": "bao 5 kg", "harvested_on": "2025-08-20",
            "origin": {"commune": "06463", "plot": "VQ-02"}}
    return ok(client.post("/v1/lots", json=body, headers={**prod, "Idempotency-Key": uuid.uuid4().hex}), 201)["id"]


def issue(client, prod, lot: str, count: int = COUNT, key: str | None = None):
    return client.post(f"/v1/lots/{lot}/stamps", json={"count": count},
                       headers={**prod, "Idempotency-Key": key or uuid.uuid4().hex})


def old_style_batch(lot: str, key_index: int, count: int = COUNT) -> str:
    """A batch as the code before kept codes wrote it: its record alone."""
    batch = stampcode.batch_id(uuid.uuid4().bytes[:stampcode.BATCH_BYTES])
    models.StampBatch(batch, lot_id=lot, stamps=count, key_index=key_index, issued_at="2025-08-21T03:00:00Z").save()
    return batch


def expected(key: Ed25519PrivateKey, index: int, batch: str, count: int = COUNT) -> bytes:
    return "".join(c + "\n" for c in stampcode.encode_range(key, index, batch, 0, count)).encode()


def kept_parts(batch: str) -> list[str]:
    return [p.codes for p in models.StampCodes.query(batch)]


def test_downloads_serve_the_codes_signed_at_the_issue_byte_for_byte(client, market, tokens, monkeypatch):
    """Two downloads of the codes file are the same bytes and sign nothing (the old code signed all
    250 codes again at each download, and every stamp of a sheet); the codes were signed once, at the
    issue, and are the province's signatures of (batch, serial)."""
    prod = tokens("producer", PRODUCER)
    lot = new_lot(client, prod)
    key = counted_keys(market)
    batch = ok(issue(client, prod, lot), 201)
    assert "codes" not in batch
    at_issue = key.signed

    with counting() as calls:
        first = client.get(batch["codes_url"], headers=prod)
        body = first.get_data()
    assert first.status_code == 200 and first.mimetype == "text/plain"
    second = client.get(batch["codes_url"], headers=prod).get_data()
    assert key.signed == at_issue, "a download signed codes again"
    assert body == second == expected(key.key, key_index(market), batch["batch"])
    assert int(first.headers["Content-Length"]) == len(body) == COUNT * (stampcode.CODE_CHARS + 1)
    assert at_issue == COUNT                       # each code signed once, when the batch was issued
    # what a download asks of the store: the lot and the batch, then each kept part; nothing written
    assert calls["put"] == 0 and calls["get"] == 2 + 3, calls

    # a sheet across two parts: the kept codes, no signature
    shown = []
    real = sheet.render
    monkeypatch.setattr(sheet, "render", lambda **kw: shown.append(kw["codes"]) or real(**kw))
    pdf = client.get(batch["sheet_url"], query_string={"from": 95, "count": 10}, headers=prod)
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")
    assert shown == [body.decode().split()[95:105]] and key.signed == at_issue

    codes = body.decode().split()
    for serial in (0, 120, COUNT - 1):
        scanned = ok(client.get(f"/v1/stamps/{codes[serial]}"))
        assert scanned["authentic"] is True and scanned["stamp"]["serial"] == serial


def test_an_old_style_batch_is_signed_by_its_first_download_and_kept_once(client, market, tokens):
    """A batch written before codes were kept (its record alone): two first downloads side by side
    both serve its codes as the province signs them; the codes are kept then, each part once, and a
    later download signs nothing (the old code signed all 250 again at every download)."""
    prod = tokens("producer", PRODUCER)
    lot = new_lot(client, prod)
    key = counted_keys(market)
    batch = old_style_batch(lot, key_index(market))
    url = f"/v1/lots/{lot}/stamps/{batch}/codes"
    want = expected(key.key, key_index(market), batch)

    def download(_):
        r = market.app.test_client().get(url, headers=prod)
        return r.status_code, r.get_data()

    with ThreadPoolExecutor(2) as pool:
        answers = list(pool.map(download, range(2)))
    assert answers == [(200, want), (200, want)]
    signed = key.signed
    assert COUNT <= signed <= 2 * COUNT

    with counting() as calls:
        again = client.get(url, headers=prod)
    assert again.status_code == 200 and again.get_data() == want
    assert key.signed == signed, "a download of a kept batch signed codes again"
    assert calls["put"] == 0
    assert "".join(kept_parts(batch)).encode() == want and len(kept_parts(batch)) == 3

    for serial in (3, 201):
        scanned = ok(client.get(f"/v1/stamps/{want.decode().split()[serial]}"))
        assert scanned["authentic"] is True and scanned["stamp"] == {**scanned["stamp"], "batch": batch,
                                                                     "serial": serial}


def test_a_key_rotation_changes_no_issued_code(client, market, tokens):
    """The province rotates its key (a new key under a new index): a batch issued before downloads
    the same codes, still the old key's signatures under the old index (the old code signed them
    again with the new key under the old index: codes no published key accepts, and not the ones
    printed). A batch of the old key whose codes were never kept cannot be signed now: 409, no code."""
    prod = tokens("producer", PRODUCER)
    lot = new_lot(client, prod)
    old_key = counted_keys(market)
    old_index = key_index(market)
    batch = ok(issue(client, prod, lot), 201)
    before = client.get(batch["codes_url"], headers=prod).get_data()
    never_kept = old_style_batch(lot, old_index)

    new = counted_keys(market, Ed25519PrivateKey.generate(), (old_index + 1) % 16)
    after = client.get(batch["codes_url"], headers=prod)
    assert after.status_code == 200 and after.get_data() == before and new.signed == 0
    old_public = {old_index: old_key.public_key()}
    assert [stampcode.verify(c, old_public).serial for c in after.get_data().decode().split()] == list(range(COUNT))

    r = client.get(f"/v1/lots/{lot}/stamps/{never_kept}/codes", headers=prod)
    assert r.status_code == 409 and r.mimetype == "application/problem+json", r.get_data(as_text=True)
    problem = r.get_json()
    assert problem["type"].endswith("/stamp-key-retired") and problem["detail_vi"] and new.signed == 0
    assert kept_parts(never_kept) == []

    # a batch issued now is the new key's
    fresh = ok(issue(client, prod, lot, 30), 201)
    code = client.get(fresh["codes_url"], headers=prod).get_data().decode().split()[7]
    assert stampcode.verify(code, {key_index(market): new.public_key()}).serial == 7
    assert ok(client.get(f"/v1/stamps/{code}"))["authentic"] is True


def test_an_issue_cut_off_while_keeping_its_codes_is_finished_by_its_retry(client, market, tokens, monkeypatch):
    """The store fails at the second part: the producer gets a 503 and retries with the same key;
    the retry keeps the parts the first run did not (the one it kept is read, not signed again),
    and the lot counts the batch once."""
    prod = tokens("producer", PRODUCER)
    lot = new_lot(client, prod)
    key = counted_keys(market)
    cuts = cut_once(monkeypatch, models.StampCodes, "save", lambda item, **_: item.first == f"{PART:010d}")
    idem = uuid.uuid4().hex
    first = issue(client, prod, lot, key=idem)
    assert first.status_code == 503 and cuts, first.get_data(as_text=True)
    (batch,) = [b.batch for b in models.StampBatch.scan()]
    assert len(kept_parts(batch)) == 1

    again = ok(issue(client, prod, lot, key=idem), 201)
    assert again["batch"] == batch and key.signed == PART + COUNT      # part 0 signed once
    body = client.get(again["codes_url"], headers=prod).get_data()
    assert body == expected(key.key, key_index(market), batch) and len(kept_parts(batch)) == 3
    assert ok(client.get(f"/v1/lots/{lot}", headers=prod))["stamps_issued"] == COUNT
