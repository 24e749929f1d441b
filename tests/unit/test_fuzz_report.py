"""`lscloud fuzz`'s reading of what schemathesis recorded: what counts as a failure, and the plan of roles."""

from __future__ import annotations

import json

import lscloud.fuzz as fuzz
from lscloud.fuzz import PROBLEM_TYPE, Result, count_har, count_report, format_results, plan_for
from lscloud.fuzz.hooks import choose_role


def _entry(status, content_type=None, body="", method="GET", url="http://x/v1/a"):
    headers = [{"name": "content-type", "value": content_type}] if content_type else []
    return {"request": {"method": method, "url": url},
            "response": {"status": status, "headers": headers, "content": {"text": body}}}


PROBLEM = json.dumps({"type": "https://errors/x", "title": "Bad", "status": 400})


def test_5xx_and_4xx_that_are_not_problems_fail_the_run():
    r = Result("f", "http://x")
    count_har(r, {"log": {"entries": [
        _entry(200, "application/json", "{}"),
        _entry(400, "application/problem+json", PROBLEM),
        _entry(400, "application/json", PROBLEM),                            # wrong media type
        _entry(404, "application/problem+json", "not json"),                  # not a problem body
        _entry(400, "application/problem+json", PROBLEM.replace("400", "401")),  # status disagrees
        _entry(500, "application/problem+json", PROBLEM.replace("400", "500")),
        _entry(502),
        _entry(0),                                                            # no response at all
    ]}})
    count_report(r, {"test_cases": {"generated": 7}, "failures": [{"code": "ST101", "title": "Server error", "count": 2}]})
    assert (r.cases, r.responses, r.network_errors) == (7, 7, 1)
    assert dict(r.by_class) == {"2xx": 1, "4xx": 4, "5xx": 2}
    assert (r.server_error_count, r.not_problem_count) == (2, 3)
    assert not r.ok
    text = format_results([r])
    assert "ST101 Server error: 2" in text and "5xx: 500 GET http://x/v1/a" in text

    clean = Result("g", "http://x")
    count_har(clean, {"log": {"entries": [_entry(200, "application/json", "{}"),
                                          _entry(403, "application/problem+json; charset=utf-8",
                                                 PROBLEM.replace("400", "403"))]}})
    assert clean.ok


def test_each_operation_gets_tokens_of_roles_it_admits():
    openapi = {"paths": {
        "/v1/a": {"get": {"x-lscloud-access": {"roles": ["public"], "partner": False}},
                  "post": {"x-lscloud-access": {"roles": ["officer", "operator"], "partner": False}}},
        "/v1/bank/x": {"post": {"x-lscloud-access": {"roles": [], "partner": True}}},
        "/events": {"post": {"x-lscloud-access": {"roles": ["eventing"], "partner": False}}},
    }}
    plan = plan_for(openapi, lambda role: f"token-of-{role}")
    assert plan["operations"] == {"POST /v1/a": ["officer", "operator"]}
    assert plan["public_roles"] == ["officer", "operator", ""]
    assert plan["tokens"] == {"officer": "token-of-officer", "operator": "token-of-operator"}
    # the same case always gets the same role (Hypothesis may replay it)
    assert len({choose_role(["a", "b", "c"], "case-1") for _ in range(5)}) == 1


OPEN311 = {
    "openapi": "3.1.0",
    "components": {"schemas": {"errors": {"type": "array", "minItems": 1, "items": {
        "type": "object", "additionalProperties": False, "required": ["code", "description"],
        "properties": {"code": {"type": ["integer", "string"]}, "description": {"type": "string"}}}}}},
    "paths": {
        "/open311/v2/requests.{fmt}": {"post": {"responses": {
            "201": {"content": {"application/json": {}}},
            "400": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/errors"}},
                                "text/xml": {}}}}}},
        "/v1/reports": {"post": {"responses": {"400": {"content": {PROBLEM_TYPE: {}}}}}},
    },
}
XML_ERRORS = "<?xml version='1.0'?><errors><error><code>400</code></error></errors>"


def test_a_path_that_documents_its_errors_otherwise_is_held_to_that_format():
    """Open311's paths answer the spec's errors list (JSON or XML) for every method, a 405 for an
    undeclared one too; elsewhere a 4xx is still a problem or a failure."""
    from lscloud.fuzz import documented_errors

    documented = documented_errors(OPEN311)
    spec_json = json.dumps([{"code": 405, "description": "The method is not allowed."}])
    for base in ("http://x", "http://gw/reports"):   # direct, and through the gateway's prefix
        r = Result("reports", base)
        count_har(r, {"log": {"entries": [
            _entry(405, "application/json; charset=utf-8", spec_json, "TRACE", f"{base}/open311/v2/requests.0"),
            _entry(400, "text/xml; charset=utf-8", XML_ERRORS, "POST", f"{base}/open311/v2/requests.xml"),
        ]}}, documented=documented)
        assert r.ok, r.not_problem
        bad = Result("reports", base)
        count_har(bad, {"log": {"entries": [
            _entry(400, "application/json", json.dumps({"code": 400}), "POST", f"{base}/open311/v2/requests.json"),
            _entry(400, "text/xml", "<errors>", "POST", f"{base}/open311/v2/requests.xml"),
            _entry(400, "text/plain", "Bad", "POST", f"{base}/open311/v2/requests.json"),
            _entry(400, "application/json", spec_json, "POST", f"{base}/v1/reports"),   # a problem path
        ]}}, documented=documented)
        assert bad.not_problem_count == 4
    # a document with no such path changes nothing
    assert documented_errors({"paths": {"/v1/a": {"get": {"responses": {"400": {"content": {PROBLEM_TYPE: {}}}}}}}}) \
        == []


