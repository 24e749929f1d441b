"""Records kept only while they serve, which were kept for good: a border device reading (with its
plate number) and a soft-ATM customer's day counter. Each now carries its end, and the runtime's
sweep on the clock's tick deletes it after."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest

from lscloud import runonce, runtime
from lscloud.store import DoesNotExist

pytestmark = pytest.mark.integration


def swept(at: datetime) -> None:
    rt = runtime.current()
    runonce.sweep(rt.objects, rt.settings.bucket, rt.settings, now=at.timestamp())


def test_a_device_reading_is_kept_past_the_devices_stream_age_then_swept(install):
    from functions.border.function import device_events
    from functions.border.function.models import READING_KEPT_S, DeviceReading

    install(service="border")
    before = datetime.now(timezone.utc)
    event = {"id": "ev-1", "data": {"device": "cam-1", "reading_id": "r-1", "plate": "12C-123.45", "gate": "HN"}}
    assert device_events._claimed(event) is not None
    ends = DeviceReading.get("cam-1", "r-1").expires_at
    assert before + timedelta(seconds=READING_KEPT_S) <= ends <= datetime.now(timezone.utc) + timedelta(seconds=READING_KEPT_S)
    swept(ends - timedelta(seconds=1))
    assert DeviceReading.get("cam-1", "r-1")   # still there: a redelivery is still recognised
    swept(ends + timedelta(seconds=1))
    with pytest.raises(DoesNotExist):
        DeviceReading.get("cam-1", "r-1")


def test_a_customers_day_counter_ends_two_days_after_its_day(install):
    from functions.softatm.function import limits
    from functions.softatm.function.models import CustomerDay

    install(service="softatm")
    doc = {"id": "t-1", "bank": "vcb", "kind": "withdrawal", "account": "0123456789", "day": "2026-12-07",
           "amount_vnd": 500_000, "limits": {"per_customer_day_vnd": 5_000_000}}
    assert limits.count(doc) and limits.counted(doc)
    ends = CustomerDay.get(limits.daily_key(doc)).expires_at
    assert ends == datetime(2026, 12, 9, 17, 0, tzinfo=timezone.utc)   # 10 December, 00:00 in Vietnam
    swept(ends - timedelta(seconds=1))
    assert limits.counted(doc)
    # the sweep reads a counter once it is as old as the longest a counter lives (ttl_max_s)
    swept(max(ends, datetime.now(timezone.utc) + timedelta(seconds=CustomerDay.Meta.ttl_max_s)) + timedelta(seconds=1))
    assert not limits.counted(doc)
