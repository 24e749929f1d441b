"""Every function that holds personal data answers an erasure request (Law 91/2025/QH15, Art. 14(1)),
on real weed mini + nats-server: one citizen's records made through the functions' own apps (a dossier,
two border crossings as the driver, a team they lead and their household's visits, a household shop
and a lot as producer, their population record and rate-limit counters; soft-ATM withdrawals by
phone), then ``lscloud erase`` (in-process) and :func:`lscloud.erasure.run`. Each hook finds the
person by its own pseudonym-keyed index, erases what no law keeps (an ended declaration's health
answers and phone, the household's tally entries, rate-limit counters), says what it keeps and why,
and a repeat or a re-application from the record changes nothing more; no report, printed or
stored, holds the identifier."""

from __future__ import annotations

import io
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

import community_support
from border_support import TAX, declaration
from border_support import DirectoryStub as BorderDirectory
from digital_support import ok
from dossiers_support import PeerStub, pdf
from softatm_support import DirectoryStub as PostOffices
from lscloud import cli, erasure, runtime
from lscloud.ratelimit import Limiter
from client_answers import idem

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
HOOKED = ("assistant", "border", "community", "documents", "dossiers", "identity", "market", "softatm")
PERSON = community_support.LEADER                  # a team leader, head of a household, driver, shop owner
PHONE = "0912 345 678"
TRACES = (PERSON, "020 088 001 111", "0200 8800 1111", "912345678", "912 345 678", "912.345.678")
GATE, CHI_LANG = "tan-thanh", "06463"


@pytest.fixture(scope="module")
def stubs():
    """The peers each function asks over HTTP, as their own tests stand them in."""
    made = {"dossiers": PeerStub(), "border": BorderDirectory(), "softatm": PostOffices()}
    yield made
    for stub in made.values():
        stub.stop()


def when(minutes_ago: int) -> str:
    return (datetime.now(timezone.utc) - timedelta(minutes=minutes_ago)).isoformat()


def a_dossier(start_function, stubs, tokens) -> str:
    client = start_function("dossiers", peer_url_template=stubs["dossiers"].template).app.test_client()
    runtime.current().bus.ensure_stream()
    citizen = tokens("citizen", PERSON)
    upload = {**citizen, "Content-Type": "application/pdf"}
    docs = [{"code": code, "sha256": ok(client.post("/v1/attachments", data=pdf(f"{code}-{uuid.uuid4().hex}"),
                                                    headers=upload), 201)["sha256"]}
            for code in ("to-khai", "giay-chung-sinh")]
    body = {"id": "ks-" + uuid.uuid4().hex[:12], "procedure": "HT-KS", "unit": "05983", "documents": docs,
            "applicant": {"name": "Hoàng Văn Tú", "phone": PHONE}}
    return ok(client.post("/v1/dossiers", json=body, headers=citizen), 201)["id"]


def crossings(start_function, stubs, tokens) -> dict[str, str]:
    """Two declarations of the person as driver: one cancelled (ended), one still live."""
    client = start_function("border", peer_url_template=stubs["border"].template).app.test_client()
    ent, out = tokens("enterprise", TAX), {}
    for name in ("ended", "live"):
        body = declaration("d-" + uuid.uuid4().hex[:16], gate=GATE, trailer=None,
                           plate="桂A·" + str(uuid.uuid4().int)[:5])
        body["driver"] = {"name": "Hoàng Văn Tú", "nationality": "VN", "id_type": "cccd", "id_number": PERSON,
                          "phone": PHONE}
        out[name] = ok(client.post("/v1/declarations", json=body, headers=ent), 201)["id"]
    ok(client.post(f"/v1/declarations/{out['ended']}/cancel", headers=idem(ent)))
    return out


def household_visits(start_function, peers, tokens) -> None:
    """A team led by the person; its member visits the person's household twice, both verified."""
    client = start_function("community", peer_url_template=peers.template).app.test_client()
    officer = tokens("commune-officer", "cb-dongdang", unit=community_support.DONG_DANG)
    team = community_support.form_team(client, officer)
    member = tokens("team-member", community_support.MEMBER, unit=community_support.DONG_DANG)
    batch = [{"client_id": f"dev1-{uuid.uuid4().hex[:12]}", "team": team["id"], "kind": kind, "household": PERSON,
              "details": details, "happened_at": when(minutes), "revision": 1}
             for kind, details, minutes in (("household-visit", {}, 90),
                                            ("epayment-account", {"bank": "Agribank"}, 80))]
    synced = ok(client.post("/v1/activities/sync", json={"activities": batch}, headers=member))
    assert synced["counts"] == {"created": 2}
    for item in batch:
        ok(client.post(f"/v1/activities/{item['client_id']}/verify", headers=officer))


