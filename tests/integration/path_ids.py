"""Issue 9: ids in a URL path that no client of ours would send must get a 4xx problem, never a 5xx.

:func:`assert_no_route_fails_on_odd_ids` puts each odd id into every path parameter of every route
of a function's app and calls it with a token of a role the route admits (a JSON body ``{}`` where
one is expected, an Idempotency-Key everywhere), through the Flask test client: the function's own
answer, with no gateway in between.
"""

from __future__ import annotations

import re
import uuid

from lscloud.auth import access_of

ODD_IDS = {
    "nul": "%00",
    "nul-inside": "abcd%00efgh",
    "control": "%01%1B%7F",
    "newline-suffix": "abcdefgh%0A",
    "question": "abcd%3Fefgh",
    "hash": "abcd%23efgh",
    "dot-dot": "%2E%2E",
    "long": "a" * 5000,
    "not-utf8": "%FF%FEabc",
    "space": "%20",
}

_ARG = re.compile(r"<(?:[^>:]+:)?([^>]+)>")


def assert_no_route_fails_on_odd_ids(app, headers_for_role) -> int:
    """Every route with path parameters, every method, every odd id: a status below 500, and a
    problem+json body for every 4xx. Returns how many requests were made."""
    client = app.test_client()
    made, failures = 0, []
    for rule in app.url_map.iter_rules():
        if not rule.arguments or rule.endpoint == "static":
            continue
        access = access_of(app.view_functions[rule.endpoint])
        roles = [r for r in (access.roles if access else ()) if r not in ("public", "eventing")]
        headers = dict(headers_for_role(roles[0])) if roles else {}
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            for name, odd in ODD_IDS.items():
                url = _ARG.sub(odd, rule.rule)
                h = {**headers, "Idempotency-Key": uuid.uuid4().hex}
                resp = client.open(url, method=method, headers=h, json={} if method != "GET" else None)
                made += 1
                if resp.status_code >= 500 or (resp.status_code >= 400 and resp.mimetype != "application/problem+json"):
                    failures.append(f"{resp.status_code} {method} {rule.rule} [{name}]: {resp.get_data(as_text=True)[:200]}")
    assert not failures, "\n".join(failures)
    return made
