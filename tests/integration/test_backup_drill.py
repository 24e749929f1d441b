"""The restore drill: a populated local cloud is backed up with `lscloud backup`, restored with
`lscloud restore` into a fresh state dir, and the restored cloud, started cold on its own, holds
every document byte for byte (same ETags), every event at its sequence (gaps included), each
durable consumer at the position it had acknowledged, and the keys that read the data. A backup
with one damaged file is refused before anything is written."""

from __future__ import annotations

import asyncio
import json
import shutil

import pytest
from nats.js import api as js_api

from lscloud import events, runtime
from lscloud.bus import Bus
from lscloud.cli import main
from lscloud.delivery import DLQ_SUBJECTS
from lscloud.local.backup import MANIFEST, state_dir_servers
from lscloud.store.objects import ObjectStore
from bucket_scan import every_object  # tests/integration helper module

pytestmark = pytest.mark.integration

# keys a validated store key may hold (percent-escapes, '~', non-ASCII after encoding, nesting)
TRICKY_KEYS = ["dossiers/2026/HS-0001.json", "border-owners/drv~3Aab12cd/x.json", "blobs/sha256/ab/cdef",
               "procedures/th%E1%BB%A7-t%E1%BB%A5c.json"]


def populate(state_dir) -> dict:
    """A local cloud's worth of data: documents written through the store's models, odd keys, a
    binary attachment with metadata, 40 events with a purged head and a deleted one, a consumer
    part-way, a dead letter."""
    from lscloud import store as documents
    from lscloud.store import Model, attributes as A

    class Dossier(Model):
        class Meta:
            table = "drill-dossiers"

        id = A.UnicodeAttribute(hash_key=True)
        data = A.JSONAttribute()
        version = A.VersionAttribute()

    (state_dir / "keys").mkdir(parents=True)
    (state_dir / "keys" / "pseudonym.key").write_text("p" * 48)
    (state_dir / "keys" / "softatm-kek").write_text("kek-for-the-drill")
    with state_dir_servers(state_dir, create=True) as settings:
        store = ObjectStore.from_settings(settings)
        store.ensure_bucket(settings.bucket)
        documents.configure(runtime.Runtime(settings).objects, settings.bucket)
        try:
            for i in range(60):
                d = Dossier(f"HS-{i:04d}", data={"thủ tục": "cấp phép xây dựng", "bước": i % 5})
                d.save()
                if i % 3 == 0:
                    d.data = {**d.data, "bước": 9}
                    d.save()   # a second version: the restored one must be the latest
        finally:
            documents.configure(None)
        for i, key in enumerate(TRICKY_KEYS):
            store.put(settings.bucket, key, json.dumps({"n": i, "tên": "Lạng Sơn"}).encode())
        store.put(settings.bucket, "blobs/attachment.pdf", bytes(range(256)) * 64, content_type="application/pdf",
                  metadata={"sha256": "x" * 8, "filename": "don-xin.pdf"})

        async def events_and_positions():
            bus = Bus(settings, name="drill")
            await bus.ensure_stream()
            await bus.ensure_stream(f"{settings.stream}_DLQ", DLQ_SUBJECTS)
            for i in range(40):
                await bus.publish(events.new_event("vn.langson.border.plate.read.v1", "/drill", {"i": i}))
            js = bus.js
            await js.purge_stream(settings.stream, seq=4)     # the head aged out: first_seq 4
            await js.delete_msg(settings.stream, 17)          # an interior gap
            await bus.publish_message("lscloud-dlq.border.plate", b'{"dead": true}', {"Nats-Msg-Id": "dead-1"},
                                      stream=f"{settings.stream}_DLQ")
            await js.add_consumer(settings.stream, js_api.ConsumerConfig(
                durable_name="border-plate", ack_policy=js_api.AckPolicy.EXPLICIT,
                deliver_policy=js_api.DeliverPolicy.ALL, filter_subject="lscloud.border.plate.read"))
            await js.add_consumer(settings.stream, js_api.ConsumerConfig(
                durable_name="untouched", ack_policy=js_api.AckPolicy.EXPLICIT, deliver_policy=js_api.DeliverPolicy.ALL))
            psub = await js.pull_subscribe_bind(durable="border-plate", stream=settings.stream)
            for msg in await psub.fetch(10, timeout=10):
                await msg.ack_sync()
            info = await js.consumer_info(settings.stream, "border-plate")
            state = (await js.stream_info(settings.stream)).state
            await bus.close(drain=False)
            return {"ack_floor": info.ack_floor.stream_seq, "pending": info.num_pending,
                    "stream": (state.first_seq, state.last_seq, state.messages)}

        positions = asyncio.run(events_and_positions())
        objects = {k: (o.body, o.etag) for k, o in every_object(store, settings.bucket).items()}
    return {"objects": objects, "positions": positions}


