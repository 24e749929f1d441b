"""Observations in, whichever way they come — HTTP, NATS or MQTT — and out as one CloudEvent:
``vn.langson.environment.observations.recorded.v1``.

Each reading is checked (its station's parameters, an offset on its time, not too far ahead of the
clock, not older than ``max_late_days``), flagged when implausible (:mod:`readings`), written into
its hour (:mod:`storage`), and the hour's summary into its day. When a reading opens a new hour, the
hour before it is complete and its alert is judged (:mod:`alerts`).
"""

from __future__ import annotations

import hashlib
import json
from datetime import datetime, timedelta, timezone

from lscloud import errors
from lscloud import events as ce
from lscloud import outbox

from . import alerts, clock, readings, storage
from .settings import Settings

SOURCE = "/environment"
RECORDED = "vn.langson.environment.observations.recorded.v1"
MAX_ITEMS = 500


def _when(raw, pointer: str) -> datetime:
    if not isinstance(raw, str):
        raise errors.Invalid.at(pointer, "observed_at must be an ISO 8601 time with its offset",
                                "observed_at phải là thời điểm ISO 8601 có múi giờ")
    try:
        t = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise errors.Invalid.at(pointer, "observed_at must be an ISO 8601 time with its offset",
                                "observed_at phải là thời điểm ISO 8601 có múi giờ") from None
    if t.tzinfo is None:
        raise errors.Invalid.at(pointer, "observed_at needs an offset (+07:00 or Z)", "observed_at cần có múi giờ")
    return t


def check(station: dict, items: list, s: Settings, now: datetime) -> list[dict]:
    """The batch as ``[{"observed_at": utc, "end": hour end, "values", "flags"}]``; every bad item
    is named (``/3/pm25``) in one 422, nothing of a bad batch is written."""
    if not isinstance(items, list) or not items:
        raise errors.Invalid.at("", "a non-empty list of observations is expected", "Cần gửi một danh sách dữ liệu quan trắc không rỗng")
    if len(items) > MAX_ITEMS:
        raise errors.Invalid.at("", f"at most {MAX_ITEMS} observations per request",
                                f"Mỗi yêu cầu tối đa {MAX_ITEMS} bản ghi quan trắc")
    problems, out, seen = [], [], {}
    for i, item in enumerate(items):
        if not isinstance(item, dict):
            problems.append(errors.field(f"/{i}", "an observation is an object"))
            continue
        values = {k: v for k, v in item.items() if k != "observed_at"}
        for p in readings.unknown(station["kind"], values):
            problems.append(errors.field(f"/{i}/{p}", f"a {station['kind']} station does not measure {p}"))
        bad = [k for k, v in values.items() if isinstance(v, bool) or not isinstance(v, (int, float))]
        problems += [errors.field(f"/{i}/{k}", "must be a number") for k in bad]
        if not values:
            problems.append(errors.field(f"/{i}", "an observation needs at least one value"))
        try:
            t = _when(item.get("observed_at"), f"/{i}/observed_at")
        except errors.Invalid as exc:
            problems += exc.errors
            continue
        if t > now + timedelta(seconds=s.max_ahead_s):
            problems.append(errors.field(f"/{i}/observed_at", "is ahead of the clock (device time wrong?)"))
        elif t < now - timedelta(days=s.max_late_days):
            problems.append(errors.field(f"/{i}/observed_at", f"is older than {s.max_late_days} days"))
        if problems:
            continue
        key = clock.utc(t)   # after the range checks: year 1 at +14:00 has no UTC (OverflowError, a 500)
        clean = {k: float(v) for k, v in values.items()}
        if key in seen:
            if seen[key][0] != clean:
                problems.append(errors.field(f"/{i}/observed_at", f"the same time as /{seen[key][1]} with other values"))
            continue
        seen[key] = (clean, i)
        out.append({"observed_at": key, "end": clock.hour_end(t), "values": clean,
                    "flags": readings.flags(station["kind"], clean, station.get("ceilings"))})
    if problems:
        raise errors.Invalid(f"{len(problems)} observation field(s) refused", detail_vi="Một số số liệu quan trắc không hợp lệ.",
                             errors=problems[:100])
    return out


def record(station: dict, items: list, channel: str, s: Settings, now: datetime | None = None) -> dict:
    """Check, store and publish one batch of a station's observations; per-item outcome."""
    now = now or datetime.now(timezone.utc)
    checked = check(station, items, s, now)
    received = clock.utc(now)
    by_hour: dict[str, list[dict]] = {}
    for it in checked:
        by_hour.setdefault(clock.hour_key(it["end"]), []).append(it)
    ends = {clock.hour_key(it["end"]): it["end"] for it in checked}
    writes = list(storage.pool().map(lambda h: storage.write_hour(station, h, by_hour[h], channel, received), sorted(by_hour)))
    # what follows storing a reading is done for the readings stored now and, again, for those a run
    # that may have stopped right after storing them stored (storage.REDO_S): each step is repeat-safe
    storage.write_days(station["id"], {ends[w.hour]: (w.summary, w.version) for w in writes if w.accepted or w.redo})
    status, redo = {}, set()
    for w in writes:
        status.update({k: "accepted" for k in w.accepted})
        status.update({k: "duplicate" for k in w.duplicate})
        status.update({k: "conflict" for k in w.conflict})
        redo.update(w.redo)
    accepted = [it for it in checked if status.get(it["observed_at"]) == "accepted"]
    stored = [it for it in checked if status.get(it["observed_at"]) == "accepted" or it["observed_at"] in redo]
    if stored:
        payload = [{"observed_at": it["observed_at"], "values": it["values"], "flags": it["flags"]} for it in stored]
        digest = hashlib.sha256(json.dumps([station["id"], payload], sort_keys=True).encode()).hexdigest()[:32]
        outbox.publish([ce.new_event(RECORDED, SOURCE, {
            "station": station["id"], "kind": station["kind"], "unit": station["unit"], "channel": channel,
            "received_at": received, "readings": payload}, subject=station["id"], id=f"obs-{digest}")])
    raised = []
    for w in writes:
        if w.created or w.redo:   # the first reading of an hour: the hour before it is complete (judged once)
            raised += alerts.evaluate(station, clock.parse_hour_key(w.hour) - timedelta(hours=1), s)
    return {"station": station["id"], "accepted": len(accepted),
            "duplicates": sum(1 for v in status.values() if v == "duplicate"),
            "conflicts": sum(1 for v in status.values() if v == "conflict"),
            "flagged": sum(1 for it in accepted if it["flags"]),
            "items": [{"observed_at": it["observed_at"], "status": status[it["observed_at"]],
                       **({"flags": it["flags"]} if it["flags"] else {})} for it in checked],
            "alerts": [{"type": e["type"], "alert": e["data"]["alert"], "hour": e["data"]["hour"]} for e in raised]}
