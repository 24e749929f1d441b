"""The ``format`` values of our schemas are checked the same in every installation."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lscloud.validation import StrictValidator

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = {"type": "object", "properties": {"at": {"type": "string", "format": "date-time"},
                                           "on": {"type": "string", "format": "date"}}}


def _errors(instance) -> list[str]:
    v = StrictValidator(SCHEMA, format_checker=StrictValidator.FORMAT_CHECKER)
    return sorted("/".join(map(str, e.absolute_path)) for e in v.iter_errors(instance))


@pytest.mark.parametrize("value", ["2026-03-10T09:00:00", "soon", "2026-02-30T09:00:00Z", "2026-03-10 09:00:00Z",
                                   "2026-03-10T25:00:00+07:00", "2026-03-10T09:00:00+0700"])
def test_a_date_time_needs_a_date_a_time_and_an_offset(value):
    assert _errors({"at": value}) == ["at"]


@pytest.mark.parametrize("value", ["2026-03-10T09:00:00Z", "2026-03-10T09:00:00.123456+07:00", "2026-03-10t02:00:00z"])
def test_an_rfc3339_date_time_passes(value):
    assert _errors({"at": value}) == []


def test_a_date_is_a_full_date():
    assert _errors({"on": "2026-03-10"}) == [] and _errors({"on": "2026-3-10"}) == ["on"]
    assert _errors({"on": "2026-02-29"}) == ["on"] and _errors({"on": "2028-02-29"}) == []


def test_without_the_optional_rfc3339_package_a_naive_time_is_still_refused():
    """jsonschema checks date-time only with rfc3339-validator installed, which only the test tools
    pulled in: the functions' images took "2026-03-10T09:00:00" and "soon" as date-times, and the
    code comparing them with aware instants answered 500 (community's sync, border's booking)."""
    script = textwrap.dedent("""
        import sys
        sys.modules["rfc3339_validator"] = None   # not installed, as in a function's image
        from lscloud.validation import StrictValidator
        v = StrictValidator({"properties": {"at": {"type": "string", "format": "date-time"}}},
                            format_checker=StrictValidator.FORMAT_CHECKER)
        print(sum(1 for _ in v.iter_errors({"at": "2026-03-10T09:00:00"})), sum(1 for _ in v.iter_errors({"at": "soon"})))
    """)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=ROOT, timeout=60)
    assert out.stdout.split() == ["1", "1"], out.stderr


@pytest.mark.parametrize("value", ["0001-01-01T00:00:00+14:00", "9999-12-31T23:00:00-12:00", "1899-12-31T23:59:59Z"])
def test_an_instant_outside_the_years_this_system_knows_is_refused(value):
    """Year 1 and year 9999 passed and overflowed the arithmetic on them (a day before, an hour
    after, a conversion to UTC): a 500 in a dozen places."""
    from lscloud import query

    assert _errors({"at": value}) == ["at"]
    assert query.Param("to", "x", {"type": "string", "format": "date-time"}).parse([value])[1]
    assert query.Param("on", "x", {"type": "string", "format": "date"}).parse([value[:10]])[1]
    assert _errors({"on": value[:10]}) == ["on"]