def shop_and_lot(start_function, peers, tokens) -> None:
    client = start_function("market", peer_url_template=peers.template).app.test_client()
    ok(client.post("/v1/shops", headers=tokens("citizen", PERSON), json={
        "id": "shop-" + uuid.uuid4().hex[:12], "name": "Na Chi Lăng nhà ông Tú", "kind": "household",
        "commune": CHI_LANG, "payment": {"bank_bin": "970415", "account_number": "113366668888",
                                         "account_name": "HOANG VAN TU"}}), 201)
    ok(client.post("/v1/lots", headers=idem(tokens("producer", PERSON)), json={
        "product": "Na Chi Lăng loại 1", "unit": "thùng 10 kg", "quantity": 40, "harvested_on": "2025-08-20",
        "producer_name": "Hoàng Văn Tú", "origin": {"commune": CHI_LANG, "plot": "CL-07"}}), 201)


def identity_and_counters() -> None:
    """The population record the identity function mirrors, the person's signing certificate as the
    documents' custody files it, and a signed-in caller's rate counters."""
    from functions.assistant.function.models import RateWindow as Messages
    from functions.documents.function.models import RateWindow as Verifications, SigningIdentity
    from functions.identity.function.models import RegisteredCitizen
    from lscloud import pseudonyms

    RegisteredCitizen(PERSON, data={"id_number": PERSON, "full_name": "Hoàng Văn Tú", "date_of_birth": "1988-04-02",
                                    "sex": "male"}).save()
    SigningIdentity("p-" + pseudonyms.pseudonym("documents-signer", PERSON),
                    data={"profile": {"name": "Hoàng Văn Tú"}}).save()
    for model in (Messages, Verifications):
        Limiter(model, limit=60, window_s=60).hit("sub:" + PERSON)


def erase_by_cli(monkeypatch, settings, stdin: str, *argv: str) -> int:
    monkeypatch.chdir(ROOT)
    for k, v in settings.env_vars().items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin))
    return cli.main(["erase", "--from-env", "--operator", "op-dpo", *argv])


def by_function(record: dict, part: str) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for entry in record[part]:
        out.setdefault(entry.get("function"), []).append(entry)
    return out


def erased(record: dict, function: str, english: str) -> int:
    return sum(e["count"] for e in by_function(record, "erased").get(function, []) if e["what"].endswith(english))


def holds_traces(text: str) -> list[str]:
    return [t for t in TRACES if t in text]


def test_a_cccd_is_answered_by_every_function_that_holds_the_person(start_function, stubs, peers, tokens, settings,
                                                                   object_store, monkeypatch, capsys):
    from functions.border.function.models import Declaration
    from functions.community.function.activities import household_ref
    from functions.community.function.models import CommuneProgress, Tally

    a_dossier(start_function, stubs, tokens)
    declared = crossings(start_function, stubs, tokens)
    household_visits(start_function, peers, tokens)
    shop_and_lot(start_function, peers, tokens)
    identity_and_counters()
    sets = [f"{community_support.DONG_DANG}.{name}" for name in ("visited", "shop-or-payment")]
    assert all(Tally.exists(s, household_ref(PERSON)) for s in sets)
    reached = CommuneProgress.get(community_support.DONG_DANG).data["reached"]

    assert erase_by_cli(monkeypatch, settings, "020 088 001 111\n", "--kind", "cccd", "--value", "-") == 0
    printed = capsys.readouterr()
    assert holds_traces(printed.out + printed.err) == []
    record = json.loads(printed.out)
    assert set(HOOKED) <= set(record["functions"]) and not set(HOOKED) & set(record["without_hook"])
    assert record["failed"] == {}
    found = record["found_by_function"]
    assert {n: found[n] for n in HOOKED} == {"dossiers": 1, "border": 2, "community": 3, "market": 2, "identity": 1,
                                             "softatm": 0, "documents": 2, "assistant": 1}, found
    kept = by_function(record, "kept")
    for name in HOOKED:   # every function says what it keeps, why and under which law
        assert kept.get(name) and all(k["what"] and k["why"] and k["law"] for k in kept[name]), name
    assert all(k["law"] == erasure.TO_CONFIRM for n in HOOKED for k in kept[n])
    for name in ("dossiers", "community", "softatm", "documents", "assistant"):
        assert any("cannot be found without a full scan" in k["why"] for k in kept[name]), name
    assert any("administrative procedure" in k["what"] and "object lock" in k["why"] for k in kept["dossiers"])
    assert any(k["what"].startswith("bản sao hồ sơ dân cư") for k in kept["identity"])
    assert any("30 minutes" in k["why"] for k in kept["assistant"])
    assert kept["documents"][0]["what"].endswith("the signer's certificate (name, title, agency) and its encrypted "
                                                 "private key")

    # border: the ended crossing lost the health answers and the phone; the live one keeps both
    assert erased(record, "border", "ended declarations: the health answers (the gate's verdict stays) and the "
                                    "driver's phone") == 1
    ended, live = (Declaration.get(declared[n]).data for n in ("ended", "live"))
    assert "phone" not in ended["driver"] and ended["health"]["minimised"] is True and "fever" not in ended["health"]
    assert live["driver"]["phone"] and live["health"]["fever"] is False
    assert any(k["what"].startswith("1 tờ khai chưa kết thúc") for k in kept["border"])
    # community: the household is out of the counted sets, the counts it added stay
    assert erased(record, "community", "the household in its commune's counted sets (the household's pseudonym)") == 2
    assert not any(Tally.exists(s, household_ref(PERSON)) for s in sets)
    assert CommuneProgress.get(community_support.DONG_DANG).data["reached"] == reached
    # the rate counters went; the shop, the lot, the dossier and the population record stay
    assert erased(record, "assistant", "the person's message counters (a rate limit)") == 1
    assert erased(record, "documents", "counters of the document verifications this person made signed in "
                                       "(a rate limit)") == 1
    assert [k["what"].split(" ")[0] for k in kept["market"]] == ["1", "1"]

    stored = object_store.get(settings.bucket, record["record"]).body.decode()
    assert holds_traces(stored) == [] and json.loads(stored)["found"] == record["found"]

    # again: nothing more to erase, the ended crossing minimised once, and nothing holds the number
    assert erase_by_cli(monkeypatch, settings, PERSON + "\n", "--kind", "cccd", "--value", "-") == 0
    again = json.loads(capsys.readouterr().out)
    assert again["failed"] == {} and again["found_by_function"]["community"] == 0
    assert erased(again, "border", "ended declarations: the health answers (the gate's verdict stays) and the "
                                   "driver's phone") == 0
    assert erased(again, "border", "ended declarations already minimised before") == 1
    assert Declaration.get(declared["live"]).data["driver"]["phone"]

    # re-applied from the record alone (after a restore): every hook finds its index by the pseudonyms kept
    reapplied = erasure.run(runtime.current(), erasure.Subject.from_record(record),
                            erasure.load_hooks({n: ROOT / "functions" / n for n in HOOKED})[0], operator="op-dpo",
                            reapplies=record["request"])
    assert reapplied["failed"] == {}
    assert {n: reapplied["found_by_function"][n] for n in ("dossiers", "border", "market")} == \
        {"dossiers": 1, "border": 2, "market": 2}


