"""`lscloud backup` / `lscloud restore`: the local cloud's data in a folder, and back.

A backup is a folder (or a tar of it) that holds everything a state dir needs to be itself again:

- ``objects/``: every object of the bucket, one file each (named by the sha256 of its key), and
  ``objects.jsonl``: key, file, size, sha256, content type and user metadata of each. Documents,
  attachments, indexes, run-once records and the seed and migration markers: all of it;
- ``streams/<name>.jsonl`` and ``streams/<name>.json``: every message of the events stream and its
  dead-letter stream (sequence, subject, headers, data) and the stream's config, state and durable
  consumers with the position each had acknowledged up to;
- ``keys/``: the state dir's keys (dev token key, the dispatcher's key, the pseudonym key that keys
  every personal index, soft-ATM's key-encryption key): without them the data cannot be read;
- ``manifest.json``: what is where, with a sha256 of every file, checked before a restore writes
  anything.

A restore goes into a **fresh** state dir only (it refuses one that already holds data) and gives
back the same objects byte for byte (the same ETags: S3 derives them from the content), the same
stream with the same sequence numbers (gaps included), and each durable consumer at the position
it had acknowledged: what was delivered but not acknowledged is delivered again, as after any
crash (handlers are idempotent on the event id). Then it checks the result against the backup
(:func:`verify`). Message timestamps are the time of the restore: a stream's ``max_age`` counts
from there.

Both commands work on a state dir with no `lscloud up` running (they start its servers privately,
on free ports, and stop them); ``backup`` also reads a running cloud, though what it copies is then
not one instant. The cluster has its own backups (infra/README.md, "Backups and restore").
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator

from .. import nats_import  # noqa: F401 - first: nats-py without aiohttp (see there)

import nats.js.errors
from nats.js import api as js_api

from .. import config
from ..bus import Bus
from ..delivery import dlq_stream
from ..store.errors import DoesNotExist
from ..store.objects import ObjectStore

FORMAT = 1
MANIFEST = "manifest.json"
# the header JetStream dedupes on: kept in the backup, put back with the message
MSG_ID = "Nats-Msg-Id"


class BackupError(RuntimeError):
    """A backup or restore cannot be done (the message says why and what to do)."""


@dataclass
class Report:
    """What a backup or restore covered."""

    objects: int = 0
    bytes: int = 0
    streams: dict[str, dict] = field(default_factory=dict)   # name -> {"messages", "first_seq", "last_seq", "consumers"}
    keys: list[str] = field(default_factory=list)
    took_s: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stream_names(settings: config.Settings) -> tuple[str, str]:
    return settings.stream, dlq_stream(settings)


# --- backup --------------------------------------------------------------------------------------

def backup(settings: config.Settings, dest: Path, *, keys_dir: Path | None) -> Report:
    """Write the bucket, the streams and the keys of ``settings`` into the new folder ``dest``."""
    started = time.monotonic()
    dest = Path(dest)
    if dest.exists() and any(dest.iterdir()):
        raise BackupError(f"{dest} is not empty: a backup goes into a new folder")
    (dest / "objects").mkdir(parents=True, exist_ok=True)
    (dest / "streams").mkdir(exist_ok=True)
    report = Report()
    files: dict[str, str] = {}

    store = ObjectStore.from_settings(settings)
    index = []
    for info in store.list(settings.bucket, ""):
        obj = store.get(settings.bucket, info.key)
        name = _sha256(info.key.encode())
        (dest / "objects" / name).write_bytes(obj.body)
        index.append({"key": info.key, "file": name, "size": len(obj.body), "sha256": _sha256(obj.body),
                      "etag": obj.etag, "content_type": obj.content_type, "metadata": obj.metadata})
        report.objects += 1
        report.bytes += len(obj.body)
    _write_lines(dest / "objects.jsonl", index)
    files["objects.jsonl"] = _file_digest(dest / "objects.jsonl")

    report.streams = asyncio.run(_backup_streams(settings, dest / "streams"))
    for path in sorted((dest / "streams").iterdir()):
        files[f"streams/{path.name}"] = _file_digest(path)

    if keys_dir is not None and Path(keys_dir).is_dir():
        (dest / "keys").mkdir(mode=0o700)
        for key in sorted(Path(keys_dir).iterdir()):
            if key.is_file():
                shutil.copy2(key, dest / "keys" / key.name)
                os.chmod(dest / "keys" / key.name, 0o600)
                files[f"keys/{key.name}"] = _file_digest(dest / "keys" / key.name)
                report.keys.append(key.name)
    report.took_s = round(time.monotonic() - started, 3)
    manifest = {"format": FORMAT, "created_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                "bucket": settings.bucket, "streams": list(stream_names(settings)), "files": files,
                "report": report.as_dict()}
    (dest / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True))
    return report


def _write_lines(path: Path, rows) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, sort_keys=True, ensure_ascii=False) + "\n")


def _read_lines(path: Path) -> Iterator[dict]:
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


async def _backup_streams(settings: config.Settings, out: Path) -> dict[str, dict]:
    bus = Bus(settings, name="lscloud-backup", create_stream=False)
    await bus.connect()
    summary: dict[str, dict] = {}
    try:
        js = bus.js
        for name in stream_names(settings):
            try:
                info = await js.stream_info(name)
            except nats.js.errors.NotFoundError:
                continue
            rows = []
            state = info.state
            if state.messages:
                for seq in range(state.first_seq, state.last_seq + 1):
                    try:
                        msg = await js.get_msg(name, seq)
                    except nats.js.errors.NotFoundError:
                        continue  # deleted: a gap the restore keeps
                    rows.append({"seq": msg.seq, "subject": msg.subject, "headers": dict(msg.headers or {}),
                                 "data": base64.b64encode(msg.data or b"").decode()})
            _write_lines(out / f"{name}.jsonl", rows)
            consumers = []
            for c in await js.consumers_info(name):
                if not c.config.durable_name:
                    continue
                consumers.append({"config": c.config.as_dict(), "ack_floor": c.ack_floor.stream_seq,
                                  "delivered": c.delivered.stream_seq, "num_pending": c.num_pending,
                                  "num_ack_pending": c.num_ack_pending})
            doc = {"config": info.config.as_dict(), "first_seq": state.first_seq, "last_seq": state.last_seq,
                   "messages": state.messages, "consumers": consumers}
            (out / f"{name}.json").write_text(json.dumps(doc, indent=2, sort_keys=True))
            summary[name] = {"messages": len(rows), "first_seq": state.first_seq, "last_seq": state.last_seq,
                             "consumers": len(consumers)}
    finally:
        await bus.close()
    return summary


# --- restore -------------------------------------------------------------------------------------

def read_manifest(src: Path) -> dict:
    """The backup's manifest, after checking every file against it (BackupError on any difference)."""
    src = Path(src)
    try:
        manifest = json.loads((src / MANIFEST).read_text())
    except (OSError, ValueError):
        raise BackupError(f"{src} holds no readable {MANIFEST}: not a backup") from None
    if manifest.get("format") != FORMAT:
        raise BackupError(f"{src}: backup format {manifest.get('format')!r}, this version reads {FORMAT}")
    for rel, digest in manifest["files"].items():
        path = src / rel
        if not path.is_file() or _file_digest(path) != digest:
            raise BackupError(f"{src}: {rel} is missing or does not match its checksum; nothing was restored")
    for row in _read_lines(src / "objects.jsonl"):
        path = src / "objects" / row["file"]
        if not path.is_file() or _file_digest(path) != row["sha256"]:
            raise BackupError(f"{src}: object file {row['file']} is missing or damaged; nothing was restored")
    return manifest


