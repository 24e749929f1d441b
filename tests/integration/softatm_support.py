"""Helpers for the soft ATM tests: a stand-in directory serving post offices over HTTP (ETag/304)."""

from __future__ import annotations

import pytest
from werkzeug.wrappers import Request, Response

from peer_stubs import Served, conditional_json

OFFICES = {
    "bd-06040": {"code": "bd-06040", "name": "Bưu điện văn hóa xã A", "kind": "commune", "unit_code": "06040",
                 "soft_atm": True, "cash_float_limit_vnd": 200_000_000},
    "bd-06043": {"code": "bd-06043", "name": "Bưu điện văn hóa xã B", "kind": "commune", "unit_code": "06043",
                 "soft_atm": True, "cash_float_limit_vnd": 200_000_000},
    "bd-05977": {"code": "bd-05977", "name": "Bưu cục phường C", "kind": "ward", "unit_code": "05977",
                 "soft_atm": False, "cash_float_limit_vnd": 100_000_000},
}


class DirectoryStub(Served):
    def __init__(self):
        @Request.application
        def app(request):
            parts = request.path.strip("/").split("/")
            if len(parts) == 4 and parts[:3] == ["directory", "v1", "post-offices"] and parts[3] in OFFICES:
                return conditional_json(OFFICES[parts[3]], request)
            return Response('{"status":404}', status=404, mimetype="application/problem+json")

        super().__init__(app)


# the points and bank keys the soft ATM test modules share
POINT, POINT2 = "bd-06040", "bd-06043"
K1 = "vcb-key-one-0123456789abcdef0123456789"
K2 = "vcb-key-two-0123456789abcdef0123456789"
K3 = "vcb-key-new-0123456789abcdef0123456789"


@pytest.fixture(scope="module")
def directory():
    """The stand-in directory, one per test module (``from softatm_support import directory``)."""
    stub = DirectoryStub()
    yield stub
    stub.stop()


CCCD = "020090001234"
