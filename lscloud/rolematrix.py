"""The role matrix: who may call each endpoint of a function, kept as data.

Each function has ``functions/<name>/access.yaml``, one row per endpoint::

    endpoints:
      - method: GET
        path: /v1/declarations/{id}
        roles: [enterprise, driver, officer]     # or: public
        partner: false                           # true: a partner bank's signed request is admitted
        scope: own declarations only             # optional: what the role may see there (not checked here)
        note: the record and its allowed actions

The table is written independently of the code: the role-matrix tests call every endpoint with a
token of every registered role (and none, and a partner signature) and hold the answer at the door
(401/403, or anything else) to the table — not to ``@allow``. The README's "who may call" tables
are generated from it (``lscloud docs``, between ``<!-- role-matrix: <fn> -->`` markers), and a test
fails when they are out of date. Path parameters are written ``{name}`` and compared by position,
so the table does not depend on how routes are declared. Only roles of :mod:`lscloud.roles` may be
named. Routes the runtime adds to an app (``/openapi.json`` to every one; ``/downloads/{token}``,
``/events`` … to those that use them) are in :data:`PLATFORM`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import yaml

from . import roles as _roles
from . import rulesyntax

METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE")
FILE = "access.yaml"
_FIELDS = {"method", "path", "roles", "partner", "scope", "note"}
_PARAM = re.compile(r"\{[^{}/]+\}|" + rulesyntax.PARAMETER.pattern)   # access.yaml's {id}, or a rule's
_MARKER = re.compile(r"(<!-- role-matrix: (?P<fn>[a-z0-9-]+)(?: prefix=(?P<prefix>/\S*))? -->\n)(?P<body>.*?)"
                     r"(<!-- /role-matrix -->)", re.S)


class MatrixError(ValueError):
    """A malformed access table; the message names the file and the row."""


def route_key(method: str, path: str) -> tuple[str, str]:
    """``(METHOD, path)`` with every parameter (``{id}``, ``<int:year>``) written ``{}``."""
    return method.upper(), _PARAM.sub("{}", path)


@dataclass(frozen=True)
class Row:
    method: str
    path: str
    roles: tuple[str, ...] = ()
    public: bool = False
    partner: bool = False
    eventing: bool = False
    scope: str | None = None
    note: str = ""

    @property
    def key(self) -> tuple[str, str]:
        return route_key(self.method, self.path)

    def admits(self, role: str | None) -> bool:
        """Whether a caller with a token of ``role`` (None: no credential; ``bank``: a partner
        signature) gets past the door."""
        if self.public:
            return True
        if role is None or self.eventing:
            return False
        if role == _roles.PARTNER:
            return self.partner
        return role in self.roles

    def who(self) -> str:
        if self.public:
            text = "anyone"
        elif self.eventing:
            text = "the platform's event delivery"
        else:
            text = ", ".join(list(self.roles) + (["partner bank (signed request)"] if self.partner else []))
        return f"{text} — {self.scope}" if self.scope else text


@dataclass(frozen=True)
class Matrix:
    function: str
    rows: tuple[Row, ...]
    source: str = ""
    by_key: dict = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self):
        self.by_key.update({r.key: r for r in self.rows})

    def row(self, method: str, path: str) -> Row | None:
        return self.by_key.get(route_key(method, path))


PLATFORM = Matrix("platform", (
    Row("GET", "/openapi.json", public=True, note="the function's OpenAPI 3.1 document"),
    Row("GET", "/downloads/{token}", public=True,
        note="a file by the short-lived link the function handed out (the link is the credential; "
             "functions that hand out links)"),
    Row("POST", "/events", eventing=True, note="CloudEvents delivered by the platform (functions that subscribe)"),
    Row("POST", "/events/dead-letters", eventing=True,
        note="events a subscription of the function gave up on (its Triggers' dead-letter sink)"),
    Row("GET", "/platform/dead-letters", roles=("operator", "auditor"),
        note="those dead letters, listed for the platform's operations staff (functions with events)"),
    Row("POST", "/platform/dead-letters/{letter}/retry", roles=("operator",),
        note="one of them run again once its cause is fixed, and settled (functions with events)"),
), source="lscloud/rolematrix.py")
"""Routes the runtime adds to a function's app: in no function's table, in every app that has them."""


def _row(raw: object, where: str) -> Row:
    if not isinstance(raw, dict):
        raise MatrixError(f"{where}: each endpoint is a mapping")
    unknown = sorted(set(raw) - _FIELDS)
    if unknown:
        raise MatrixError(f"{where}: unknown field(s) {unknown}; known: {sorted(_FIELDS)}")
    method = str(raw.get("method", "")).upper()
    if method not in METHODS:
        raise MatrixError(f"{where}: method must be one of {', '.join(METHODS)}")
    path = raw.get("path")
    if not isinstance(path, str) or not path.startswith("/") or "<" in path:
        raise MatrixError(f"{where}: path must start with '/' and write parameters as {{name}}")
    note = raw.get("note")
    if not isinstance(note, str) or not note.strip():
        raise MatrixError(f"{where}: note (what the endpoint does) is required")
    scope = raw.get("scope")
    if scope is not None and (not isinstance(scope, str) or not scope.strip()):
        raise MatrixError(f"{where}: scope must be a sentence")
    partner = raw.get("partner", False)
    if not isinstance(partner, bool):
        raise MatrixError(f"{where}: partner must be true or false")
    roles = raw.get("roles", [])
    if roles == _roles.PUBLIC:
        if partner:
            raise MatrixError(f"{where}: a public endpoint needs no partner flag")
        return Row(method, path, public=True, scope=scope, note=note.strip())
    if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
        raise MatrixError(f"{where}: roles must be a list of role names, or the word public")
    for r in roles:
        if r in (_roles.PUBLIC, _roles.EVENTING):
            raise MatrixError(f"{where}: {r!r} cannot be listed with roles (write roles: public)")
        if r == _roles.PARTNER:
            raise MatrixError(f"{where}: partner banks sign their requests: write partner: true, not {r!r}")
        if not _roles.known(r):
            raise MatrixError(f"{where}: {r!r} is not a platform role (lscloud/roles.py)")
    if len(set(roles)) != len(roles):
        raise MatrixError(f"{where}: a role is listed twice")
    if not roles and not partner:
        raise MatrixError(f"{where}: nobody may call it: name roles, partner: true, or roles: public")
    return Row(method, path, tuple(roles), partner=partner, scope=scope, note=note.strip())


def parse(text: str, function: str, source: str = "") -> Matrix:
    """A matrix from the YAML text of an access table."""
    where = source or f"{function}/{FILE}"
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise MatrixError(f"{where}: not YAML: {exc}") from None
    if not isinstance(doc, dict) or not isinstance(doc.get("endpoints"), list) or set(doc) - {"endpoints"}:
        raise MatrixError(f"{where}: expected one key, endpoints: a list")
    rows = tuple(_row(raw, f"{where}: endpoints[{i}]") for i, raw in enumerate(doc["endpoints"]))
    seen: dict[tuple[str, str], int] = {}
    for i, r in enumerate(rows):
        if r.key in seen or r.key in PLATFORM.by_key:
            raise MatrixError(f"{where}: endpoints[{i}] {r.method} {r.path} is listed twice (or is a platform route)")
        seen[r.key] = i
    return Matrix(function, rows, source=where)


def load(function_dir: str | Path) -> Matrix:
    """``<function_dir>/access.yaml``; the function's name is the folder's."""
    root = Path(function_dir)
    path = root / FILE
    if not path.exists():
        raise MatrixError(f"{path}: missing: every function keeps its role matrix there")
    return parse(path.read_text(encoding="utf-8"), root.name, str(path))


def app_routes(app) -> set[tuple[str, str]]:
    """Every ``(METHOD, path key)`` a Flask app serves (HEAD and OPTIONS aside)."""
    out = set()
    for rule in app.url_map.iter_rules():
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            out.add(route_key(method, rule.rule))
    return out


def differences(app, matrix: Matrix) -> tuple[list[tuple[str, str]], list[tuple[str, str]]]:
    """``(served but not in the table, in the table but not served)``; platform routes count as listed."""
    served = app_routes(app)
    unlisted = sorted(k for k in served if k not in matrix.by_key and k not in PLATFORM.by_key)
    stale = sorted(k for k in matrix.by_key if k not in served)
    return unlisted, stale


# -- the README tables ------------------------------------------------------------------------------

def render(matrix: Matrix, prefix: str = "") -> str:
    """The markdown table of ``matrix`` (paths under ``prefix``, e.g. ``/border``)."""
    lines = ["| Method | Path | Who may call | What |", "|---|---|---|---|"]
    for r in matrix.rows:
        cells = [r.method, f"`{prefix}{r.path}`", r.who(), r.note]
        lines.append("| " + " | ".join(c.replace("|", "\\|").replace("\n", " ") for c in cells) + " |")
    return "\n".join(lines) + "\n"


def update_text(text: str, matrices: Mapping[str, Matrix], where: str = "") -> str:
    """``text`` with the body of every ``<!-- role-matrix: <fn> [prefix=/p] -->`` block regenerated."""

    def replace(m: re.Match) -> str:
        fn = m.group("fn")
        if fn not in matrices:
            raise MatrixError(f"{where}: a role-matrix block names {fn!r}, which has no access table")
        return m.group(1) + render(matrices[fn], m.group("prefix") or "") + m.group(5)

    return _MARKER.sub(replace, text)


def documents(root: str | Path) -> list[Path]:
    """The READMEs that may hold role-matrix blocks: the project's and each function's."""
    root = Path(root)
    return [p for p in [root / "README.md", *sorted((root / "functions").glob("*/README.md"))] if p.exists()]


def all_matrices(root: str | Path) -> dict[str, Matrix]:
    """The access table of every function under ``<root>/functions``."""
    return {d.name: load(d) for d in sorted((Path(root) / "functions").iterdir())
            if (d / "function" / "__init__.py").exists()}


def sync_documents(root: str | Path, *, write: bool) -> list[Path]:
    """Regenerate the README tables; returns the files that were (or, without ``write``, would be) changed."""
    matrices = all_matrices(root)
    changed = []
    for path in documents(root):
        text = path.read_text(encoding="utf-8")
        fresh = update_text(text, matrices, str(path))
        if fresh != text:
            changed.append(path)
            if write:
                path.write_text(fresh, encoding="utf-8")
    return changed


def blocks(text: str) -> list[str]:
    """The function names of the role-matrix blocks in ``text``."""
    return [m.group("fn") for m in _MARKER.finditer(text)]
