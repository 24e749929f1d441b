"""Helpers for the border tests: a stand-in directory over real HTTP (ETag/304), the border function
started against it, tokens, bodies."""

from __future__ import annotations

import itertools
import uuid
from datetime import datetime, timedelta, timezone

import pytest

from werkzeug.wrappers import Request, Response

from peer_stubs import Served, conditional_json
from client_answers import idem, ok  # noqa: F401 (its tests take them from here)

GATES = {
    "huu-nghi": {"code": "huu-nghi", "name": "Cửa khẩu quốc tế Hữu Nghị", "mode": "road",
                 "hours": {"timezone": "Asia/Ho_Chi_Minh", "days": [1, 2, 3, 4, 5, 6, 7], "open": "00:00", "close": "24:00"},
                 "capacity": {"unit": "truck", "export_per_hour": 45, "import_per_hour": 30}},
    "tan-thanh": {"code": "tan-thanh", "name": "Cửa khẩu Tân Thanh", "mode": "road",
                  "hours": {"timezone": "Asia/Ho_Chi_Minh", "days": [1, 2, 3, 4, 5, 6, 7], "open": "00:00", "close": "24:00"},
                  "capacity": {"unit": "truck", "export_per_hour": 40, "import_per_hour": 20}},
    "dong-dang-rail": {"code": "dong-dang-rail", "mode": "rail", "hours": {}, "capacity": {}},
}


class DirectoryStub(Served):
    """Answers /directory/v1/border-gates/<code> like the directory does (strong ETag, 304)."""

    def __init__(self):
        self.hits = 0

        @Request.application
        def app(request):
            self.hits += 1
            parts = request.path.strip("/").split("/")
            if len(parts) == 4 and parts[:3] == ["directory", "v1", "border-gates"] and parts[3] in GATES:
                return conditional_json(GATES[parts[3]], request)
            return Response('{"status":404}', status=404, mimetype="application/problem+json")

        super().__init__(app)


TAX = "0100109106"      # a valid MST (check digit)
TAX2 = "0101234565"


def declaration(id_: str, *, gate="huu-nghi", direction="import", plate="桂A·12345", trailer="桂A·6789挂",
                goods=None, submit=True, booking=None, driver_id="E12345678", tax=TAX, arrival=None) -> dict:
    arrival = arrival or (datetime.now(timezone.utc) + timedelta(minutes=5)).isoformat()
    b = {"id": id_, "gate": gate, "direction": direction, "expected_arrival": arrival,
         "vehicle": {"tractor_plate": plate, "type": "tractor-trailer", "axles": 5, "empty_weight_kg": 15000},
         "driver": {"name": "Lý Văn A", "nationality": "CN", "id_type": "passport", "id_number": driver_id,
                    "phone": "+86 138 0000 0000"},
         "enterprise": {"tax_code": tax, "name": "Công ty Xuất nhập khẩu A"},
         "goods": goods or [{"hs_code": "0810.90", "description": "Sầu riêng tươi", "packages": 800,
                             "gross_weight_kg": 16000, "value": 40000, "currency": "USD", "origin": "CN",
                             "perishable": True},
                            {"hs_code": "0303", "description": "Cá đông lạnh", "packages": 100,
                             "gross_weight_kg": 2000, "value": 5000, "currency": "USD", "origin": "CN"}],
         "health": {"fever": False, "symptoms": [], "contact_with_case": False},
         "submit": submit}
    if trailer:
        b["vehicle"]["trailer_plate"] = trailer
    if booking:
        b["booking"] = booking
    return b


AGENCIES = ("customs", "border-guard", "health-quarantine", "animal-quarantine", "plant-quarantine",
            "traffic-police", "tax", "ezone-board")

# the fixtures most border test modules share; a module takes them by importing them by name
# (``from border_support import client, directory, fn  # noqa: F401``), and defines its own where it differs
_n = itertools.count()


@pytest.fixture(scope="module")
def directory():
    stub = DirectoryStub()
    yield stub
    stub.stop()


@pytest.fixture
def fn(start_function, directory):
    return start_function("border", peer_url_template=directory.template)


@pytest.fixture
def border(start_function, directory):
    """``border(**env)``: the border function started on the test's servers, asking the stand-in
    directory for its gates; ``env`` holds its own ``BORDER_*`` variables."""

    def _start(**env):
        return start_function("border", peer_url_template=directory.template, function_env=env)

    return _start


@pytest.fixture
def client(fn):
    return fn.app.test_client()


@pytest.fixture
def tok(tokens):
    def make(role, sub=None, agency=None, unit=None):
        return tokens(role, sub or f"{role}-{next(_n)}", agency=agency, unit=unit)

    return make


def new_id() -> str:
    return "d-" + uuid.uuid4().hex[:16]


def in_yard(client, tok, *, gate="huu-nghi", plate="桂A·12345", nationality="CN", phone=None) -> tuple[str, str]:
    """A truck booked at ``gate`` (living queue) and waiting in its yard: ``(declaration id, code)``;
    ``nationality`` and ``phone``: its driver's (a Chinese driver's otherwise)."""
    did = new_id()
    body = declaration(did, gate=gate, trailer=None, plate=plate, booking={"mode": "living"})
    body["driver"] = {**body["driver"], "nationality": nationality, **({"phone": phone} if phone else {})}
    code = ok(client.post("/v1/declarations", json=body, headers=tok("enterprise", sub=TAX)), 201)["code"]
    ok(client.post(f"/v1/declarations/{did}/arrival", headers=idem(tok("yard-operator", unit=gate))))
    return did, code


def called(client, tok, *, gate="huu-nghi", **truck) -> tuple[str, str]:
    """A truck called to ``gate`` (:func:`in_yard`, then called): ``(declaration id, code)``. Trucks
    other tests left in its yard are called first."""
    did, code = in_yard(client, tok, gate=gate, **truck)
    operator = tok("gate-operator", unit=gate)
    for _ in range(20):
        out = ok(client.post(f"/v1/gates/{gate}/calls", json={"flow": "in", "count": 10}, headers=idem(operator)))
        if did in [c["declaration_id"] for c in out["called"]]:
            return did, code
    raise AssertionError(f"{did} was not called at {gate}")
