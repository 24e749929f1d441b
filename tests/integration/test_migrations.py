"""Data an older version wrote with personal identifiers in its object keys, moved against a real weed
mini: the generic re-keying, and every function's migration hook run the way `lscloud up` runs it
(a child process per function, once per version, idempotent)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
from peer_modules import peer_module

import lscloud.store as store
from functions.border.function import models as border
from functions.dossiers.function import models as dossiers
from functions.identity.function import population as identity
from functions.softatm.function import limits as softatm, models as softatm_models
from lscloud import pseudonyms, runtime
from lscloud import manifest as manifests
from lscloud import serve as run_function
from lscloud.local.supervisor import function_env, run_migration
from lscloud.store import Model, attributes as A
from lscloud.store.keys import newest_first as keys_newest
from lscloud.store.rekey import copy_newest_first, rekey

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
CCCD, DRIVER, PASSPORT, ACCOUNT, PLATE = "020095001234", "020088002468", "E7654321", "9900000007", "12C34567"
KEY = "migration-test-pseudonym-key-0123456789"


class OldOwners(Model):
    class Meta:
        table = "t-owners"

    owner = A.UnicodeAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    ref = A.UnicodeAttribute()


class Owners(Model):
    class Meta:
        table = "t-owners"

    owner = A.PseudonymAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    ref = A.UnicodeAttribute()


@pytest.fixture
def rt(settings):
    installed = runtime.install(runtime.Runtime(settings.replace(pseudonym_key=KEY)))
    yield installed
    runtime.uninstall()
    pseudonyms.configure(settings.pseudonym_key)


def keys_in(object_store, bucket, prefix=""):
    return [o.key for o in object_store.list(bucket, prefix)]


def test_rekey_moves_every_item_once_and_finishes_a_half_done_run(rt, object_store, bucket):
    for owner in (f"drv:{CCCD}", f"drv:{PASSPORT}"):
        for n in range(3):
            OldOwners(owner, f"{n:016d}_d{n}", ref=f"d{n}").save()
    OldOwners("ent:0100109106", "0000000000000001_x", ref="x").save()
    # a run that crashed after copying one item and before deleting the old copy
    stranded = OldOwners.get(f"drv:{CCCD}", f"{0:016d}_d0")
    object_store.put(bucket, Owners(f"drv:{CCCD}", f"{0:016d}_d0")._key(), stranded._body(), if_none_match=True)

    report = rekey(Owners)
    assert (report.seen, report.moved, report.already_there, report.changed_meanwhile) == (8, 6, 1, 0)
    listed = keys_in(object_store, bucket, "t-owners/")
    assert len(listed) == 7 and not any(CCCD in k or PASSPORT in k or "0100109106" in k for k in listed)
    mine = Owners.query(f"drv:{CCCD}")
    assert [i.ref for i in mine] == ["d0", "d1", "d2"] and mine[0].owner == f"drv:{CCCD}"
    assert [i.ref for i in Owners.query(f"drv:{PASSPORT}", range_prefix="0000")] == ["d0", "d1", "d2"]
    again = rekey(Owners)
    assert (again.seen, again.moved, again.already_there) == (7, 0, 0)


class RecentOwners(Model):
    class Meta:
        table = "t-owners-recent"

    owner = A.PseudonymAttribute(hash_key=True)
    entry = A.UnicodeAttribute(range_key=True)
    ref = A.UnicodeAttribute()


def test_an_oldest_first_index_is_copied_newest_first_once(rt):
    """"My dossiers", "my declarations": an index listed oldest first gets its newest-first twin;
    an item the new code wrote meanwhile is kept, and a second run copies nothing."""
    for n, at in enumerate((1_796_284_148_366_070, 1_796_284_148_366_071, 1_796_284_154_731_999)):
        Owners(f"drv:{CCCD}", f"{at:016d}_d{n}", ref=f"d{n}").save()
    written = RecentOwners(f"drv:{CCCD}", f"{keys_newest(1_796_284_154_731_999)}_d2", ref="d2-new").save()
    assert copy_newest_first(Owners, RecentOwners) == {"table": "t-owners-recent", "copied": 2}
    assert [i.ref for i in RecentOwners.query(f"drv:{CCCD}")] == ["d2-new", "d1", "d0"]
    assert RecentOwners.get(f"drv:{CCCD}", written.entry).ref == "d2-new"
    assert copy_newest_first(Owners, RecentOwners)["copied"] == 0


def test_rekey_after_the_pseudonym_key_changed(rt, settings):
    Owners(f"drv:{CCCD}", "1_a", ref="a").save()
    pseudonyms.configure("a-rotated-pseudonym-key-0123456789abcdef")
    assert list(Owners.query(f"drv:{CCCD}")) == []     # the new key does not find the old pseudonym
    assert rekey(Owners).moved == 1
    assert [i.ref for i in Owners.query(f"drv:{CCCD}")] == ["a"]


def _old_layout(object_store, bucket) -> dict[str, str]:
    """Write what the previous version wrote, with the models of the time (clear keys)."""
    def old(table, fields):
        ns = {"Meta": type("Meta", (), {"table": table}), **fields}
        return type(f"Old_{table.replace('-', '_')}", (Model,), ns)

    u, j = A.UnicodeAttribute, A.JSONAttribute
    border_owners = old("border-owners", {"owner": u(hash_key=True), "entry": u(range_key=True), "declaration_id": u()})
    border_owners(f"drv:{DRIVER}", "1796284154731999_d1", declaration_id="d1").save()
    border_owners(f"drv:{PASSPORT}", "1796284154731999_d2", declaration_id="d2").save()
    old("border-plates", {"plate": u(hash_key=True), "declaration_id": u(range_key=True)})(PLATE, "d1").save()
    old("dossiers-owners", {"owner": u(hash_key=True), "entry": u(range_key=True), "dossier_id": u()})(
        CCCD, "1796284148366070_h1", dossier_id="h1").save()
    citizen = {"id_number": CCCD, "full_name": "Nguyễn Văn An", "date_of_birth": "1995-03-12", "sex": "male"}
    old("identity-population", {"id_number": u(hash_key=True), "data": j()})(CCCD, data=citizen).save()
    old("bank-sim-accounts", {"number": u(hash_key=True), "balance": A.NumberAttribute(), "holds": j(),
                              "version": A.VersionAttribute()})(ACCOUNT, balance=5, holds={}).save()
    # softatm: a daily counter keyed by the unkeyed sha256 of the customer, and the transfer it counts
    transfer = {"id": "w-old-0001", "kind": "withdrawal", "bank": "vcb", "account": ACCOUNT, "phone": None,
                "day": "2026-01-05", "amount_vnd": 500_000, "state": "COMMITTED"}
    softatm_models.Transfer("w-old-0001", state="COMMITTED", bank="vcb", point="bd-06040", data=transfer).save()
    unkeyed = hashlib.sha256(f"vcb\nacct:{ACCOUNT}".encode()).hexdigest()[:32]
    old_day = f"vcb_withdrawal_{unkeyed}_2026-01-05"
    softatm_models.CustomerDay(old_day, used={"w-old-0001": 500_000}).save()
    return {"old_customer_day": old_day}


def test_every_function_migrates_its_old_keys_once(rt, settings, object_store, bucket, monkeypatch, capsys):
    old = _old_layout(object_store, bucket)
    before = keys_in(object_store, bucket)
    assert sum(CCCD in k or DRIVER in k or PASSPORT in k or ACCOUNT in k or PLATE in k for k in before) == 6

    found = {m.name: m for m in manifests.discover([ROOT / "functions", ROOT / "peers"])}
    hooked = sorted(n for n, m in found.items() if m.migrate_module)
    assert hooked == ["border", "community", "dossiers", "identity", "market", "reports", "softatm",
                      "softatm-bank-sim"]
    env_settings = settings.replace(pseudonym_key=KEY)
    for k, v in env_settings.env_vars().items():
        monkeypatch.setenv(k, v)
    # `lscloud up` runs each hook in a child (run_migration); in-process here, but for one below
    for name in hooked:
        result = run_function.migrate(found[name].root)
        assert result.get("migrated") is True, result

    after = keys_in(object_store, bucket)
    assert not [k for k in after if CCCD in k or DRIVER in k or PASSPORT in k or ACCOUNT in k or PLATE in k]
    assert old["old_customer_day"] not in after
    # and every index answers by the clear value, as the functions ask
    sim = peer_module("softatm-bank-sim", "models")
    store.configure(object_store, bucket)
    assert [e.declaration_id for e in border.OwnerIndex.query(f"drv:{DRIVER}")] == ["d1"]
    assert [e.declaration_id for e in border.OwnerIndex.query(f"drv:{PASSPORT}")] == ["d2"]
    assert [e.declaration_id for e in border.OwnerRecent.query(f"drv:{DRIVER}")] == ["d1"]   # newest first
    assert [e.declaration_id for e in border.PlateIndex.query(PLATE)] == ["d1"]   # by the plate's pseudonym
    assert [e.dossier_id for e in dossiers.OwnerIndex.query(CCCD)] == ["h1"]
    assert [e.dossier_id for e in dossiers.OwnerRecent.query(CCCD)] == ["h1"]   # "my dossiers", newest first
    assert identity.StoreRegistry().lookup(CCCD).full_name == "Nguyễn Văn An"
    assert sim.Account.get(ACCOUNT).balance == 5
    day = softatm.daily_key({"bank": "vcb", "kind": "withdrawal", "account": ACCOUNT, "phone": None,
                             "day": "2026-01-05"})
    assert softatm_models.CustomerDay.get(day).used == {"w-old-0001": 500_000}

    # once: a second `lscloud up` (a child process with the function's environment, as up starts
    # it) finds the marker and moves nothing
    assert run_migration(found["border"], function_env(found["border"], env_settings, 0)) == {
        "function": "border", "migrated": False, "reason": "already done",
        "marker": run_function.migrate(found["border"].root)["marker"]}
    assert keys_in(object_store, bucket) == after

    # what an operator runs against the cluster: the function's own environment, forced
    monkeypatch.chdir(ROOT)
    from lscloud import cli

    assert cli.main(["migrate", "--from-env", "--force", "border"]) == 0
    assert "✓ border: migrated" in capsys.readouterr().out
    assert keys_in(object_store, bucket) == after