def restore(settings: config.Settings, src: Path, *, keys_dir: Path | None) -> Report:
    """Put the backup ``src`` back into the empty store and NATS of ``settings``, then verify it."""
    started = time.monotonic()
    src = Path(src)
    manifest = read_manifest(src)
    if manifest["bucket"] != settings.bucket:
        raise BackupError(f"the backup is of bucket {manifest['bucket']!r}, the target is {settings.bucket!r} "
                          "(set LSCLOUD_BUCKET)")
    store = ObjectStore.from_settings(settings)
    store.ensure_bucket(settings.bucket)
    if next(iter(store.list(settings.bucket, "", limit=1)), None) is not None:
        raise BackupError(f"bucket {settings.bucket} is not empty: restore into a fresh state dir")
    report = Report()

    if keys_dir is not None and (src / "keys").is_dir():
        keys_dir = Path(keys_dir)
        keys_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        for key in sorted((src / "keys").iterdir()):
            target = keys_dir / key.name
            if target.exists() and target.read_bytes() != key.read_bytes():
                raise BackupError(f"{target} exists with another key: restore into a fresh state dir")
            shutil.copy2(key, target)
            os.chmod(target, 0o600)
            report.keys.append(key.name)

    asyncio.run(_restore_streams(settings, src / "streams", report))
    for row in _read_lines(src / "objects.jsonl"):
        body = (src / "objects" / row["file"]).read_bytes()
        store.put(settings.bucket, row["key"], body, content_type=row["content_type"] or "application/octet-stream",
                  metadata=row["metadata"] or None)
        report.objects += 1
        report.bytes += len(body)
    problems = verify(settings, src)
    if problems:
        raise BackupError("the restored data differs from the backup:\n  " + "\n  ".join(problems[:20]))
    report.took_s = round(time.monotonic() - started, 3)
    return report