@pytest.fixture(scope="module")
def drilled(tmp_path_factory):
    """A populated local cloud (stopped) and its backup by `lscloud backup`: (source, backup, before)."""
    root = tmp_path_factory.mktemp("drill")
    source, backup = root / "source", root / "backup"
    before = populate(source)
    assert main(["--state-dir", str(source), "backup", str(backup)]) == 0
    return source, backup, before


def test_backup_then_restore_into_a_fresh_state_dir_gives_the_same_cloud(drilled, tmp_path, capsys):
    (source, backup, before), target = drilled, tmp_path / "restored"
    assert before["positions"]["stream"] == (4, 40, 36) and before["positions"]["ack_floor"] > 4
    assert len(before["objects"]) == 60 + len(TRICKY_KEYS) + 1

    assert main(["--state-dir", str(target), "restore", str(backup)]) == 0
    assert "restored and verified" in capsys.readouterr().out

    # the restored state dir, started cold: the same documents, events, positions and keys
    for name in ("pseudonym.key", "softatm-kek"):
        assert (target / "keys" / name).read_bytes() == (source / "keys" / name).read_bytes()
    with state_dir_servers(target, create=False) as settings:
        store = ObjectStore.from_settings(settings)
        after = {k: (o.body, o.etag) for k, o in every_object(store, settings.bucket).items()}
        assert after.keys() == before["objects"].keys()
        for key, (body, etag) in before["objects"].items():
            assert after[key][0] == body, key
            assert after[key][1] == etag, key   # the version a reader holds (If-Match) still matches
        assert store.head(settings.bucket, "blobs/attachment.pdf").size == 256 * 64

        async def positions():
            bus = Bus(settings, name="drill-check", create_stream=False)
            await bus.connect()
            js = bus.js
            state = (await js.stream_info(settings.stream)).state
            info = await js.consumer_info(settings.stream, "border-plate")
            untouched = await js.consumer_info(settings.stream, "untouched")
            # the dispatcher would go on with the first event not acknowledged before the backup
            psub = await js.pull_subscribe_bind(durable="border-plate", stream=settings.stream)
            (nxt,) = await psub.fetch(1, timeout=10)
            dead = (await js.stream_info(f"{settings.stream}_DLQ")).state.messages
            # a new event continues the sequence after the last one restored
            seq = await bus.publish(events.new_event("vn.langson.border.plate.read.v1", "/drill", {"i": 99}))
            await bus.close(drain=False)
            return state, info, untouched, nxt, dead, seq

        state, info, untouched, nxt, dead, seq = asyncio.run(positions())
    assert (state.first_seq, state.last_seq, state.messages) == before["positions"]["stream"]
    assert info.ack_floor.stream_seq == before["positions"]["ack_floor"]
    assert info.num_pending == before["positions"]["pending"]
    assert untouched.num_pending == 36
    assert nxt.metadata.sequence.stream == before["positions"]["ack_floor"] + 1
    assert json.loads(nxt.data)["data"]["i"] == nxt.metadata.sequence.stream - 1  # the very event, not a copy
    assert dead == 1 and seq == 41


def test_a_damaged_backup_is_refused_before_anything_is_written(drilled, tmp_path, capsys):
    source, backup, _ = drilled
    damaged = tmp_path / "damaged"
    shutil.copytree(backup, damaged)
    manifest = json.loads((damaged / MANIFEST).read_text())
    assert manifest["report"]["objects"] == 60 + len(TRICKY_KEYS) + 1
    victim = next((damaged / "objects").iterdir())
    victim.write_bytes(victim.read_bytes() + b" ")
    target = tmp_path / "never"
    assert main(["--state-dir", str(target), "restore", str(damaged)]) == 1
    assert "damaged" in capsys.readouterr().err
    assert not target.exists()   # nothing started, nothing written
    # and a restore never goes over a state dir that holds data
    assert main(["--state-dir", str(source), "restore", str(backup)]) == 1
    assert "fresh state dir" in capsys.readouterr().err


def test_backup_needs_a_state_dir_with_data(tmp_path, capsys):
    assert main(["--state-dir", str(tmp_path / "empty"), "backup", str(tmp_path / "b")]) == 1
    assert "nothing to back up" in capsys.readouterr().err
