"""Helpers for the dossiers tests: stand-ins for the peers the function asks over HTTP (the
`procedures` catalogue and the `directory`), answering exactly like their contracts (strong ETag,
304, 404 problems); tokens; small valid files.

A module takes the fixtures (``dossier_peers``, ``dossiers``) by importing them by name (``from
dossiers_support import dossiers  # noqa: F401``, with ``# ruff: noqa: F811`` at its top: pytest
hands them in as parameters), and defines its own where it differs."""

from __future__ import annotations

import pytest
from werkzeug.wrappers import Request, Response

from lscloud import runtime
from peer_stubs import Served, conditional_json


def _docs(*items):
    return [{"code": c, "name": n, "name_en": e, "required": r, "copies": 1, "template": None} for c, n, e, r in items]


PROCEDURES = {
    "HT-KS": {"code": "HT-KS", "name": "Đăng ký khai sinh", "name_en": "Birth registration", "field": "ho-tich",
              "field_name": "Hộ tịch", "level": "commune", "agency": "ubnd-xa", "online_mode": "full",
              "documents": _docs(("to-khai", "Tờ khai đăng ký khai sinh", "Birth registration form", True),
                                 ("giay-chung-sinh", "Giấy chứng sinh", "Birth certificate from the hospital", True),
                                 ("uy-quyen", "Văn bản ủy quyền", "Power of attorney", False)),
              "fees": [], "processing_days": 0, "same_day_cutoff": "15:00", "national_code": "1.001193",
              "steps": [{"code": "tiep-nhan", "name": "Tiếp nhận hồ sơ", "name_en": "Receive", "agency": "ubnd-xa", "unit_level": "commune", "days": 0},
                        {"code": "xu-ly", "name": "Công chức tư pháp - hộ tịch xử lý", "name_en": "Process", "agency": "ubnd-xa", "unit_level": "commune", "days": 0},
                        {"code": "ky-tra", "name": "Lãnh đạo ký, trả kết quả", "name_en": "Sign and return", "agency": "ubnd-xa", "unit_level": "commune", "days": 0}],
              "legal_basis": ["Luật Hộ tịch 2014", "Nghị định 123/2015/NĐ-CP"], "results": ["Giấy khai sinh"]},
    "XD-TDTK": {"code": "XD-TDTK", "name": "Thẩm định thiết kế xây dựng", "name_en": "Construction design appraisal", "field": "xay-dung",
                "field_name": "Xây dựng", "level": "province", "agency": "so-xay-dung", "online_mode": "partial",
                "documents": _docs(("don", "Tờ trình thẩm định thiết kế xây dựng", "Request for appraisal", True),
                                   ("ban-ve", "Bản vẽ thiết kế xây dựng", "Design drawings", True),
                                   ("gcn-dat", "Giấy tờ chứng minh quyền sử dụng đất", "Land use right papers", True)),
                "fees": [{"name": "Phí thẩm định thiết kế xây dựng", "amount_vnd": 150000}], "processing_days": 15,
                "steps": [{"code": "tiep-nhan", "name": "Tiếp nhận tại Trung tâm PVHCC", "name_en": "Receive", "agency": "public-service-centre", "unit_level": "province", "days": 0.5},
                          {"code": "tham-dinh", "name": "Sở Xây dựng thẩm định", "name_en": "Appraise", "agency": "so-xay-dung", "unit_level": "province", "days": 14.5}],
                "legal_basis": ["Luật Xây dựng 2014", "Nghị định 175/2024/NĐ-CP"], "results": ["Thông báo kết quả thẩm định thiết kế xây dựng"]},
}

UNITS = {"05983": {"code": "05983", "name": "Phường Lương Văn Tri", "level": "commune", "parent_code": "20"},
         "06040": {"code": "06040", "name": "Xã Đồng Đăng", "level": "commune", "parent_code": "20"},
         "20": {"code": "20", "name": "Tỉnh Lạng Sơn", "level": "province"}}
AGENCIES = {"public-service-centre": {"code": "public-service-centre", "unit_code": "05983"},
            "so-xay-dung": {"code": "so-xay-dung", "unit_code": None}}


class PeerStub(Served):
    """Answers /procedures/v1/procedures/<code>, /directory/v1/units/<code> and
    /directory/v1/agencies/<code> like the real functions do (strong ETag, 304, the same
    ``Cache-Control``); ``hits`` counts what it was asked."""

    def __init__(self):
        self.hits = 0

        @Request.application
        def app(request):
            self.hits += 1
            parts = request.path.strip("/").split("/")
            table = {("procedures", "procedures"): PROCEDURES, ("directory", "units"): UNITS,
                     ("directory", "agencies"): AGENCIES}
            if len(parts) == 4 and parts[1] == "v1" and (parts[0], parts[2]) in table:
                item = table[(parts[0], parts[2])].get(parts[3])
                if item is not None:
                    # the Cache-Control of lscloud.web.cached_json
                    return conditional_json(item, request, cache_control="public, max-age=300")
            return Response('{"status":404,"title":"Not found"}', status=404, mimetype="application/problem+json")

        super().__init__(app)


@pytest.fixture(scope="module")
def dossier_peers():
    """The :class:`PeerStub` the dossiers function asks, one per test module (its ``hits`` count
    across the module's tests)."""
    stub = PeerStub()
    yield stub
    stub.stop()


@pytest.fixture
def dossiers(start_function, dossier_peers):
    """A test client of the dossiers function started against ``dossier_peers``, its stream there
    (a move publishes to it)."""
    started = start_function("dossiers", peer_url_template=dossier_peers.template)
    runtime.current().bus.ensure_stream()
    return started.app.test_client()


def pdf(text: str) -> bytes:
    """A small file that is a PDF by its magic bytes (distinct per text)."""
    return b"%PDF-1.4\n% " + text.encode() + b"\n%%EOF\n"


CITIZEN = "020090001234"      # Lạng Sơn (020), male, born 1990
CITIZEN2 = "001195005678"
