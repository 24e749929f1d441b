"""What of a finished declaration's health answers and driver's phone outlives the keep period, alone:
the verdict, the minimised document, the health entry the final move writes, the setting."""

from __future__ import annotations

import pytest

from functions.border.function import declarations, indexes, settings as border_settings
from lscloud import config
from lscloud.config import Settings

ANSWERS = {"fever": True, "symptoms": ["cough"], "contact_with_case": True, "temperature_c": 38.4}


def doc(status="exited", *, health=ANSWERS, decision=None) -> dict:
    d = {"id": "d-0123456789abcdef", "status": status, "health": dict(health) if health else health,
         "driver": {"name": "Lý Văn A", "id_number": "E12345678", "phone": "+8613800000000"},
         "timestamps": {"submitted": "2026-03-01T01:00:00Z", status: "2026-03-01T17:30:00Z"},
         "updated_at": "2026-03-01T17:30:00Z"}
    if decision:
        d["decisions"] = {"health-quarantine": {"decision": decision, "seq": 1}}
    return d


@pytest.mark.parametrize("decision,health,verdict", [
    ("pass", ANSWERS, "cleared"), ("hold", ANSWERS, "held-for-quarantine"), ("refuse", ANSWERS, "refused"),
    (None, ANSWERS, "not-judged"), (None, None, "not-declared")])
def test_the_verdict_is_what_the_quarantine_last_decided(decision, health, verdict):
    assert declarations.health_verdict(doc(decision=decision, health=health)) == verdict


def test_a_minimised_declaration_keeps_the_verdict_and_no_answer_nor_phone():
    d = doc(decision="hold")
    declarations.minimise(d, "2026-04-01T00:00:00Z")
    assert d["health"] == {"minimised": True, "verdict": "held-for-quarantine", "answered": True,
                           "minimised_at": "2026-04-01T00:00:00Z"}
    assert d["driver"] == {"name": "Lý Văn A", "id_number": "E12345678"}
    assert declarations.minimised(d)
    note = declarations.minimised_note(d)
    assert "2026-04-01" in note["message"] and "2026-04-01" in note["message_vi"]


@pytest.mark.parametrize("status", ["draft", "submitted", "queued", "in_yard", "called", "at_gate",
                                    "under_inspection", "held", "cleared"])
def test_a_live_declaration_has_no_health_entry(status):
    assert declarations.ended_at(doc(status)) is None
    assert indexes.health_due(doc(status)) == []


@pytest.mark.parametrize("status", ["exited", "refused", "cancelled", "expired"])
def test_an_ended_declaration_has_one_until_it_is_minimised(status):
    d = doc(status)
    (entry,) = indexes.health_due(d)
    # the local day it ended (17:30 UTC is past midnight in Vietnam), then the instant: key order is time order
    assert (entry.day, entry.entry, entry.declaration_id) == ("20260302", "1772386200000000_d-0123456789abcdef", d["id"])
    declarations.minimise(d, "2026-04-01T00:00:00Z")
    assert indexes.health_due(d) == [] and indexes.every_write(d) == []


def test_the_keep_period_is_a_setting_of_at_least_a_day():
    platform = Settings(service="border")
    assert border_settings.of(platform).health_keep_days == 30
    assert border_settings.of(platform.replace(function_env={"BORDER_HEALTH_KEEP_DAYS": "21"})).health_keep_days == 21
    for bad in ("0", "367", "a month"):
        with pytest.raises(config.ConfigError, match="BORDER_HEALTH_KEEP_DAYS"):
            border_settings.of(platform.replace(function_env={"BORDER_HEALTH_KEEP_DAYS": bad}))