def _finished(checks_by_case: dict, responses: dict) -> str:
    """One ScenarioFinished line as schemathesis's NDJSON report writes it (bodies as {"$base64": …})."""
    import base64

    def failure(code):
        return {"name": "c", "status": "failure", "failure_info": {"failure": {"code": code, "title": "t"}}}

    return json.dumps({"ScenarioFinished": {"status": "failure", "recorder": {
        "checks": {case: [{"name": "ok", "status": "success"}] + [failure(c) for c in codes]
                   for case, codes in checks_by_case.items()},
        "interactions": {case: {"response": {"status_code": status, "content": {
            "$base64": base64.b64encode(body.encode()).decode()}}} for case, (status, body) in responses.items()}}}})


def test_check_failures_the_gateway_answered_are_told_apart_from_the_functions():
    """A path breaking a parameter's documented rule never reaches a function: the gateway's 400
    fails ST203/ST204, which expect the function's 401/405. The report says how many of a code's
    failing cases are that, so a real finding under the same code stays visible."""
    from lscloud.fuzz import count_events

    malformed = json.dumps({"type": "https://errors.lscloud.langson.gov.vn/malformed-path", "title": "Malformed path",
                            "status": 400})
    r = Result("f", "http://x")
    count_events(r, [
        json.dumps({"ScenarioStarted": {}}),
        _finished({"a": ["ST204"], "b": ["ST204", "ST203"], "c": ["ST204"], "d": []},
                  {"a": (400, malformed), "b": (400, malformed), "c": (400, PROBLEM), "d": (200, "{}")}),
        "not json",
        _finished({"a": ["ST204"]}, {"a": (400, malformed)}),   # the same case reported again
    ])
    assert dict(r.failing_cases) == {"ST204": 3, "ST203": 1}
    assert dict(r.at_the_gateway) == {"ST204": 2, "ST203": 1}
    count_report(r, {"failures": [{"code": "ST204", "title": "Wrong response to undeclared method", "count": 2},
                                  {"code": "ST203", "title": "Missing required header accepted", "count": 1},
                                  {"code": "ST202", "title": "Schema-valid request rejected", "count": 4}]})
    text = format_results([r])
    assert "ST204 Wrong response to undeclared method: 2 (failing cases: 3; 2 of 3 the gateway's malformed-path" in text
    assert "ST203 Missing required header accepted: 1 (failing cases: 1; all of them the gateway's" in text
    assert "ST202 Schema-valid request rejected: 4\n" in text + "\n"


def test_a_streaming_operation_gets_a_round_of_its_own_with_the_edge_cases_only(monkeypatch, tmp_path):
    """A stream holds each valid case open while it lasts: it is left out of the fuzzing rounds and
    fuzzed once with the examples and coverage phases (every documented value's edge)."""
    openapi = {"paths": {
        "/v1/stream": {"get": {"responses": {"200": {"content": {"text/event-stream": {}}}}}},
        "/v1/indicators": {"get": {"responses": {"200": {"content": {"application/json": {}}}}}},
        "/events": {"post": {"x-lscloud-access": {"roles": ["eventing"]},
                             "responses": {"200": {"content": {"text/event-stream": {}}}}}}}}
    assert fuzz.streaming_paths(openapi) == ["/events", "/v1/stream"]
    rounds = []

    def fake_round(result, argv, report_dir, stem, plan_file, documented=()):
        rounds.append((stem, argv))
        result.cases += 50

    monkeypatch.setattr(fuzz, "fetch_openapi", lambda url: openapi)
    monkeypatch.setattr(fuzz, "_run_round", fake_round)
    fuzz.fuzz_one(fuzz.Target("ioc", "http://gw/ioc"), cases=100, mint=lambda role: "t", report_dir=tmp_path, seed=7)
    stems = [stem for stem, _ in rounds]
    assert stems == ["ioc", "ioc.2", "ioc.streams"]
    for stem, argv in rounds[:-1]:
        excluded = [argv[i + 1] for i, a in enumerate(argv) if a == "--exclude-path"]
        assert excluded == ["/events", "/v1/stream"]
    last = rounds[-1][1]
    assert last[last.index("--phases") + 1] == "examples,coverage"
    assert [last[i + 1] for i, a in enumerate(last) if a == "--include-path"] == ["/v1/stream"]
    # asked for the fuzzing phase alone: no round for the stream
    rounds.clear()
    fuzz.fuzz_one(fuzz.Target("ioc", "http://gw/ioc"), cases=50, mint=lambda role: "t", report_dir=tmp_path,
                  phases=["fuzzing"])
    assert [stem for stem, _ in rounds] == ["ioc"]
