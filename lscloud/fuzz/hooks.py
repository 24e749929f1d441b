"""Schemathesis extension for `lscloud fuzz`: a bearer token of a role the operation admits, per case.

Loaded by the ``st run`` subprocess through ``SCHEMATHESIS_HOOKS=lscloud.fuzz.hooks`` (the
documented way to extend the CLI) and registered as an auth provider (``@schemathesis.auth``),
so schemathesis knows the token is a real credential: its ``ignored_auth`` check then probes
each operation without it and with a broken one. The plan file named by ``LSCLOUD_FUZZ_PLAN`` maps each
operation (``"GET /v1/x/{id}"``) to the roles that may call it and holds one token per role.
The role is chosen from the case's content, not at random, so a case Hypothesis replays while
shrinking is sent with the same token.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import schemathesis

from .. import config

PLAN_ENV = "LSCLOUD_FUZZ_PLAN"
ANONYMOUS = ""  # a "role" whose requests carry no token

_plan: dict | None = None


def plan() -> dict:
    global _plan
    if _plan is None:
        _plan = json.loads(Path(config.environ()[PLAN_ENV]).read_text(encoding="utf-8"))
    return _plan


def choose_role(roles: list[str], case_fingerprint: str) -> str:
    """One of ``roles``, the same one for the same case."""
    digest = hashlib.sha256(case_fingerprint.encode("utf-8", "surrogatepass")).digest()
    return roles[int.from_bytes(digest[:4], "big") % len(roles)]


def _fingerprint(case) -> str:
    return repr((case.method, case.path, case.path_parameters, case.query, case.body))


@schemathesis.auth(refresh_interval=None, retry_on=[])
class RoleTokens:
    """The token of a role the case's operation admits (none for the anonymous "role")."""

    def get(self, case, context):
        p = plan()
        roles = p["operations"].get(f"{case.method.upper()} {case.path}") or p["public_roles"]
        return p["tokens"].get(choose_role(roles, _fingerprint(case)))

    def set(self, case, data, context):
        if data:
            case.headers = case.headers or {}
            case.headers["Authorization"] = f"Bearer {data}"
