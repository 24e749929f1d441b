"""The platform's role registry and every function's role matrix (functions/<name>/access.yaml):
the registry is complete and bilingual, @allow and the tables name only registered roles, each
function's table lists exactly the routes its app serves, and the README tables are generated from
the tables (`lscloud docs`). Calling every endpoint with every role against the tables is in each
function's API test (tests/integration/role_matrix.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from lscloud import auth, cli, config, rolematrix, roles, runtime
from lscloud.loading import load_function
from lscloud.web import build_openapi

ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS = sorted(d.name for d in (ROOT / "functions").iterdir() if (d / "function" / "__init__.py").exists())


def test_every_role_has_a_meaning_in_english_and_vietnamese():
    assert {"citizen", "enterprise", "driver", "officer", "supervisor", "operator", "auditor", "ioc", "teller",
            "yard-operator", "gate-operator", "device", "bank"} <= set(roles.REGISTRY)
    for name, role in roles.REGISTRY.items():
        assert role.name == name and role.en.strip() and role.vi.strip() and role.credential in ("token", "signature")
    assert roles.REGISTRY[roles.PARTNER].credential == "signature"
    assert auth.KNOWN_ROLES == frozenset(roles.REGISTRY) and roles.PARTNER not in roles.token_roles()
    with pytest.raises(roles.UnknownRole, match="lscloud/roles.py"):
        roles.get("clerk")


def test_allow_refuses_a_role_the_registry_does_not_know():
    with pytest.raises(TypeError, match="not a platform role"):
        auth.allow("clerk")
    with pytest.raises(TypeError, match="not a platform role"):
        auth.allow("officer", "yard_operator")   # a typo of yard-operator
    with pytest.raises(TypeError, match="partner=True"):
        auth.allow("bank")
    for name in roles.token_roles():
        auth.allow(name)
    auth.allow("public"), auth.allow("eventing"), auth.allow(partner=True)


@pytest.fixture(scope="module")
def settings(tmp_path_factory):
    # no server is asked: building an app only declares its routes
    s = config.load({"LSCLOUD_S3_ENDPOINT": "http://127.0.0.1:9", "LSCLOUD_NATS_URL": "nats://127.0.0.1:9",
                     "LSCLOUD_STATE_DIR": str(tmp_path_factory.mktemp("state"))})
    runtime.install(runtime.Runtime(s))
    yield s
    runtime.uninstall()


@pytest.mark.parametrize("name", FUNCTIONS)
def test_every_route_is_in_the_functions_table_and_every_row_is_served(name, settings):
    matrix = rolematrix.load(ROOT / "functions" / name)   # loading refuses unregistered roles
    app = load_function(ROOT / "functions" / name).new()._build(settings.replace(service=name))
    unlisted, stale = rolematrix.differences(app, matrix)
    assert unlisted == [] and stale == [], f"served, not in access.yaml: {unlisted}; listed, not served: {stale}"
    assert matrix.rows and all(r.note for r in matrix.rows)


def test_the_readme_tables_are_generated_from_the_access_tables():
    assert rolematrix.sync_documents(ROOT, write=False) == [], "run `lscloud docs`"
    named = {fn for doc in rolematrix.documents(ROOT) for fn in rolematrix.blocks(doc.read_text(encoding="utf-8"))}
    assert named == set(FUNCTIONS), "every function's table appears in a README"


def test_a_stale_readme_table_is_found_and_rewritten(tmp_path):
    (tmp_path / "functions" / "demo" / "function").mkdir(parents=True)
    (tmp_path / "functions" / "demo" / "function" / "__init__.py").write_text("")
    (tmp_path / "functions" / "demo" / "access.yaml").write_text(
        "endpoints:\n  - {method: GET, path: '/v1/things/{id}', roles: [officer, auditor], scope: their agency's,"
        " note: one thing}\n  - {method: POST, path: /v1/things, roles: public, note: 'add one | or two'}\n")
    readme = tmp_path / "README.md"
    readme.write_text("# demo\n\n<!-- role-matrix: demo prefix=/demo -->\n| old |\n<!-- /role-matrix -->\nafter\n")
    assert cli.main(["docs", "--check", "--root", str(tmp_path)]) == cli.EXIT_FAIL
    assert "| old |" in readme.read_text()
    assert cli.main(["docs", "--root", str(tmp_path)]) == cli.EXIT_OK
    assert readme.read_text() == (
        "# demo\n\n<!-- role-matrix: demo prefix=/demo -->\n"
        "| Method | Path | Who may call | What |\n|---|---|---|---|\n"
        "| GET | `/demo/v1/things/{id}` | officer, auditor — their agency's | one thing |\n"
        "| POST | `/demo/v1/things` | anyone | add one \\| or two |\n"
        "<!-- /role-matrix -->\nafter\n")
    assert cli.main(["docs", "--check", "--root", str(tmp_path)]) == cli.EXIT_OK


@pytest.mark.parametrize("text,error", [
    ("endpoints:\n  - {method: GET, path: /x, roles: [clerk], note: n}\n", "not a platform role"),
    ("endpoints:\n  - {method: GET, path: /x, roles: [bank], note: n}\n", "partner: true"),
    ("endpoints:\n  - {method: GET, path: /x, roles: [public], note: n}\n", "roles: public"),
    ("endpoints:\n  - {method: GET, path: /x, roles: [officer], note: n}\n"
     "  - {method: GET, path: '/x', roles: [auditor], note: m}\n", "listed twice"),
    ("endpoints:\n  - {method: GET, path: '/x/{a}', roles: [officer], note: n}\n"
     "  - {method: GET, path: '/x/{b}', roles: [auditor], note: m}\n", "listed twice"),
    ("endpoints:\n  - {method: GET, path: /openapi.json, roles: public, note: n}\n", "platform route"),
    ("endpoints:\n  - {method: GET, path: /x, roles: [], note: n}\n", "nobody may call it"),
    ("endpoints:\n  - {method: GET, path: /x, roles: [officer]}\n", "note"),
    ("endpoints:\n  - {method: GET, path: '/x/<int:y>', roles: [officer], note: n}\n", "{name}"),
    ("endpoints:\n  - {method: FETCH, path: /x, roles: [officer], note: n}\n", "method"),
    ("endpoints:\n  - {method: GET, path: /x, roles: [officer], who: me, note: n}\n", "unknown field"),
    ("routes: []\n", "endpoints"),
])
def test_malformed_tables_are_refused_with_the_reason(text, error):
    with pytest.raises(rolematrix.MatrixError, match=error.replace("{", r"\{").replace("}", r"\}")):
        rolematrix.parse(text, "demo")


def test_rows_admit_exactly_what_they_say():
    m = rolematrix.parse("endpoints:\n  - {method: GET, path: /a, roles: [teller], partner: true, note: n}\n"
                         "  - {method: GET, path: /b, roles: public, note: n}\n", "demo")
    a, b = m.rows
    assert a.admits("teller") and a.admits("bank") and not a.admits("operator") and not a.admits(None)
    assert all(b.admits(r) for r in (*roles.names(), None))
    assert m.row("GET", "/a") is a and m.row("get", "/b") is b and m.row("GET", "/c") is None
    assert rolematrix.route_key("get", "/v1/x/<int:year>/<y>") == rolematrix.route_key("GET", "/v1/x/{a}/{b}")
    eventing = [r for r in rolematrix.PLATFORM.rows if r.eventing]
    assert [r.path for r in eventing] == ["/events", "/events/dead-letters"]
    assert not any(row.admits(r) for row in eventing for r in (*roles.names(), None))


def test_the_openapi_document_names_the_registered_roles(settings):
    app = load_function(ROOT / "functions" / "border").new()._build(settings.replace(service="border"))
    doc = build_openapi(app)
    assert set(doc["x-lscloud-roles"]) == set(roles.REGISTRY)
    assert doc["x-lscloud-roles"]["yard-operator"]["vi"] == roles.REGISTRY["yard-operator"].vi
    described = doc["components"]["securitySchemes"]["bearer"]["description"]
    assert all(f"`{name}`" in described for name in roles.token_roles())