def test_a_phone_finds_the_soft_atm_withdrawals_of_the_last_days_and_no_index_is_guessed(
        start_function, stubs, tokens, settings, object_store, tmp_path):
    client = start_function("softatm", peer_url_template=stubs["softatm"].template,
                            state_dir=str(tmp_path)).app.test_client()
    runtime.current().bus.ensure_stream()
    op = tokens("operator", "op-1")
    ok(client.post("/v1/banks", headers=op, json={"code": "vcb", "name": "Vietcombank", "webhook_url":
                   "http://127.0.0.1:9/hook", "keys": ["vcb-key-one-0123456789abcdef0123456789"]}), 201)
    ok(client.post("/v1/points/bd-06040/cash-deliveries", json={"id": "fund-0001", "amount_vnd": 50_000_000},
                   headers=op), 201)
    teller = tokens("teller", "teller-1", unit="bd-06040")
    for n, who in enumerate(({"phone": PHONE}, {"phone": "0912345678"}, {"account": "0011223344"})):
        ok(client.post("/v1/withdrawals", headers=teller, json={"id": f"w-erase-{n:04d}", "bank": "vcb",
                                                                "amount_vnd": 1_000_000, "customer_id_number": PERSON,
                                                                **who}), 201)

    hooks, _ = erasure.load_hooks({n: ROOT / "functions" / n for n in HOOKED})
    assert sorted(hooks) == sorted(HOOKED)
    record = erasure.run(runtime.current(), erasure.Subject("phone", "+84 912 345 678"), hooks, operator="op-dpo")
    assert record["failed"] == {}
    assert record["found_by_function"] == {n: (2 if n == "softatm" else 0) for n in HOOKED}
    kept = by_function(record, "kept")
    assert any(k["what"].startswith("2 giao dịch") and "financial transactions" in k["why"] for k in kept["softatm"])
    for name in ("dossiers", "border", "softatm"):   # held there, not indexed by phone: said, not searched
        assert any("cannot be found without a full scan" in k["why"] for k in kept[name]), name
    stored = object_store.get(settings.bucket, record["record"]).body.decode()
    assert holds_traces(json.dumps(record, ensure_ascii=False) + stored) == []

    again = erasure.run(runtime.current(), erasure.Subject.from_record(record), hooks, operator="op-dpo",
                        reapplies=record["request"])
    assert again["failed"] == {} and again["found_by_function"]["softatm"] == 2
