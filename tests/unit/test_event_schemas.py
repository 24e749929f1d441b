"""Every event type the code publishes has exactly one schema for its data, and every schema's types
are published: the map ``/events`` validates deliveries with (``x-lscloud-event-types`` in each file
under ``schemas/events/``, :mod:`lscloud.knative`).

What is published is read from the code: the state machines' facts (each action's, and the
``fact=`` / ``note(…, fact, …)`` / ``.fact("…")`` call sites of each function, in its machine's
domain), and every string that is a whole event type. The few types built by a format string are
listed in :data:`BUILT`: a new one not listed there fails here, so it cannot slip past the map."""

from __future__ import annotations

import ast
import importlib
import json
from pathlib import Path

import pytest
import yaml

from lscloud import events, knative
from lscloud.statemachine import StateMachine

ROOT = Path(__file__).resolve().parents[2]
EVENTS_DIR = ROOT / "schemas" / "events"
FUNCTIONS = sorted(p.parent.name for p in (ROOT / "functions").glob("*/func.yaml"))


def _py_files(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*.py") if "__pycache__" not in p.parts)


def _machines(function: str) -> list[StateMachine]:
    out = []
    for path in _py_files(ROOT / "functions" / function / "function"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        module = importlib.import_module(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
        out += [v for v in vars(module).values() if isinstance(v, StateMachine) and v not in out]
    return out


def _subscribed() -> set[str]:
    out = set()
    for fn in FUNCTIONS:
        manifest = yaml.safe_load((ROOT / "functions" / fn / "func.yaml").read_text(encoding="utf-8"))
        for sub in (manifest.get("deploy") or {}).get("subscriptions") or []:
            out.add((sub.get("filters") or {}).get("type"))
    return out - {None}


def _softatm_states() -> list[str]:
    from functions.softatm.function.transfers import MACHINE

    return [f"transfer.{s.lower()}" for s in MACHINE.states]


def _ioc_facts() -> list[str]:
    from functions.ioc.function import facts

    return [*facts.BORDER, *facts.DOSSIERS, *facts.REPORTS]


# (file, the format string's source) -> what it builds: a fact of the file's domain, or whole types
BUILT = {
    ("functions/softatm/function/cash.py", "f\"cash.{'delivered' if kind == 'delivery' else 'collected'}\""):
        lambda: ["cash.delivered", "cash.collected"],
    ("functions/softatm/function/consequences.py", "f\"transfer.{doc['state'].lower()}\""): _softatm_states,
    ("functions/environment/function/alerts.py", 'f"vn.langson.environment.alert.{move}.v1"'):
        lambda: ["vn.langson.environment.alert.raised.v1", "vn.langson.environment.alert.cleared.v1"],
    # the devices relay: one domain per function subscribing to its devices' messages
    ("lscloud/devices.py", 'f"vn.langson.{domain}.device.message.received.v1"'):
        lambda: sorted(t for t in _subscribed() if t.endswith(".device.message.received.v1")),
    # the machines' facts, read from the machines themselves
    ("lscloud/statemachine.py", 'f"vn.langson.{self.domain}.{fact}.v1"'): lambda: [],
    # what the IOC listens to (published by their functions): held to the map all the same
    ("functions/ioc/function/facts.py", 'f"vn.langson.border.{f}.v1"'): _ioc_facts,
    ("functions/ioc/function/facts.py", 'f"vn.langson.dossiers.{f}.v1"'): _ioc_facts,
    ("functions/ioc/function/facts.py", 'f"vn.langson.reports.report.{f}.v1"'): _ioc_facts,
}


def _fact_argument(call: ast.Call) -> ast.expr | None:
    """The fact a call names: ``x.fact(FACT, …)``, ``x.note(doc, action, FACT, …)``, ``apply(…, fact=FACT)``."""
    name = call.func.attr if isinstance(call.func, ast.Attribute) else getattr(call.func, "id", None)
    for kw in call.keywords:
        if kw.arg == "fact" and name in ("apply", "note"):
            return kw.value
    if name == "fact" and call.args:
        return call.args[0]
    if name == "note" and len(call.args) >= 3:
        return call.args[2]
    return None


def _scan(path: Path) -> tuple[set[str], set[str], list[str]]:
    """``(facts, whole types, format strings not in BUILT)`` of one file."""
    rel = path.relative_to(ROOT).as_posix()
    text = path.read_text(encoding="utf-8")
    tree = ast.parse(text)
    facts, types, unknown = set(), set(), []
    fact_nodes = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            arg = _fact_argument(node)
            if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                facts.add(arg.value)
                fact_nodes.add(id(arg))
            elif isinstance(arg, ast.JoinedStr):
                fact_nodes.add(id(arg))
                built = BUILT.get((rel, ast.get_source_segment(text, arg)))
                if built is None:
                    unknown.append(f"{rel}:{arg.lineno} {ast.get_source_segment(text, arg)}")
                else:
                    facts.update(built())
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in fact_nodes:
            if events.TYPE_PATTERN.match(node.value):
                types.add(node.value)
        elif isinstance(node, ast.JoinedStr) and id(node) not in fact_nodes:
            head = node.values[0] if node.values else None
            if isinstance(head, ast.Constant) and str(head.value).startswith("vn.langson."):
                built = BUILT.get((rel, ast.get_source_segment(text, node)))
                if built is None:
                    unknown.append(f"{rel}:{node.lineno} {ast.get_source_segment(text, node)}")
                else:
                    types.update(built())
    return facts, types, unknown


def published() -> tuple[dict[str, str], list[str]]:
    """Every event type the code publishes (or names as a whole), with where it was found; and
    the format strings that build types and are not in :data:`BUILT`."""
    out: dict[str, str] = {}
    named: dict[str, str] = {}   # whole types in the code: kept after the facts, which say who publishes
    unknown: list[str] = []
    for fn in FUNCTIONS:
        machines = _machines(fn)
        domains = {m.domain for m in machines}
        for m in machines:
            for a in m.actions.values():
                out.setdefault(m.event_type(a.fact), f"functions/{fn} (its {m.domain} machine)")
        for path in _py_files(ROOT / "functions" / fn / "function"):
            facts, types, wrong = _scan(path)
            unknown += wrong
            if facts:
                assert len(domains) == 1, f"{path}: facts {sorted(facts)} but machines of {sorted(domains)}"
                (domain,) = domains
                for f in facts:
                    out.setdefault(f"vn.langson.{domain}.{f}.v1", str(path.relative_to(ROOT)))
            named.update({t: str(path.relative_to(ROOT)) for t in types if t not in named})
    for path in _py_files(ROOT / "lscloud"):
        _, types, wrong = _scan(path)
        unknown += wrong
        named.update({t: str(path.relative_to(ROOT)) for t in types if t not in named})
    return {**named, **out}, unknown


def covered() -> dict[str, list[str]]:
    """Event type -> the schema files that list it."""
    out: dict[str, list[str]] = {}
    for path in sorted(EVENTS_DIR.rglob("*.json")):
        doc = json.loads(path.read_text(encoding="utf-8"))
        for t in doc.get(knative.EVENT_TYPES_KEYWORD, []):
            out.setdefault(t, []).append(path.relative_to(EVENTS_DIR).as_posix())
    return out


def test_every_schema_file_lists_the_event_types_it_covers():
    for path in sorted(EVENTS_DIR.rglob("*.json")):
        types = json.loads(path.read_text(encoding="utf-8")).get(knative.EVENT_TYPES_KEYWORD)
        assert isinstance(types, list) and types, f"{path.relative_to(ROOT)} lists no event types"
        assert len(set(types)) == len(types) and all(events.TYPE_PATTERN.match(t) for t in types), path


def test_every_published_type_has_exactly_one_schema_and_every_listed_type_is_published():
    types, unknown = published()
    assert not unknown, "event types built by a format string this test does not know (add them to BUILT):\n" \
        + "\n".join(unknown)
    schemas = covered()
    assert {t: where for t, where in types.items() if t not in schemas} == {}, "published with no schema"
    assert {t: files for t, files in schemas.items() if len(files) > 1} == {}, "listed by more than one schema"
    assert sorted(set(schemas) - set(types)) == [], "listed by a schema but published nowhere"


@pytest.mark.parametrize("event_type", ["vn.langson.softatm.transfer.reserved.v1",
                                        "vn.langson.border.truck.exited.v1",
                                        "vn.langson.reports.report.rated.v1",
                                        "vn.langson.environment.device.message.received.v1"])
def test_the_runtime_reads_the_same_map(event_type):
    """``/events`` finds a type's schema by the same keyword (the file it names is the one listed)."""
    found = knative.EventSchemas(ROOT / "schemas")
    assert found.schema_of(event_type) == "events/" + covered()[event_type][0]
    assert found.schema_of("vn.langson.test.parcel.received.v1") is None


def test_without_its_event_schemas_a_function_does_not_start(tmp_path):
    """An image without ``schemas/`` would take every event unchecked: the start stops, naming what
    is missing; and a type two files claim is refused there too (which schema would hold?)."""
    from lscloud.config import Settings
    from lscloud.web import create_app

    app = create_app("x", schemas_dir=tmp_path, settings=Settings())
    with pytest.raises(RuntimeError, match="no event schemas under"):
        knative.EventSchemas.of(app)
    (tmp_path / "events" / "a").mkdir(parents=True)
    for name in ("one.json", "two.json"):
        (tmp_path / "events" / "a" / name).write_text(json.dumps(
            {knative.EVENT_TYPES_KEYWORD: ["vn.langson.a.thing.done.v1"], "type": "object"}))
    with pytest.raises(RuntimeError, match="listed by two schemas"):
        knative.EventSchemas.of(app)


def _times(node, where: str):
    """Every property named ``at`` or ``*_at`` under ``node``, with where it is."""
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            if (name == "at" or name.endswith("_at")) and isinstance(sub, dict):
                yield f"{where}/{name}", sub
        for key, sub in node.items():
            yield from _times(sub, f"{where}/{key}")
    elif isinstance(node, list):
        for i, sub in enumerate(node):
            yield from _times(sub, f"{where}/{i}")


def test_every_time_in_event_data_is_a_date_time_with_its_offset():
    # consumers parse these times (deadlines, the IOC's ages, the audit's order): a schema typing one as a
    # bare string would let "yesterday" or a local time without offset through the /events check
    loose = []
    for path in sorted(EVENTS_DIR.rglob("*.json")):
        for where, prop in _times(json.loads(path.read_text(encoding="utf-8")), path.relative_to(EVENTS_DIR).as_posix()):
            types = prop.get("type")
            strings = types == "string" or (isinstance(types, list) and "string" in types)
            if strings and prop.get("format") != "date-time":
                loose.append(where)
    assert not loose, f"event times without format date-time: {loose}"


def _closed_schemas(root: Path) -> None:
    """A type whose data closes its objects everywhere a schema can: at the top, in ``$defs``, in
    another file by ``$ref``, by ``unevaluatedProperties``; and a map whose values keep a schema."""
    (root / "events" / "t").mkdir(parents=True)
    (root / "common").mkdir()
    (root / "common" / "place.json").write_text(json.dumps({
        "type": "object", "additionalProperties": False, "required": ["gate"],
        "properties": {"gate": {"type": "string", "pattern": "^[a-z]+$"}}}))
    (root / "events" / "t" / "thing.json").write_text(json.dumps({
        knative.EVENT_TYPES_KEYWORD: ["vn.langson.t.thing.done.v1"],
        "type": "object", "additionalProperties": False, "required": ["n", "at", "place", "items", "tags"],
        "properties": {"n": {"type": "integer", "minimum": 1}, "at": {"type": "string", "format": "date-time"},
                       "place": {"$ref": "../../common/place.json"},
                       "items": {"type": "array", "items": {"$ref": "#/$defs/item"}},
                       "tags": {"allOf": [{"properties": {"a": {"type": "string"}}}], "unevaluatedProperties": False},
                       "values": {"type": "object", "additionalProperties": {"type": "number"}}},
        "$defs": {"item": {"type": "object", "additionalProperties": False, "required": ["kind"],
                           "properties": {"kind": {"enum": ["x", "y"]}}}}}))


def test_a_consumer_reads_event_data_tolerantly_and_the_contract_stays_closed(tmp_path):
    """A producer one release ahead adds fields: the consumer's check (``/events``) lets them
    through wherever they are, and holds every other rule; the schema itself, what producers are
    held to, still refuses them."""
    from lscloud.web import SchemaSet

    _closed_schemas(tmp_path)
    data = {"n": 1, "at": "2026-03-01T08:00:00+07:00", "place": {"gate": "huunghi"}, "items": [{"kind": "x"}],
            "tags": {"a": "b"}, "values": {"pm25": 1.5}}
    newer = {**data, "new": 1, "place": {"gate": "huunghi", "lane": 2}, "items": [{"kind": "x", "weight": 3}],
             "tags": {"a": "b", "c": True}}
    consumer = knative.EventSchemas(tmp_path)

    def fields(d: dict) -> list[str]:
        return sorted(e["field"] for e in consumer.errors(events.new_event("vn.langson.t.thing.done.v1", "/t", d)))

    assert fields(data) == [] and fields(newer) == []
    assert fields({**newer, "n": 0, "at": "2026-03-01T08:00:00", "place": {"gate": "HN", "lane": 2},
                   "items": [{"weight": 3}], "values": {"pm25": "high"}}) == \
        ["/data/at", "/data/items/0/kind", "/data/n", "/data/place/gate", "/data/values/pm25"]
    assert fields({k: v for k, v in newer.items() if k != "tags"}) == ["/data/tags"]

    contract = "events/t/thing.json"
    strict = SchemaSet(tmp_path)
    assert strict.errors(contract, data) == []
    assert {e["field"] for e in strict.errors(contract, newer)} >= {"/items/0/weight", "/new", "/place/lane", "/tags/c"}


def test_the_producers_events_keep_their_closed_contracts():
    """The events producers build (their own code, not a test's copy) keep the schema as written,
    ``additionalProperties: false`` included: consumers let unknown fields through, so only here
    would a field no schema lists (a customer's account in a soft ATM fact) be caught."""
    from datetime import datetime, timezone

    from functions.softatm.function.transfers import MACHINE, event_data
    from lscloud import clock
    from lscloud.statemachine import Actor
    from lscloud.web import SchemaSet

    schemas, consumer = SchemaSet(ROOT / "schemas"), knative.EventSchemas(ROOT / "schemas")
    at = datetime(2026, 3, 1, 1, 0, tzinfo=timezone.utc)
    built = [clock.tick_event(at), clock.tick_event(at, 30.0)]
    for kind, steps in (("withdrawal", ["receive", "reserve", "commit"]), ("deposit", ["receive", "confirm"]),
                        ("withdrawal", ["receive", "reserve", "expire"])):
        doc = {"id": f"T-{kind}-{len(steps)}", "kind": kind, "state": "new", "bank": "mb", "point": "bd-06001",
               "unit_code": "06001", "amount_vnd": 500_000, "account": "0123456789", "phone": None,
               "customer_id_number": "020095001234"}
        for step in steps:
            t = MACHINE.apply(doc, step, Actor("teller", "teller-1"), at=at, check=False)
            if step == "expire":
                doc["abort_reason"] = "expired"
            built.append(events.new_event(t.event_type, "/softatm", event_data(doc), subject=doc["id"]))
    assert len({e["type"] for e in built}) == 5
    for e in built:
        contract = consumer.schema_of(e["type"])
        assert schemas.errors(contract, e["data"]) == [], (e["type"], e["data"])
    # the whole stored transfer as a fact's data: the contract names the customer's fields
    leaked = {**event_data(doc), "account": doc["account"], "customer_id_number": doc["customer_id_number"]}
    assert [e["field"] for e in schemas.errors("events/softatm/transfer.aborted.json", leaked)] == \
        ["/account", "/customer_id_number"]
