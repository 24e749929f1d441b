"""The soft ATM's ledger and transfer rules, in plain Python (a journal in memory).

Property: whatever sequence of operations (deliveries, collections, withdrawals that are held,
paid out or released, deposits taken in, retries of any of them, racing threads), every movement is
two entries summing to zero, no point account is ever negative, each transfer moves money at most
once per phase, and the replayed journal equals the balances the heads report.
"""

from __future__ import annotations

import json
import threading

import pytest
from hypothesis import given, settings, strategies as st

from functions.softatm.function import admission, ledger, transfers
from lscloud import errors
from lscloud.resends import IdReused
from lscloud.statemachine import IllegalTransition

POINTS = ["bd-06040", "bd-06043"]
BANKS = ["vcb", "bidv"]

op = st.one_of(
    st.tuples(st.just("delivery"), st.sampled_from(POINTS), st.integers(1, 50).map(lambda k: k * 100_000),
              st.integers(0, 5)),
    st.tuples(st.just("collection"), st.sampled_from(POINTS), st.integers(1, 50).map(lambda k: k * 100_000),
              st.integers(0, 5)),
    st.tuples(st.just("withdraw"), st.sampled_from(POINTS), st.integers(1, 30).map(lambda k: k * 100_000),
              st.integers(0, 9)),
    st.tuples(st.just("finish"), st.sampled_from(["payout", "release"]), st.integers(0, 9), st.booleans()),
    st.tuples(st.just("deposit"), st.sampled_from(POINTS), st.integers(1, 30).map(lambda k: k * 100_000),
              st.integers(0, 9)),
)


class Replica:
    """Another process's view of the same journal: the same stored entries and heads, and its own
    :class:`ledger.Tails` (what it remembers of each journal's end goes stale as others append)."""

    def __init__(self, stored: ledger.MemoryJournal, head_every: int = 3):
        self.stored, self.tails = stored, ledger.Tails(keep=6, head_every=head_every)

    def read_head(self, point):
        return self.stored.read_head(point)

    def save_head(self, point, head, token):
        return self.stored.save_head(point, head, token)

    def read_entry(self, point, seq):
        return self.stored.read_entry(point, seq)

    def append(self, point, seq, entry):
        return self.stored.append(point, seq, entry)


@settings(max_examples=150, deadline=None)
@given(st.lists(op, max_size=40))
def test_any_sequence_keeps_the_ledger_exact(ops):
    _check_sequence(ops, [ledger.MemoryJournal()])


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(op, st.integers(0, 2)), max_size=40))
def test_any_sequence_through_replicas_that_remember_their_tails_keeps_the_ledger_exact(ops):
    """The same property when each operation runs in one of three processes sharing the store: two
    remember the journals' ends (tails that go stale whenever another appends, small enough to be
    outrun) and one reads the store every time."""
    stored = ledger.MemoryJournal()
    journals = [Replica(stored), Replica(stored, head_every=1), stored]
    _check_sequence([o for o, _ in ops], journals, [r for _, r in ops])


