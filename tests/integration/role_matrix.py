"""Every endpoint × every role, held to the function's access table — shared by every function's API test.

The table (``functions/<name>/access.yaml``, read by :mod:`lscloud.rolematrix`) is the independent
statement of who may call what; nothing here reads ``@allow``. For each row, the endpoint is called
with a bearer token of every registered role, with a broken token, with no credential, and (when
the function admits partners) with a partner bank's signed request. The answer at the door is a
refusal — 401, or 403 with the runtime's ``forbidden`` type — or anything else (the domain's own
answer: 400, 404, 422, a domain 403 …). A refusal must happen exactly where the table says so.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Callable, Mapping

from lscloud import rolematrix, roles
from lscloud.auth import issue_token
from lscloud.problems import type_uri

ROOT = Path(__file__).resolve().parents[2]
DOOR_403 = type_uri("forbidden")
FILLER = "x-nonexistent-0"

PartnerCall = Callable[[str, str], object]   # (method, path) -> a response with .status_code and .get_json()


def refused_at_the_door(response) -> bool:
    if response.status_code == 401:
        return True
    if response.status_code != 403:
        return False
    body = response.get_json(silent=True) or {}
    return body.get("type") == DOOR_403


def fill(path: str, samples: Mapping[str, str]) -> str:
    """The table's path with each ``{name}`` replaced by ``samples[name]`` (or a filler that routes)."""
    return re.sub(r"\{([^{}/]+)\}", lambda m: samples.get(m.group(1), FILLER), path)


def token(private_key: str, role: str) -> dict[str, str]:
    # scope claims of some gate, agency and point: the door looks only at the role
    return {"Authorization": "Bearer " + issue_token(private_key, f"{role}-{uuid.uuid4().hex[:8]}", role,
                                                     agency="customs", unit="huu-nghi")}


def check(app, function: str, private_key: str, *, samples: Mapping[str, str] | None = None,
          partner: PartnerCall | None = None, functions_dir: Path = ROOT / "functions") -> int:
    """Hold ``app`` to ``functions/<function>/access.yaml``; returns how many calls were checked.

    ``samples`` gives path parameters (by the table's names) values that route, e.g. a ``flow``
    that must be ``in`` or ``out``; ``partner(method, path)`` sends a validly signed partner request
    (required when the table admits partners).
    """
    matrix = rolematrix.load(functions_dir / function)
    unlisted, stale = rolematrix.differences(app, matrix)
    assert not unlisted and not stale, f"{function}: served but not in access.yaml: {unlisted}; " \
                                       f"in access.yaml but not served: {stale}"
    if any(r.partner for r in matrix.rows):
        assert partner is not None, f"{function}'s table admits partner banks: pass partner=…"
    adapter = app.url_map.bind("localhost")
    client = app.test_client()
    served = rolematrix.app_routes(app)
    rows = list(matrix.rows) + [r for r in rolematrix.PLATFORM.rows if r.key in served and not r.eventing]
    wrong, checked = [], 0
    for row in rows:
        path = fill(row.path, samples or {})
        rule, _ = adapter.match(path, method=row.method, return_rule=True)
        assert rolematrix.route_key(row.method, rule.rule) == row.key, (row.method, path, "routes to", rule.rule)
        callers: list[tuple[str, dict[str, str], bool]] = [
            (role, token(private_key, role), row.admits(role)) for role in roles.token_roles()]
        callers += [("no credential", {}, row.admits(None)),
                    ("a broken token", {"Authorization": "Bearer not-a-jwt"}, row.public)]
        for who, headers, admitted in callers:
            r = client.open(path, method=row.method, headers=headers)
            checked += 1
            if refused_at_the_door(r) == admitted:
                wrong.append((row.method, path, who, "admitted" if admitted else "refused", r.status_code))
        if partner is not None:
            r = partner(row.method, path)
            checked += 1
            if refused_at_the_door(r) == row.admits(roles.PARTNER):
                wrong.append((row.method, path, "a partner signature",
                              "admitted" if row.admits(roles.PARTNER) else "refused", r.status_code))
    assert not wrong, "the door disagrees with access.yaml (method, path, caller, table says, got):\n" + \
        "\n".join(map(str, wrong))
    return checked


def events_refusals(app, private_key: str) -> list[tuple[str, int]]:
    """Callers other than the platform's delivery that ``POST /events`` did not refuse."""
    client = app.test_client()
    out = []
    for who, headers in [(role, token(private_key, role)) for role in roles.token_roles()] + [("no credential", {})]:
        for path in ("/events", "/events/dead-letters"):
            r = client.post(path, headers=headers)
            if not refused_at_the_door(r):
                out.append((f"{who} at {path}", r.status_code))
    return out