async def _restore_streams(settings: config.Settings, folder: Path, report: Report) -> None:
    bus = Bus(settings, name="lscloud-restore", create_stream=False)
    await bus.connect()
    try:
        js = bus.js
        for name in stream_names(settings):
            doc_path = folder / f"{name}.json"
            if not doc_path.exists():
                continue
            doc = json.loads(doc_path.read_text())
            try:
                existing = await js.stream_info(name)
                if existing.state.messages or existing.state.last_seq:
                    raise BackupError(f"stream {name} already holds messages: restore into a fresh state dir")
                await js.delete_stream(name)
            except nats.js.errors.NotFoundError:
                pass
            saved = js_api.StreamConfig.from_response(dict(doc["config"]))
            # while replaying, a message whose id repeats an older one's (sent more than the window
            # apart) must not be dropped as a duplicate: the window is the shortest allowed
            await js.add_stream(js_api.StreamConfig.from_response({**doc["config"], "duplicate_window": 100_000_000}))
            if doc["first_seq"] > 1:
                await js.purge_stream(name, seq=doc["first_seq"])  # an empty stream starts where it started
            count = 0
            last = (await js.stream_info(name)).state.last_seq
            for row in _read_lines(folder / f"{name}.jsonl"):
                last = await _put_at(js, name, row, last)
                count += 1
            await js.update_stream(saved)
            for c in doc["consumers"]:
                cfg = dict(c["config"])
                for k in ("deliver_policy", "opt_start_seq", "opt_start_time"):
                    cfg.pop(k, None)
                consumer = js_api.ConsumerConfig.from_response(cfg)
                consumer.deliver_policy = js_api.DeliverPolicy.BY_START_SEQUENCE
                consumer.opt_start_seq = int(c["ack_floor"]) + 1  # what it acknowledged stays acknowledged
                await js.add_consumer(name, consumer)
            report.streams[name] = {"messages": count, "first_seq": doc["first_seq"], "last_seq": doc["last_seq"],
                                    "consumers": len(doc["consumers"])}
    finally:
        await bus.close()