def _check_sequence(ops, journals, runs_in=None):
    j = journals[0] if len(journals) == 1 else journals[-1]
    held: dict[str, tuple[str, int, str]] = {}   # transfer -> (point, amount, bank)
    finished: set[str] = set()
    deposited: dict[str, str] = {}
    for n, o in enumerate(ops):
        kind = o[0]
        if runs_in is not None:
            j = journals[runs_in[n]]
        try:
            if kind in ("delivery", "collection"):
                _, point, amount, ref = o
                # an operation id belongs to one point (the store claims it first, create-only)
                ledger.apply(j, ledger.movement(kind, point, amount, ref=f"op{ref}{kind}{point}"))
            elif kind == "withdraw":
                _, point, amount, t = o
                tid = f"w{t}"
                if tid in held:  # a retry of the same hold: the first amount stands
                    point, amount, _b = held[tid]
                ledger.apply(j, ledger.movement("hold", point, amount, ref=tid, bank_code=BANKS[t % 2]))
                held[tid] = (point, amount, BANKS[t % 2])
            elif kind == "finish":
                _, how, t, retry = o
                tid = f"w{t}"
                if tid not in held:
                    continue
                point, amount, bank = held[tid]
                if tid in finished:  # the other ending after one happened is refused by the state machine
                    how = finished_how[tid]
                m = ledger.movement(how, point, amount, ref=tid, bank_code=bank)
                ledger.apply(j, m)
                if retry:
                    assert not ledger.apply(j, m).new
                finished.add(tid)
                finished_how[tid] = how
            elif kind == "deposit":
                _, point, amount, t = o
                tid = f"d{t}"
                point = deposited.get(tid, point)  # the transfer document pins the point of a resend
                ledger.apply(j, ledger.movement("intake", point, amount, ref=tid, bank_code=BANKS[t % 2]))
                deposited.setdefault(tid, point)
        except ledger.Insufficient:
            pass
    j = journals[-1]   # the store itself, read afresh
    report = ledger.verify(j, POINTS)
    assert report["ok"], report["problems"]
    ids = [e["movement"]["id"] for p in POINTS for e in ledger.entries(j, p)]
    assert len(ids) == len(set(ids))                     # each transfer moves money at most once per phase
    for p in POINTS:
        b = ledger.balances(j, p)
        assert b.get(ledger.cash(p), 0) >= 0 and b.get(ledger.held(p), 0) >= 0
        # held cash is exactly the holds not yet paid out or released
        open_holds = sum(a for t, (pt, a, _) in held.items() if pt == p and t not in finished)
        assert b.get(ledger.held(p), 0) == open_holds
    assert sum(report["balances"].values()) == 0


finished_how: dict[str, str] = {}


@pytest.fixture(autouse=True)
def _reset():
    finished_how.clear()


class Lockstep(ledger.MemoryJournal):
    """A journal that holds each writer's first append until every writer has reached its own:
    all of them have read the same head and computed their entry against the same balances, so
    the create-only append is what must decide. (Threads left to race rarely interleave like this
    under the GIL: a journal without create-only appends passed the old version of this test.)"""

    def __init__(self, writers: int):
        super().__init__()
        self.gate = threading.Barrier(writers, timeout=30)
        self.first = threading.local()

    def append(self, point, seq, entry):
        if not getattr(self.first, "done", False):
            self.first.done = True
            self.gate.wait()
        return super().append(point, seq, entry)


