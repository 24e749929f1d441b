"""The NGSI-LD Query Language (ETSI GS CIM 009 V1.9.1 clause 4.9) as the environment broker reads
and evaluates ``q``, without servers: each production the clause says "shall be supported by
implementations", the temporal order of date-times, and what stays a 400 naming ``q``."""

from __future__ import annotations

import json

import pytest

from functions.environment.function import ngsi

# a normalized AirQualityObserved as the broker answers it (observedAt: the hour's end, UTC)
ENTITY = {"id": "urn:ngsi-ld:AirQualityObserved:lsn-air-1", "type": "AirQualityObserved",
          "name": {"type": "Property", "value": "Trạm Hoàng Văn Thụ"},
          "dateObserved": {"type": "Property", "value": "2026-12-07T14:00:00Z"},
          "pm25": {"type": "Property", "value": 35.0, "observedAt": "2026-12-07T14:00:00Z"},
          "no2": {"type": "Property", "value": 40.0, "observedAt": "2026-12-07T14:00:00Z"},
          "typeofLocation": {"type": "Property", "value": "outdoor"},
          "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [106.76, 21.85]}}}


def holds(q: str, entity: dict = ENTITY) -> bool:
    return ngsi.matches(entity, ngsi.parse_q(q))


@pytest.mark.parametrize("q, expected", [
    # EXAMPLE 0 / 5: existence
    ("pm25", True), ("pm10", False), ("location", True),
    # EXAMPLE 1 / 2 and the comparison operators
    ("pm25==35", True), ("pm25!=35", False), ("pm25>34.5", True), ("pm25>=35", True), ("pm25<35", False),
    ("pm25<=35", True), ('typeofLocation!="indoor"', True), ('typeofLocation=="outdoor"', True),
    # Range and ValueList (equal / unequal only): "both included"
    ("pm25==30..40", True), ("pm25==35..36", True), ("pm25==36..40", False), ("pm25!=36..40", True),
    ("pm25==34,35", True), ("pm25==34,36", False), ("pm25!=34,36", True), ("pm25!=35,36", False),
    # QueryTermAssoc, nested (EXAMPLE 6, 7); ";" binds tighter than "|"
    ("(pm25>1)", True), ("((pm25>50|no2<45);pm25==35)", True), ("(pm25>=20;pm25<=25)|no2<=10", False),
    ("pm25>50;no2<45|pm25==35", True), ("pm25>50;(no2<45|pm25==35)", False),
    # EXAMPLE 8: a dotted path to a sub-attribute, an unquoted DateTime
    ("pm25.observedAt>=2017-12-24T12:00:00Z", True), ("pm25.observedAt>2026-12-07T14:00:00Z", False),
    ("pm25.unitCode", False), ("pm25.observedAt", True),
    # a trailing path into a compound value (EXAMPLE 9)
    ('location[type]=="Point"', True), ("location[nothing]", False),
    # a linked path: our entities have no Relationship to follow
    ("sensor{humidity}==40", False), ("sensor{Device:humidity}==40", False),
    # a different data type is "not matching" (and "unequal")
    ('pm25=="35"', False), ('pm25!="35"', True), ("name>1", False),
    # patterns: strings only
    ('name~="^Trạm"', True), ("name~=Hoàng", True), ("name!~=Hoàng", False), ("pm25~=3", False),
    ("typeofLocation~=out.*r", True), ('name~="(Hoàng|Lê)"', True),
])
def test_each_production_of_the_grammar_is_read_and_evaluated(q, expected):
    assert holds(q) is expected


def test_date_times_compare_as_instants():
    """4.9: "When comparing dates or times, the order relation considered shall be a temporal one":
    14:00Z is 21:00 in Vietnam, whichever side writes which offset, quoted or not."""
    for q in ('dateObserved>="2026-12-07T21:00:00+07:00"', 'dateObserved=="2026-12-07T21:00:00+07:00"',
              "dateObserved<=2026-12-07T21:00:00+07:00", "pm25.observedAt==2026-12-07T21:00:00.000+07:00",
              'dateObserved<"2026-12-07T14:00:01Z"', "dateObserved==2026-12-07T20:00:00+07:00..2026-12-07T22:00:00+07:00"):
        assert holds(q), q
    # as strings "2026-12-07T14:00:00Z" >= "2026-12-07T21:00:00+07:00" is false, the instant is not later
    for q in ('dateObserved>"2026-12-07T21:00:00+07:00"', "dateObserved<2026-12-07T14:00:00Z",
              'dateObserved=="2026-12-07T14:00:00"'):   # a naive string is a string, not an instant
        assert not holds(q), q
    # keyValues works too, and a noise station's interval is no DateTime
    assert ngsi.matches({"dateObserved": "2026-12-07T14:00:00+00:00"}, ngsi.parse_q("dateObserved>=2026-12-07T21:00:00+07:00"))
    assert not ngsi.matches({"dateObserved": "2026-12-07T13:00:00Z/2026-12-07T14:00:00Z"},
                            ngsi.parse_q("dateObserved>=2026-01-01T00:00:00Z"))


def test_unquoted_uris_and_booleans_go_with_equality():
    assert not holds("typeofLocation==urn:ngsi-ld:Place:x") and holds("typeofLocation!=https://example.org/outdoor")
    assert ngsi.matches({"ok": True}, ngsi.parse_q("ok==true")) and not ngsi.matches({"ok": 1}, ngsi.parse_q("ok==true"))


@pytest.mark.parametrize("q", [
    "(pm25>1", "pm25>1)", "pm25>>1", "pm25>abc", "pm25 pm10", "1pm25>2", "pm25==", "pm25=1", 'pm25=="open',
    "pm25>1..2", "pm25<1,2", "pm25>true", ";pm25>1", "pm25>1;", "pm25>1||pm25<2", "()",
    "pm25.observedAt>=2017-12-24T12:00:00",        # a DateTime without its offset
    "pm25.observedAt>=2017-12-24T12:00:00 07:00",  # "+" read as a space in a URL
    "pm25>2026-13-45T00:00:00Z", "sensor{humidity==40", "location[type==1",
    "(" * 20 + "pm25" + ")" * 20,
])
def test_malformed_q_is_bad_request_data_naming_q(q):
    with pytest.raises(ngsi.BadRequestData) as e:
        ngsi.parse_q(q)
    assert e.value.errors[0]["field"] == "q" and e.value.errors[0].get("message_vi")


@pytest.mark.parametrize("pattern", [
    "(a+)+$", "(a|a)*b", "(a*)*", "(x+x+)+y", "a*a*a*b", ".*.*.*x", "(a){2}", r"(a)\1", "(?=a)", "(?i)a", "a{1,}b{2,}c{3,}",
    "x" * 101, "[", "(|a)" * 20 + "b", "(a|b|c|d|e|f)", "a*b*(c|d|e|f)",
])
def test_patterns_that_could_backtrack_for_long_are_refused(pattern):
    """~= "shall be supported", on a backtracking engine: a pattern with a quantified group, a
    backreference, a look-around, more than two variable quantifiers or more than four choices
    (quantifiers and alternatives) is a 400, never a hang."""
    with pytest.raises(ngsi.BadRequestData) as e:
        ngsi.parse_q(f"name~={json.dumps(pattern)}")
    assert e.value.errors[0]["field"] == "q"


def test_an_accepted_pattern_runs_on_strings_as_long_as_ours():
    """Within the bounds (two variable quantifiers, 256 characters) a search ends; a longer string,
    which none of our attributes holds, matches no pattern."""
    long_name = {"name": {"type": "Property", "value": "a" * 256}}
    assert [ngsi.matches(long_name, ngsi.parse_q(f'name~="{p}"')) for p in (".*.*x", "a*a*b", "[a-z]+[0-9]+!", "a?a?$", "(|a)(|a)a*b", "^(b|c|d)")] \
        == [False, False, False, True, False, False]
    assert ngsi.matches({"name": "x" * 300}, ngsi.parse_q("name~=x")) is False