async def _put_at(js, stream: str, row: dict, last: int) -> int:
    """Publish ``row`` so that it lands at sequence ``row['seq']`` (a gap before it stays a gap);
    ``last`` is the stream's last sequence so far; returns the new one."""
    data = base64.b64decode(row["data"])
    headers = row["headers"] or None
    if last + 1 > row["seq"]:
        raise BackupError(f"stream {stream}: message {row['seq']} would land at {last + 1}")
    while last + 1 < row["seq"]:
        # a message deleted in the original: a placeholder, deleted again
        filler = await js.publish(row["subject"], b"", stream=stream)
        await js.delete_msg(stream, filler.seq)
        last = filler.seq
    for _ in range(40):
        ack = await js.publish(row["subject"], data, stream=stream, headers=headers)
        if not ack.duplicate:
            if ack.seq != row["seq"]:
                raise BackupError(f"stream {stream}: message {row['seq']} landed at {ack.seq}")
            return ack.seq
        await asyncio.sleep(0.05)  # an id repeated within the (shortest, 100 ms) window: let it pass
    raise BackupError(f"stream {stream}: message {row['seq']} is taken for a duplicate")


# --- verify --------------------------------------------------------------------------------------

def verify(settings: config.Settings, src: Path) -> list[str]:
    """Differences between the store and streams of ``settings`` and the backup ``src`` ([] when none)."""
    src = Path(src)
    problems: list[str] = []
    store = ObjectStore.from_settings(settings)
    expected = {row["key"]: row for row in _read_lines(src / "objects.jsonl")}
    present = {info.key for info in store.list(settings.bucket, "")}
    for key in sorted(set(expected) - present):
        problems.append(f"object missing: {key}")
    for key in sorted(present - set(expected)):
        problems.append(f"object not in the backup: {key}")
    for key in sorted(set(expected) & present):
        row = expected[key]
        try:
            obj = store.get(settings.bucket, key)
        except DoesNotExist:
            problems.append(f"object vanished: {key}")
            continue
        if _sha256(obj.body) != row["sha256"]:
            problems.append(f"object differs: {key}")
        elif (obj.content_type or "") != (row["content_type"] or "") or (obj.metadata or {}) != (row["metadata"] or {}):
            problems.append(f"object's type or metadata differs: {key}")
    problems += asyncio.run(_verify_streams(settings, src / "streams"))
    return problems


async def _verify_streams(settings: config.Settings, folder: Path) -> list[str]:
    problems: list[str] = []
    bus = Bus(settings, name="lscloud-verify", create_stream=False)
    await bus.connect()
    try:
        js = bus.js
        for name in stream_names(settings):
            doc_path = folder / f"{name}.json"
            if not doc_path.exists():
                continue
            doc = json.loads(doc_path.read_text())
            try:
                info = await js.stream_info(name)
            except nats.js.errors.NotFoundError:
                problems.append(f"stream missing: {name}")
                continue
            st = info.state
            if (st.first_seq, st.last_seq, st.messages) != (doc["first_seq"], doc["last_seq"], doc["messages"]):
                problems.append(f"stream {name}: first/last/count {st.first_seq}/{st.last_seq}/{st.messages}, "
                                f"backup {doc['first_seq']}/{doc['last_seq']}/{doc['messages']}")
            for row in _read_lines(folder / f"{name}.jsonl"):
                try:
                    msg = await js.get_msg(name, row["seq"])
                except nats.js.errors.NotFoundError:
                    problems.append(f"stream {name}: message {row['seq']} missing")
                    continue
                if msg.subject != row["subject"] or (msg.data or b"") != base64.b64decode(row["data"]) \
                        or dict(msg.headers or {}) != row["headers"]:
                    problems.append(f"stream {name}: message {row['seq']} differs")
            consumers = {c.name: c for c in await js.consumers_info(name)}
            for c in doc["consumers"]:
                durable = c["config"]["durable_name"]
                got = consumers.get(durable)
                if got is None:
                    problems.append(f"stream {name}: consumer {durable} missing")
                    continue
                if got.ack_floor.stream_seq != c["ack_floor"]:
                    problems.append(f"stream {name}: consumer {durable} acknowledged up to {got.ack_floor.stream_seq}, "
                                    f"backup {c['ack_floor']}")
                # what was delivered and not acknowledged comes again: pending = pending + unacknowledged
                if got.num_pending != c["num_pending"] + c["num_ack_pending"]:
                    problems.append(f"stream {name}: consumer {durable} has {got.num_pending} to deliver, "
                                    f"backup {c['num_pending']} + {c['num_ack_pending']} unacknowledged")
    finally:
        await bus.close()
    return problems