def test_writers_that_read_the_same_head_never_overdraw_or_double_apply():
    p = POINTS[0]
    refs = ["t0", "t1", "t2", "t3", "t0", "t1"]   # four holds, two of them sent twice
    j = Lockstep(len(refs))
    j.first.done = True   # this thread's appends (the funding) are not held
    ledger.apply(j, ledger.movement("delivery", p, 1_000_000, ref="fund"))
    results: dict[int, object] = {}

    def one(i):
        try:
            results[i] = ledger.apply(j, ledger.movement("hold", p, 300_000, ref=refs[i], bank_code="vcb"))
        except ledger.Insufficient as exc:
            results[i] = exc

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(refs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not j.gate.broken, "every writer reached its append with the same head"
    journal = [e["movement"]["id"] for e in ledger.entries(j, p)]
    told_new = [f"{refs[i]}:hold" for i, r in results.items() if isinstance(r, ledger.Applied) and r.new]
    # every writer told "applied" has its own entry in the journal, and no movement is there twice
    assert sorted(told_new) == sorted(journal[1:]) and len(set(journal)) == len(journal)
    refused = {refs[i] for i, r in results.items() if isinstance(r, ledger.Insufficient)}
    assert len(set(told_new)) == 3 and len(refused) == 1 and not refused & {m[:-5] for m in told_new}
    b = ledger.balances(j, p)
    assert b[ledger.held(p)] == 900_000 and b[ledger.cash(p)] == 100_000   # three holds fit, each once
    assert ledger.verify(j, [p])["ok"]


def test_a_crash_between_append_and_head_is_rolled_forward():
    j = ledger.MemoryJournal()
    p = POINTS[0]
    ledger.apply(j, ledger.movement("delivery", p, 500_000, ref="a"))
    j.save_head = lambda *a: None   # the writer dies before saving its head
    ledger.apply(j, ledger.movement("delivery", p, 200_000, ref="b"))
    assert j.heads[p][0]["seq"] == 1
    assert ledger.balances(j, p)[ledger.cash(p)] == 700_000
    again = ledger.apply(j, ledger.movement("delivery", p, 200_000, ref="b"))
    assert not again.new and ledger.balances(j, p)[ledger.cash(p)] == 700_000


def test_verify_finds_a_tampered_entry():
    j = ledger.MemoryJournal()
    p = POINTS[0]
    ledger.apply(j, ledger.movement("delivery", p, 500_000, ref="a"))
    j.rows[(p, 1)]["movement"]["entries"][1]["amount"] = -400_000
    assert not ledger.verify(j, [p])["ok"]


def test_a_reused_id_names_each_differing_field_and_no_value():
    first = {"id": "w-00000001", "amount_vnd": 500_000, "account": "0123456789", "phone": None,
             "customer_id_number": "020090001234"}
    doc = {"id": first["id"], "requests": {"create": first}}
    assert admission.resend(doc, "create", dict(first)) is doc
    again = {**first, "amount_vnd": 600_000, "account": "0123456788", "customer_id_number": "020090005678"}
    with pytest.raises(IdReused) as exc:
        admission.resend(doc, "create", again)
    body = json.dumps(exc.value.problem().to_dict())
    assert exc.value.problem().status == 409
    assert [e["field"] for e in exc.value.problem().errors] == ["/account", "/amount_vnd", "/customer_id_number"]
    for value in ("0123456789", "500000", "020090001234", "0123456788", "600000", "020090005678"):
        assert value not in body


def test_create_checks_the_customer_id_and_one_of_account_or_phone():
    good = {"id": "w-00000001", "bank": "vcb", "amount_vnd": 500_000, "account": "0123456789",
            "customer_id_number": "020090001234"}
    assert transfers.normalise_create(good, "withdrawal")["customer_id_number"] == "020090001234"
    with pytest.raises(errors.Invalid) as exc:
        transfers.normalise_create({**good, "customer_id_number": "999090001234", "phone": "0912345678"}, "withdrawal")
    fields = {e["field"] for e in exc.value.errors}
    assert fields == {"/account", "/customer_id_number"}


def test_state_machine():
    m = transfers.MACHINE
    doc = {"kind": "withdrawal", "state": "RECEIVED"}
    assert m.check(doc, "reserve").target == "RESERVED"
    with pytest.raises(IllegalTransition):
        m.check(doc, "commit")
    assert m.check({**doc, "state": "RESERVED"}, "commit").target == "COMMITTED"
    # a reservation nobody finishes expires too (SOFTATM_RESERVED_EXPIRY_S); a final transfer never does
    assert m.check({**doc, "state": "RESERVED"}, "expire").target == "ABORTED"
    with pytest.raises(IllegalTransition):
        m.check({**doc, "state": "COMMITTED"}, "expire")
    with pytest.raises(IllegalTransition):
        m.check({**doc, "state": "COMMITTED"}, "abort")   # no reversals
    assert m.check({"kind": "deposit", "state": "RECEIVED"}, "confirm").target == "COMMITTED"
    with pytest.raises(IllegalTransition) as exc:
        m.check({"kind": "deposit", "state": "RECEIVED"}, "reserve")   # withdrawals are reserved, deposits confirmed
    assert exc.value.allowed_from == []
    with pytest.raises(IllegalTransition):
        m.check({"kind": "withdrawal", "state": "RECEIVED"}, "confirm")


def test_a_move_keeps_the_microsecond_timestamps_callers_see():
    doc = {"kind": "withdrawal", "state": "RECEIVED"}
    at = transfers.now()
    t = transfers.MACHINE.apply(doc, "reserve", transfers.MACHINE.system, at=at)
    assert doc["state"] == "RESERVED" and t.fact == "transfer.reserved"
    assert transfers.iso(at).endswith("Z") and len(transfers.iso(at).split(".")[1]) == 7   # 6 digits and Z


def test_a_stale_tail_never_refuses_what_the_journal_allows_nor_applies_twice():
    """A replica whose tail is behind (another appended since) is corrected by the create-only
    append: it refuses only on the true balances, and finds a movement the other one appended."""
    stored = ledger.MemoryJournal()
    a, b = Replica(stored), Replica(stored)
    p = POINTS[0]
    ledger.apply(a, ledger.movement("delivery", p, 100_000, ref="fund1"))
    ledger.apply(b, ledger.movement("delivery", p, 900_000, ref="fund2"))   # a does not know of it
    hold = ledger.movement("hold", p, 600_000, ref="w1", bank_code="vcb")
    done = ledger.apply(a, hold)
    assert done.new and done.seq == 3 and done.before[ledger.cash(p)] == 1_000_000
    assert not ledger.apply(b, hold).new                                     # b's tail learns it was done
    with pytest.raises(ledger.Insufficient):
        ledger.apply(b, ledger.movement("hold", p, 500_000, ref="w2", bank_code="vcb"))
    assert ledger.verify(stored, [p])["ok"]
    assert [e["movement"]["id"] for e in ledger.entries(stored, p)] == ["fund1:delivery", "fund2:delivery", "w1:hold"]


def test_a_tail_saves_the_stored_head_every_few_entries_and_takes_a_newer_token():
    stored = ledger.MemoryJournal()
    a, b = Replica(stored, head_every=2), Replica(stored, head_every=2)
    p = POINTS[0]
    for n in range(3):
        ledger.apply(a, ledger.movement("delivery", p, 1000, ref=f"a{n}"))
    assert stored.heads[p][0]["seq"] == 2
    for n in range(2):
        ledger.apply(b, ledger.movement("delivery", p, 1000, ref=f"b{n}"))
    assert stored.heads[p][0]["seq"] == 4          # b read the head at 2 and entry 3, saved at 4
    ledger.apply(a, ledger.movement("delivery", p, 1000, ref="c0"))
    # a's token was out of date (b saved since): its save failed; the next one due reads the stored head
    assert stored.heads[p][0]["seq"] == 4
    ledger.apply(a, ledger.movement("delivery", p, 1000, ref="c1"))
    assert stored.heads[p][0]["seq"] == 7
    assert ledger.verify(stored, [p])["ok"]


def test_a_tail_keeps_its_last_entries_only_however_it_learnt_them():
    """What a process keeps of a journal's end is bounded (journal_ends.KEEP: 1,024 entries of 200
    points filled ~580 MB); an older movement is looked up in the journal, and still applies once."""
    from functions.softatm.function import journal_ends

    assert journal_ends.KEEP == 128 and ledger.Tails().keep == journal_ends.KEEP
    stored = ledger.MemoryJournal()
    p = POINTS[0]
    for n in range(10):
        ledger.apply(stored, ledger.movement("delivery", p, 1000, ref=f"d{n}"))
    r = Replica(stored)                      # keeps 6
    head, _ = stored.read_head(p)
    r.tails.start(ledger._tails(r, p)[1], ledger.Head(), None, [stored.read_entry(p, s) for s in range(1, 11)])
    key = ledger._tails(r, p)[1]
    assert not r.tails.covers(key, 3) and r.tails.covers(key, 4)
    assert r.tails.entry_of(key, "d1:delivery") is None and r.tails.entry_of(key, "d9:delivery") is not None
    for n in range(10):                      # retries of them all: none applies twice
        assert ledger.apply(r, ledger.movement("delivery", p, 1000, ref=f"d{n}")).new is False
    assert ledger.verify(stored, [p])["ok"] and stored.read_head(p)[0].balances == head.balances