# --- the state dir's own servers --------------------------------------------------------------------

@contextlib.contextmanager
def state_dir_servers(state_dir: Path, *, create: bool) -> Iterator[config.Settings]:
    """nats-server and weed mini on the state dir's data, on free ports, for as long as the block runs.

    ``create``: start on empty data dirs (a restore); otherwise they must hold a local cloud's data.
    """
    from .servers import NatsServer, WeedMini

    state_dir = Path(state_dir)
    nats_dir, weed_dir = state_dir / "nats", state_dir / "weed"
    if not create and not (nats_dir.is_dir() and weed_dir.is_dir()):
        raise BackupError(f"{state_dir} holds no local cloud (no nats/ and weed/ data): nothing to back up")
    if create and any(d.is_dir() and any(d.iterdir()) for d in (nats_dir, weed_dir)):
        raise BackupError(f"{state_dir} already holds data: restore into a fresh state dir")
    nats_server = NatsServer(data_dir=nats_dir)
    weed = WeedMini(data_dir=weed_dir)
    try:
        nats_server.start()
        weed.start()
        base = config.load()
        yield base.replace(s3_endpoint=weed.endpoint, s3_access_key=weed.access_key, s3_secret_key=weed.secret_key,
                           nats_url=nats_server.url, state_dir=str(state_dir))
    finally:
        weed.stop()
        nats_server.stop()



# --- the commands ------------------------------------------------------------------------------------

def _say(report: Report, what: str, where: Path) -> None:
    streams = ", ".join(f"{n} {s['messages']} messages (seq {s['first_seq']}-{s['last_seq']}, "
                        f"{s['consumers']} consumers)" for n, s in report.streams.items()) or "no streams"
    print(f"✓ {what} {where}: {report.objects} objects ({report.bytes} bytes), {streams}, "
          f"{len(report.keys)} keys, {report.took_s:.1f} s")


def command_backup(state_dir: Path, dest: Path) -> int:
    """`lscloud backup DEST`: from the running cloud of the state dir, else from its data."""
    from .cloud import NotRunning, cloud_settings, running_cloud

    try:
        settings = cloud_settings(running_cloud(state_dir))
        print("… the cloud is running: the copy is not of one instant (stop it first for that)")
        report = backup(settings, dest, keys_dir=state_dir / "keys")
    except NotRunning:
        with state_dir_servers(state_dir, create=False) as settings:
            report = backup(settings, dest, keys_dir=state_dir / "keys")
    _say(report, "backup", dest)
    return 0


def command_restore(state_dir: Path, src: Path) -> int:
    """`lscloud restore SRC`: into a fresh state dir, then verified against the backup."""
    from .cloud import NotRunning, running_cloud

    try:
        running_cloud(state_dir)
        raise BackupError(f"an `lscloud up` runs on {state_dir}: restore into a fresh state dir")
    except NotRunning:
        pass
    read_manifest(src)  # checksums first: nothing is started or written for a damaged backup
    with state_dir_servers(state_dir, create=True) as settings:
        report = restore(settings, src, keys_dir=state_dir / "keys")
    _say(report, "restored and verified", state_dir)
    return 0
